//! The llama network (SmolLM2 and other llama-architecture GGUF files),
//! written here instead of taken from `candle_transformers` for its
//! attention: candle's version copies the whole key/value cache on every
//! token (a concatenation, then each key/value head repeated for the
//! query heads that share it), which made decoding after a 1,200-token
//! prompt spend more time copying than computing (`docs/PERFORMANCE.md`).
//! Here the cache is preallocated and grown by doubling, new positions are
//! written in place, and the query heads that share a key/value head are
//! multiplied against it as one group, with no copy of the cache.
//!
//! Weights are read tensor by tensor from the file and widened to F16 (the
//! dense kernels are batched and pick SIMD at run time; most of candle
//! 0.9's quantized ones run scalar), so loading never holds a second copy
//! of the model. F16 rather than F32: decoding reads every weight once per
//! token, and half the bytes gave 1.4× the tokens per second for ~10% off
//! prompt speed (`docs/PERFORMANCE.md`).

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::Embedding;
use std::io::{Read, Seek};

/// Positions the cache holds before it first grows.
const FIRST_CAPACITY: usize = 512;

/// A weight matrix `(out, in)`, in F16: half the bytes of F32 to read for
/// every token (decoding is bound by them: 1.4× the tokens per second,
/// measured), through candle's batched F16 kernels for prompts.
type Weight = Tensor;

struct Attention {
    wq: Weight,
    wk: Weight,
    wv: Weight,
    wo: Weight,
    /// `(kv heads, capacity, head dim)`, positions `0..len` filled.
    keys: Option<Tensor>,
    values: Option<Tensor>,
}

struct Layer {
    attention_norm: Tensor,
    attention: Attention,
    ffn_norm: Tensor,
    gate: Weight,
    up: Weight,
    down: Weight,
}

pub(crate) struct Llama {
    embedding: Embedding,
    layers: Vec<Layer>,
    norm: Tensor,
    output: Weight,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f32,
    cos: Tensor,
    sin: Tensor,
    /// Positions in the cache.
    len: usize,
}

/// `x · wᵀ` for `x` of shape `(rows, in)` and `w` of shape `(out, in)`,
/// both F16 (an input feeding several weights is converted once, by
/// [`half`]); the product comes back in F32.
fn linear(x: &Tensor, w: &Weight) -> Result<Tensor> {
    x.matmul(&w.t()?)?.to_dtype(DType::F32)
}

fn half(x: &Tensor) -> Result<Tensor> {
    x.to_dtype(DType::F16)
}

impl Llama {
    /// Reads the network of a llama-architecture file; `positions` is the
    /// longest sequence it will be asked to hold.
    pub(crate) fn from_gguf<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        positions: usize,
    ) -> Result<Self> {
        let device = Device::Cpu;
        let number = |key: &str| -> Result<usize> {
            match content.metadata.get(key) {
                Some(v) => Ok(v.to_u32()? as usize),
                None => candle_core::bail!("no {key} in the file"),
            }
        };
        let heads = number("llama.attention.head_count")?;
        let kv_heads = number("llama.attention.head_count_kv")?;
        let blocks = number("llama.block_count")?;
        let hidden = number("llama.embedding_length")?;
        let rope_dim = number("llama.rope.dimension_count")?;
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || hidden % heads != 0 {
            candle_core::bail!("{heads} attention heads cannot share {kv_heads} key/value heads");
        }
        if content
            .tensor_infos
            .contains_key("blk.0.ffn_gate_inp.weight")
        {
            candle_core::bail!("mixture-of-experts llama files are not supported");
        }
        let eps = content
            .metadata
            .get("llama.attention.layer_norm_rms_epsilon")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(1e-5);
        let freq_base = content
            .metadata
            .get("llama.rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0);
        let mut read = |name: &str, dtype: DType| -> Result<Tensor> {
            content
                .tensor(reader, name, &device)?
                .dequantize(&device)?
                .to_dtype(dtype)
        };
        let embedding = read("token_embd.weight", DType::F16)?;
        // Files with tied weights (SmolLM2) reuse the embedding as output.
        let output = if content.tensor_infos.contains_key("output.weight") {
            read("output.weight", DType::F16)?
        } else {
            embedding.clone()
        };
        let norm = read("output_norm.weight", DType::F32)?;
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            // Matrices in F16, the norms' vectors in F32.
            let mut get = |part: &str| {
                let dtype = if part.ends_with("norm") {
                    DType::F32
                } else {
                    DType::F16
                };
                read(&format!("blk.{i}.{part}.weight"), dtype)
            };
            layers.push(Layer {
                attention_norm: get("attn_norm")?,
                attention: Attention {
                    wq: get("attn_q")?,
                    wk: get("attn_k")?,
                    wv: get("attn_v")?,
                    wo: get("attn_output")?,
                    keys: None,
                    values: None,
                },
                ffn_norm: get("ffn_norm")?,
                gate: get("ffn_gate")?,
                up: get("ffn_up")?,
                down: get("ffn_down")?,
            });
        }
        let (cos, sin) = rotary_tables(rope_dim, freq_base, positions.max(1), &device)?;
        Ok(Self {
            embedding: Embedding::new(embedding, hidden),
            layers,
            norm,
            output,
            heads,
            kv_heads,
            head_dim: hidden / heads,
            eps,
            cos,
            sin,
            len: 0,
        })
    }

    /// Forgets the cache (the next call starts at position 0).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The next token's logits after `tokens` (shape `(1, n)`) are put at
    /// `position`, which must be where the cache ends (0 starts over).
    pub(crate) fn forward(&mut self, tokens: &Tensor, position: usize) -> Result<Tensor> {
        if position == 0 {
            self.len = 0;
        }
        if position != self.len {
            candle_core::bail!(
                "position {position} does not follow the cache ({})",
                self.len
            );
        }
        let (_, count) = tokens.dims2()?;
        if position + count > self.cos.dim(0)? {
            candle_core::bail!(
                "position {} is past the model's rotary table",
                position + count
            );
        }
        let cos = self.cos.narrow(0, position, count)?;
        let sin = self.sin.narrow(0, position, count)?;
        let mask = causal_mask(count, position)?;
        let mut x = self
            .embedding
            .forward(&tokens.squeeze(0)?)?
            .to_dtype(DType::F32)?;
        let shape = Shape {
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
        };
        for layer in &mut self.layers {
            let normed = half(&candle_nn::ops::rms_norm(
                &x,
                &layer.attention_norm,
                self.eps,
            )?)?;
            let attended =
                layer
                    .attention
                    .forward(&normed, &shape, position, (&cos, &sin), mask.as_ref())?;
            x = (x + attended)?;
            let normed = half(&candle_nn::ops::rms_norm(&x, &layer.ffn_norm, self.eps)?)?;
            let gate = candle_nn::ops::silu(&linear(&normed, &layer.gate)?)?;
            let up = linear(&normed, &layer.up)?;
            x = (x + linear(&half(&(gate * up)?)?, &layer.down)?)?;
        }
        self.len = position + count;
        let last = x.i(count - 1)?.unsqueeze(0)?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, self.eps)?;
        linear(&half(&last)?, &self.output)
    }
}

