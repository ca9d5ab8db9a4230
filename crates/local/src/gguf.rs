//! Reading a GGUF file: what the model is, and its weights ready to run.

use crate::llama::Llama;
use crate::LocalError;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_gemma3, quantized_qwen2, quantized_qwen3};
use std::io::{Cursor, Seek};
use std::path::Path;

/// What the file says about the model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// `general.architecture`: `llama`, `qwen2`, `qwen3` or `gemma3`.
    pub architecture: String,
    /// `general.name`, or the file name.
    pub name: String,
    /// Tokens of prompt plus answer the model can attend to.
    pub context: usize,
    /// The Jinja chat template, when the file has one.
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    /// Put before every prompt that does not start with it, as the file
    /// asks (`tokenizer.ggml.add_bos_token`; Gemma's does, SmolLM2's not).
    pub bos_id: Option<u32>,
    pub eos_token: Option<String>,
    /// Token ids that end an answer (the end-of-sequence token, and the
    /// end-of-turn token of chat templates such as ChatML's `<|im_end|>`).
    pub stop_ids: Vec<u32>,
}

/// The network of one supported architecture, with its attention cache.
/// Generations take turns on it (one decode thread is the fastest on small
/// machines anyway); each starts with [`Network::reset`].
pub(crate) enum Network {
    Llama(Llama),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

impl Network {
    /// Forgets the previous generation's cache. The qwen2 and gemma3
    /// networks drop it when fed from position 0.
    pub(crate) fn reset(&mut self) {
        match self {
            Network::Qwen3(m) => m.clear_kv_cache(),
            Network::Llama(m) => m.clear(),
            Network::Qwen2(_) | Network::Gemma3(_) => {}
        }
    }

    /// Logits of the last position, after feeding `tokens` at `position`.
    pub(crate) fn forward(
        &mut self,
        tokens: &Tensor,
        position: usize,
    ) -> candle_core::Result<Tensor> {
        match self {
            Network::Llama(m) => m.forward(tokens, position),
            Network::Qwen2(m) => m.forward(tokens, position),
            Network::Qwen3(m) => m.forward(tokens, position),
            Network::Gemma3(m) => m.forward(tokens, position),
        }
    }
}

pub(crate) struct Loaded {
    pub info: ModelInfo,
    pub metadata: std::collections::HashMap<String, gguf_file::Value>,
    pub network: Network,
}

fn load_error(path: &Path, message: impl std::fmt::Display) -> LocalError {
    LocalError::Load {
        path: path.display().to_string(),
        message: crate::error::first_line(message),
    }
}

/// Reads the file and prepares its weights. Quantized matrices are widened
/// to 16-bit floats first: candle multiplies dense matrices with batched,
/// SIMD kernels chosen at run time, while most quantized types run a scalar
/// kernel one row at a time, which made prompts 3–4× slower (measured in
/// `docs/PERFORMANCE.md`).
pub(crate) fn load(path: &Path) -> Result<Loaded, LocalError> {
    let mut file = std::fs::File::open(path).map_err(|e| load_error(path, e))?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| load_error(path, e))?;
    let device = Device::Cpu;
    let metadata = content.metadata.clone();
    let architecture = string(&metadata, "general.architecture")
        .ok_or_else(|| load_error(path, "no general.architecture"))?;
    let declared = number(&metadata, &format!("{architecture}.context_length")).unwrap_or(2048);
    let network = match architecture.as_str() {
        // Roster's own network: read straight from the file.
        "llama" => Network::Llama(
            Llama::from_gguf(&content, &mut file, declared).map_err(|e| load_error(path, e))?,
        ),
        _ => widened_network(&architecture, &content, &mut file, &device)
            .map_err(|e| load_error(path, e))?,
    };
    let context = declared;
    let tokens = metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map(|v| {
            v.iter()
                .filter_map(|t| t.to_string().ok().cloned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let token = |key: &str| number(&metadata, key).and_then(|id| tokens.get(id).cloned());
    let eos_id = number(&metadata, "tokenizer.ggml.eos_token_id");
    let mut stop_ids: Vec<u32> = eos_id
        .iter()
        .filter_map(|id| u32::try_from(*id).ok())
        .collect();
    for end_of_turn in ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"] {
        if let Some(id) = tokens.iter().position(|t| t == end_of_turn) {
            if let Ok(id) = u32::try_from(id) {
                if !stop_ids.contains(&id) {
                    stop_ids.push(id);
                }
            }
        }
    }
    let name = string(&metadata, "general.name").unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned())
    });
    let info = ModelInfo {
        architecture,
        name,
        context,
        chat_template: string(&metadata, "tokenizer.chat_template"),
        bos_token: token("tokenizer.ggml.bos_token_id"),
        bos_id: metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .filter(|add| *add)
            .and_then(|_| number(&metadata, "tokenizer.ggml.bos_token_id"))
            .and_then(|id| u32::try_from(id).ok()),
        eos_token: token("tokenizer.ggml.eos_token_id"),
        stop_ids,
    };
    Ok(Loaded {
        info,
        metadata,
        network,
    })
}

