//! One forward pass of a BERT sentence encoder over a padded batch, then
//! mean pooling over the attention mask and L2 normalisation: what
//! sentence-transformers does for all-MiniLM-L6-v2.
//!
//! Owns tensor code only. Must never block on anything but the CPU, read
//! files, or see a batch larger than its caller chose.

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::BertModel;

use crate::error::EmbedError;
use crate::vector::l2_normalize;

fn model_error(e: candle_core::Error) -> EmbedError {
    EmbedError::Model(e.to_string())
}

/// Sentence vectors of already tokenised texts (with their special tokens),
/// padded on the right with `pad_id` to the longest of the batch. Padding
/// never changes a vector beyond rounding: padded positions are masked out
/// of attention and of the mean.
pub(super) fn embed_tokens(
    model: &BertModel,
    batch: &[&[u32]],
    pad_id: u32,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let rows = batch.len();
    let width = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
    if rows == 0 {
        return Ok(Vec::new());
    }
    if width == 0 {
        return Err(EmbedError::Model("a text produced no tokens".to_owned()));
    }
    let mut ids = Vec::with_capacity(rows * width);
    let mut mask = Vec::with_capacity(rows * width);
    for row in batch {
        ids.extend_from_slice(row);
        ids.resize(ids.len() + width - row.len(), pad_id);
        mask.extend(std::iter::repeat_n(1u32, row.len()));
        mask.extend(std::iter::repeat_n(0u32, width - row.len()));
    }
    let device = Device::Cpu;
    let ids = Tensor::from_vec(ids, (rows, width), &device).map_err(model_error)?;
    let mask = Tensor::from_vec(mask, (rows, width), &device).map_err(model_error)?;
    // One segment: sentence embeddings use type 0 throughout.
    let types = ids.zeros_like().map_err(model_error)?;
    let hidden = model
        .forward(&ids, &types, Some(&mask))
        .map_err(model_error)?;
    let pooled = mean_pool(&hidden, &mask).map_err(model_error)?;
    let mut vectors = pooled.to_vec2::<f32>().map_err(model_error)?;
    for v in &mut vectors {
        if !l2_normalize(v) {
            return Err(EmbedError::Model(
                "the model produced a vector without direction".to_owned(),
            ));
        }
    }
    Ok(vectors)
}

/// Mean of the hidden states `(rows, width, dim)` over the positions whose
/// mask `(rows, width)` is 1.
fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    // Every row has at least its special tokens, so no count is zero.
    let counts = mask.sum(1)?;
    summed.broadcast_div(&counts)
}
