//! The tokenizer of a SentencePiece GGUF file (`tokenizer.ggml.model` =
//! `llama`: Gemma, Llama 2, Mistral), built from its pieces and scores.
//!
//! SentencePiece's BPE joins, again and again, the adjacent pair whose
//! joined piece has the highest score. That is a BPE whose merges are
//! ranked by the score of what they produce, which is how it is built
//! here on `tokenizers`' BPE (the file carries scores, not merges). Spaces
//! are the piece character `▁`; characters with no piece fall back to
//! their bytes (`<0xE6>`).

use crate::gguf::token_types;
use crate::tokenizer::error;
use crate::LocalError;
use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace};
use tokenizers::{DecoderWrapper, NormalizerWrapper, Tokenizer};

/// SentencePiece's space.
pub(crate) const SPACE: char = '\u{2581}';

/// Merges that rebuild every piece from two others, highest score first
/// (ties: the lower id of the joined piece first).
fn merges(pieces: &[String], scores: &[f32]) -> Vec<(String, String)> {
    let ids: HashMap<&str, usize> = pieces
        .iter()
        .enumerate()
        .map(|(id, p)| (p.as_str(), id))
        .collect();
    let mut ranked: Vec<(f32, usize, usize, &str, &str)> = Vec::new();
    for (id, piece) in pieces.iter().enumerate() {
        let score = scores.get(id).copied().unwrap_or(0.0);
        for (at, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(at);
            if let (Some(l), Some(_)) = (ids.get(left), ids.get(right)) {
                ranked.push((score, id, *l, left, right));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    ranked
        .into_iter()
        .map(|(_, _, _, l, r)| (l.to_owned(), r.to_owned()))
        .collect()
}

pub(crate) fn from_metadata(metadata: &HashMap<String, Value>) -> Result<Tokenizer, LocalError> {
    let pieces: Vec<String> = metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .ok_or_else(|| error("no tokenizer.ggml.tokens"))?
        .iter()
        .map(|t| t.to_string().cloned().map_err(error))
        .collect::<Result<_, _>>()?;
    let scores: Vec<f32> = metadata
        .get("tokenizer.ggml.scores")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.iter().map(|s| s.to_f32().unwrap_or(0.0)).collect())
        .unwrap_or_default();
    let types = token_types(metadata);
    let unknown = crate::gguf::number(metadata, "tokenizer.ggml.unknown_token_id")
        .and_then(|id| pieces.get(id).cloned());
    let vocab: tokenizers::models::bpe::Vocab = pieces
        .iter()
        .enumerate()
        .filter_map(|(id, p)| u32::try_from(id).ok().map(|id| (p.clone(), id)))
        .collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges(&pieces, &scores))
        .byte_fallback(true);
    if let Some(unknown) = unknown {
        builder = builder.unk_token(unknown);
    }
    let bpe = builder.build().map_err(error)?;
    let mut tokenizer = Tokenizer::new(bpe);
    let add_space = metadata
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(true);
    let space = SPACE.to_string();
    let replace = Replace::new(" ", space.as_str()).map_err(error)?;
    let normalizer: NormalizerWrapper = if add_space {
        tokenizers::normalizers::Sequence::new(vec![
            Prepend::new(space.clone()).into(),
            replace.into(),
        ])
        .into()
    } else {
        replace.into()
    };
    tokenizer.with_normalizer(Some(normalizer));
    let mut decoders: Vec<DecoderWrapper> = vec![
        Replace::new(space.as_str(), " ").map_err(error)?.into(),
        ByteFallback::default().into(),
        Fuse::default().into(),
    ];
    if add_space {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    crate::tokenizer::add_whole_tokens(&mut tokenizer, &pieces, &types);
    Ok(tokenizer)
}