/// The network of an architecture candle implements, from its weights
/// widened to F16 (loaded as F32 by candle's dense layers).
fn widened_network(
    architecture: &str,
    content: &gguf_file::Content,
    file: &mut std::fs::File,
    device: &Device,
) -> candle_core::Result<Network> {
    if !matches!(architecture, "qwen2" | "qwen3" | "gemma3") {
        candle_core::bail!(
            "architecture `{architecture}` is not supported (llama, qwen2, qwen3 and gemma3 are)"
        );
    }
    let (widened, mut reader) = widen(content, file, device)?;
    Ok(match architecture {
        "qwen2" => Network::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
            widened,
            &mut reader,
            device,
        )?),
        "qwen3" => Network::Qwen3(quantized_qwen3::ModelWeights::from_gguf(
            widened,
            &mut reader,
            device,
        )?),
        _ => Network::Gemma3(quantized_gemma3::ModelWeights::from_gguf(
            widened,
            &mut reader,
            device,
        )?),
    })
}

/// The same model with every quantized tensor stored as F16, as an
/// in-memory GGUF the architectures' loaders read.
pub(crate) fn widen(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
    device: &Device,
) -> candle_core::Result<(gguf_file::Content, Cursor<Vec<u8>>)> {
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(&str, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content.tensor(file, name, device)?;
        let tensor = match tensor.dtype() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => tensor,
            _ => QTensor::quantize(&tensor.dequantize(device)?, GgmlDType::F16)?,
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut buffer = Cursor::new(Vec::new());
    gguf_file::write(&mut buffer, &metadata, &tensor_refs)?;
    buffer.rewind()?;
    let widened = gguf_file::Content::read(&mut buffer)?;
    Ok((widened, buffer))
}

/// `tokenizer.ggml.token_type`: 1 normal, 3 control, 4 user-defined, …
pub(crate) fn token_types(
    metadata: &std::collections::HashMap<String, gguf_file::Value>,
) -> Vec<i32> {
    metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.iter().map(|t| t.to_i32().unwrap_or(1)).collect())
        .unwrap_or_default()
}

pub(crate) fn string(
    metadata: &std::collections::HashMap<String, gguf_file::Value>,
    key: &str,
) -> Option<String> {
    metadata.get(key).and_then(|v| v.to_string().ok()).cloned()
}

pub(crate) fn number(
    metadata: &std::collections::HashMap<String, gguf_file::Value>,
    key: &str,
) -> Option<usize> {
    let value = metadata.get(key)?;
    value
        .to_u32()
        .map(|v| v as usize)
        .or_else(|_| value.to_u64().map(|v| v as usize))
        .or_else(|_| value.to_i32().map(|v| v.max(0) as usize))
        .ok()
}
