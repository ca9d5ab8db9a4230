//! Reading a sentence-transformers model directory: the BERT config, the
//! tokenizer set up for our truncation, the weights read into memory, and
//! the fingerprint that names the vector space.
//!
//! Owns file access for local models. Must never download a missing file or
//! map a file with `unsafe` (the weights are read with plain `std::fs::read`;
//! the copy costs 90 MB of memory for MiniLM, which buys `forbid(unsafe)`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::EmbedError;

/// SHA-256 of sentence-transformers/all-MiniLM-L6-v2's `model.safetensors`,
/// so that this common model gets its well-known name whatever its folder.
const KNOWN_WEIGHTS: &[(&str, &str)] = &[(
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "all-MiniLM-L6-v2",
)];

/// Tokens per text when the directory does not say (sentence-transformers
/// trained MiniLM with 256 and says so in `sentence_bert_config.json`).
const DEFAULT_MAX_TOKENS: usize = 256;

/// A loaded model directory.
pub(super) struct Loaded {
    pub model: BertModel,
    pub tokenizer: Tokenizer,
    pub dimensions: usize,
    pub pad_id: u32,
    pub max_tokens: usize,
    pub id: String,
}

fn load_error(path: &Path, message: impl Into<String>) -> EmbedError {
    EmbedError::Load {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| load_error(&path, format!("cannot read {name}: {e}")))
}

/// Loads `dir` for the CPU. `max_tokens` caps the tokens per text, and is
/// itself capped by what the directory and the model's positions allow.
pub(super) fn load(dir: &Path, max_tokens: usize) -> Result<Loaded, EmbedError> {
    if !dir.is_dir() {
        return Err(load_error(dir, "not a directory"));
    }
    let config: Config = serde_json::from_slice(&read(dir, "config.json")?)
        .map_err(|e| load_error(dir, format!("config.json is not a BERT config: {e}")))?;
    let max_tokens = max_tokens
        .min(declared_max_tokens(dir).unwrap_or(DEFAULT_MAX_TOKENS))
        .min(config.max_position_embeddings);

    let mut tokenizer = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
        .map_err(|e| load_error(dir, format!("tokenizer.json: {e}")))?;
    // The file's own settings (MiniLM's pads every text to 128) are replaced:
    // we truncate to our length and pad each batch ourselves.
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..TruncationParams::default()
        }))
        .map_err(|e| load_error(dir, format!("tokenizer truncation: {e}")))?;
    tokenizer.with_padding(None);
    let pad_id = tokenizer
        .token_to_id("[PAD]")
        .unwrap_or(config.pad_token_id as u32);

    let weights_path = dir.join("model.safetensors");
    if !weights_path.is_file() {
        let hint = if dir.join("pytorch_model.bin").is_file() {
            " (only pytorch_model.bin is there; convert it to safetensors)"
        } else {
            ""
        };
        return Err(load_error(
            dir,
            format!("model.safetensors is missing{hint}"),
        ));
    }
    let weights = read(dir, "model.safetensors")?;
    let id = model_id(dir, &weights);
    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
        .map_err(|e| load_error(&weights_path, format!("not a safetensors file: {e}")))?;
    let model = BertModel::load(vb, &config).map_err(|e| {
        load_error(
            &weights_path,
            format!("weights do not fit config.json: {e}"),
        )
    })?;
    Ok(Loaded {
        model,
        tokenizer,
        dimensions: config.hidden_size,
        pad_id,
        max_tokens,
        id,
    })
}

/// `max_seq_length` from `sentence_bert_config.json`, when present.
fn declared_max_tokens(dir: &Path) -> Option<usize> {
    let bytes = std::fs::read(dir.join("sentence_bert_config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let n = value.get("max_seq_length")?.as_u64()?;
    usize::try_from(n).ok().filter(|n| *n > 0)
}

/// `local/<name>`: a known model's name, else the folder's name with the
/// start of the weights' hash. The hash is what makes it an identity: the
/// same folder name with other weights is another vector space.
fn model_id(dir: &Path, weights: &[u8]) -> String {
    let digest = Sha256::digest(weights);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if let Some((_, name)) = KNOWN_WEIGHTS.iter().find(|(hash, _)| *hash == hex) {
        return format!("local/{name}");
    }
    let folder = std::fs::canonicalize(dir)
        .unwrap_or_else(|_| PathBuf::from(dir))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_owned());
    format!("local/{folder}@{}", &hex[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_weights_are_named_by_folder_and_hash() {
        let id = model_id(Path::new("/models/my-bert"), b"weights");
        assert!(id.starts_with("local/my-bert@"), "{id}");
        assert_eq!(id.len(), "local/my-bert@".len() + 12);
        assert_ne!(id, model_id(Path::new("/models/my-bert"), b"other weights"));
    }

    #[test]
    fn missing_files_are_load_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("roster-embed-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let err = load(&dir, 256).err().expect("nothing to load");
        assert_eq!(err.code(), "embedder_load");
        assert!(err.to_string().contains("config.json"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
