//! The tokenizer of a GGUF file, built from its vocabulary and merges.
//!
//! Written here rather than taken from candle because the pre-tokenizer must
//! follow `tokenizer.ggml.pre` exactly: a generic byte-level pipeline adds a
//! space before SmolLM2's words (`<|im_start|>system` became `Ġsystem`, a
//! different id) and groups its digits, so the model saw text it was never
//! trained on.

use crate::gguf::string;
use crate::LocalError;
use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// GGUF's token type for control tokens (`<|im_start|>` and the like),
/// which are matched whole, never split into bytes.
const CONTROL: i32 = 3;
/// User-defined tokens are matched whole too.
const USER_DEFINED: i32 = 4;

/// Qwen2's split: letters with one leading non-letter, single digits,
/// punctuation runs, newlines, spaces.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split: as Qwen2's, with digits in groups of up to three.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub(crate) fn error(message: impl std::fmt::Display) -> LocalError {
    LocalError::Load {
        path: "tokenizer".into(),
        message: crate::error::first_line(message),
    }
}

/// The pre-tokenizer `tokenizer.ggml.pre` names; `add_space` is the file's
/// `tokenizer.ggml.add_space_prefix`.
fn pre_tokenizer(pre: &str, add_space: bool) -> Result<PreTokenizerWrapper, LocalError> {
    let split = |pattern: &str| -> Result<PreTokenizerWrapper, LocalError> {
        let split = Split::new(
            SplitPattern::Regex(pattern.to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(error)?;
        Ok(Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, false, false).into(),
        ])
        .into())
    };
    Ok(match pre {
        // SmolLM's own: each digit alone, then GPT-2's byte-level split
        // without a leading space.
        "smollm" => Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into(),
        "qwen2" | "deepseek-r1-qwen" => split(QWEN2_PATTERN)?,
        "llama3" | "llama-bpe" | "smaug-bpe" => split(LLAMA3_PATTERN)?,
        _ => ByteLevel::new(add_space, true, true).into(),
    })
}

/// Builds the tokenizer of a byte-level BPE (`tokenizer.ggml.model` =
/// `gpt2`) GGUF file, or of a SentencePiece one (`llama`, see
/// `sentencepiece`).
pub(crate) fn from_metadata(metadata: &HashMap<String, Value>) -> Result<Tokenizer, LocalError> {
    let model = string(metadata, "tokenizer.ggml.model").unwrap_or_default();
    if model == "llama" {
        return crate::sentencepiece::from_metadata(metadata);
    }
    if model != "gpt2" {
        return Err(error(format!(
            "tokenizer `{model}` is not supported: byte-level BPE (`gpt2`) and SentencePiece (`llama`) vocabularies are"
        )));
    }
    let list = |key: &str| -> Result<&Vec<Value>, LocalError> {
        metadata
            .get(key)
            .and_then(|v| v.to_vec().ok())
            .ok_or_else(|| error(format!("no {key}")))
    };
    let tokens: Vec<String> = list("tokenizer.ggml.tokens")?
        .iter()
        .map(|t| t.to_string().cloned().map_err(error))
        .collect::<Result<_, _>>()?;
    let merges: Vec<(String, String)> = list("tokenizer.ggml.merges")?
        .iter()
        .filter_map(|m| m.to_string().ok())
        .filter_map(|m| m.split_once(' '))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    let types = crate::gguf::token_types(metadata);
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .filter_map(|(id, t)| u32::try_from(id).ok().map(|id| (t.clone(), id)))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(error)?;
    let mut tokenizer = Tokenizer::new(bpe);
    let pre = string(metadata, "tokenizer.ggml.pre").unwrap_or_default();
    let add_space = metadata
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(false);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(&pre, add_space)?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    add_whole_tokens(&mut tokenizer, &tokens, &types);
    Ok(tokenizer)
}

/// Control and user-defined tokens (`<|im_start|>`, `<start_of_turn>`) are
/// matched whole in text, never split.
pub(crate) fn add_whole_tokens(tokenizer: &mut Tokenizer, tokens: &[String], types: &[i32]) {
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(types.iter())
        .filter(|(_, kind)| **kind == CONTROL || **kind == USER_DEFINED)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer.add_special_tokens(&special);
}