struct Shape {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    /// `x`: `(n, hidden)`, F16, for positions `position..position + n`.
    fn forward(
        &mut self,
        x: &Tensor,
        shape: &Shape,
        position: usize,
        (cos, sin): (&Tensor, &Tensor),
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (count, hidden) = x.dims2()?;
        let group = shape.heads / shape.kv_heads;
        let rope = |t: Tensor, heads: usize| -> Result<Tensor> {
            let t = t
                .reshape((1, count, heads, shape.head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            candle_nn::rotary_emb::rope_i(&t, cos, sin)?.squeeze(0)
        };
        let q = rope(linear(x, &self.wq)?, shape.heads)?;
        let k = rope(linear(x, &self.wk)?, shape.kv_heads)?;
        let v = linear(x, &self.wv)?
            .reshape((count, shape.kv_heads, shape.head_dim))?
            .transpose(0, 1)?
            .contiguous()?;
        let end = position + count;
        let keys = store(&mut self.keys, &k, position, end)?;
        let values = store(&mut self.values, &v, position, end)?;
        // Query heads sharing a key/value head are rows of one product:
        // (kv heads, group × n, head dim) against (kv heads, end, head dim).
        let q = q.reshape((shape.kv_heads, group * count, shape.head_dim))?;
        let scale = 1.0 / (shape.head_dim as f64).sqrt();
        let scores = (q.matmul(&keys.t()?)? * scale)?;
        let scores = match mask {
            Some(mask) => scores
                .reshape((shape.kv_heads, group, count, end))?
                .broadcast_add(mask)?
                .reshape((shape.kv_heads, group * count, end))?,
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights.matmul(&values)?;
        let out = out
            .reshape((shape.heads, count, shape.head_dim))?
            .transpose(0, 1)?
            .reshape((count, hidden))?;
        linear(&half(&out)?, &self.wo)
    }
}

/// Writes `new` (`(kv heads, n, head dim)`) at `position` in `cache`,
/// growing it by doubling when full; the filled part `0..end`, as a view.
fn store(cache: &mut Option<Tensor>, new: &Tensor, position: usize, end: usize) -> Result<Tensor> {
    let (kv_heads, _, head_dim) = new.dims3()?;
    let capacity = cache.as_ref().map_or(Ok(0), |c| c.dim(1))?;
    if end > capacity {
        let mut grown = capacity.max(FIRST_CAPACITY);
        while grown < end {
            grown *= 2;
        }
        let bigger = Tensor::zeros((kv_heads, grown, head_dim), DType::F32, &Device::Cpu)?;
        if let Some(old) = cache.as_ref().filter(|_| position > 0) {
            bigger.slice_set(&old.narrow(1, 0, position)?.contiguous()?, 1, 0)?;
        }
        *cache = Some(bigger);
    }
    let Some(cache) = cache.as_ref() else {
        candle_core::bail!("the cache was not allocated");
    };
    cache.slice_set(new, 1, position)?;
    cache.narrow(1, 0, end)
}

/// Additive mask for `n` new positions after `past` cached ones: row `i`
/// may see columns up to `past + i`.
fn causal_mask(n: usize, past: usize) -> Result<Option<Tensor>> {
    if n == 1 {
        return Ok(None);
    }
    let width = past + n;
    let values: Vec<f32> = (0..n)
        .flat_map(|i| (0..width).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(values, (n, width), &Device::Cpu).map(Some)
}

/// Rotary tables: `cos`/`sin` of position × frequency, `(positions, dim/2)`.
fn rotary_tables(
    dim: usize,
    freq_base: f32,
    positions: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| 1.0 / freq_base.powf(i as f32 / dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let angles = Tensor::arange(0, positions as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((positions, 1))?
        .broadcast_mul(&theta.reshape((1, ()))?)?;
    Ok((angles.cos()?, angles.sin()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::D;

    /// The index of the largest value.
    fn argmax(t: &Tensor) -> u32 {
        t.argmax(D::Minus1)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<u32>())
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(u32::MAX)
    }

    #[test]
    fn the_mask_lets_each_row_see_the_past_and_itself() {
        let mask = causal_mask(2, 1)
            .ok()
            .flatten()
            .and_then(|m| m.to_vec2::<f32>().ok())
            .unwrap_or_default();
        assert_eq!(mask.len(), 2);
        assert_eq!(mask[0], vec![0.0, 0.0, f32::NEG_INFINITY]);
        assert_eq!(mask[1], vec![0.0, 0.0, 0.0]);
        assert!(causal_mask(1, 7).ok().flatten().is_none());
    }

    #[test]
    fn the_cache_grows_and_keeps_what_it_held() -> Result<()> {
        let mut cache = None;
        let first = Tensor::ones((2, 500, 4), DType::F32, &Device::Cpu)?;
        let view = store(&mut cache, &first, 0, 500)?;
        assert_eq!(view.dims(), &[2, 500, 4]);
        let more = (Tensor::ones((2, 20, 4), DType::F32, &Device::Cpu)? * 2.0)?;
        let view = store(&mut cache, &more, 500, 520)?;
        assert_eq!(view.dims(), &[2, 520, 4]);
        assert_eq!(cache.as_ref().map(|c| c.dims()[1]), Some(1024));
        let sum = view.sum_all()?.to_scalar::<f32>()?;
        assert_eq!(sum, (2 * 500 * 4) as f32 + (2 * 20 * 4 * 2) as f32);
        Ok(())
    }

    /// The same logits as candle's llama on the real model, prefill and
    /// decode, after a prompt long enough to grow the cache.
    #[test]
    fn logits_match_candles_llama() -> Result<()> {
        let Some(path) = roster_testkit::local_model::local_model_file() else {
            return Ok(());
        };
        use candle_transformers::models::quantized_llama::ModelWeights;
        // Both networks on the same weights, the file's widened to F16
        // (on the file's Q4_1 weights candle also quantizes activations).
        // Ours multiplies F16 activations where candle's uses F32: logits
        // (magnitudes around 10) agree to a few hundredths, and the chosen
        // token is the same.
        let mut file = std::fs::File::open(&path)?;
        let content = gguf_file::Content::read(&mut file)?;
        let (widened, mut reader) = crate::gguf::widen(&content, &mut file, &Device::Cpu)?;
        let mut ours = Llama::from_gguf(&widened, &mut reader, 4096)?;
        let mut theirs = ModelWeights::from_gguf(widened, &mut reader, &Device::Cpu)?;
        let prompt: Vec<u32> = (0..600u32).map(|i| 100 + (i * 37) % 4000).collect();
        let input = Tensor::new(prompt.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let a = ours.forward(&input, 0)?.squeeze(0)?;
        let b = theirs.forward(&input, 0)?.squeeze(0)?;
        let close = |a: &Tensor, b: &Tensor| -> Result<f32> {
            (a - b)?.abs()?.max(D::Minus1)?.to_scalar::<f32>()
        };
        assert!(
            close(&a, &b)? < 5e-2,
            "prefill differs by {}",
            close(&a, &b)?
        );
        assert_eq!(argmax(&a), argmax(&b));
        let mut next = argmax(&a);
        for step in 0..4 {
            let input = Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?;
            let position = prompt.len() + step;
            let a = ours.forward(&input, position)?.squeeze(0)?;
            let b = theirs.forward(&input, position)?.squeeze(0)?;
            assert!(
                close(&a, &b)? < 5e-2,
                "step {step} differs by {}",
                close(&a, &b)?
            );
            assert_eq!(argmax(&a), argmax(&b));
            next = argmax(&a);
        }
        Ok(())
    }
}
