//! The model's tokens as bytes, the form a grammar engine needs to tell
//! which tokens may come next.
//!
//! A byte-level BPE vocabulary stores each byte as a printable character
//! (GPT-2's table: `Ġ` is a space); the bytes are recovered through the
//! inverse of that table. Control tokens (`<|im_start|>`) are marked with
//! toktrie's special-token byte so no grammar text can ever produce them.

use crate::gguf::number;
use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokenizers::Tokenizer;
use toktrie::{TokRxInfo, TokTrie, TokenId, TokenizerEnv};

/// GGUF token types that are matched whole, never as text.
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
/// A SentencePiece byte piece, `<0xE6>`.
const BYTE: i32 = 6;

/// GPT-2's byte-to-character table, inverted: the printable Latin-1 bytes
/// stand for themselves, every other byte for the code point 256 + its
/// rank among them.
fn byte_of_char() -> HashMap<char, u8> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for byte in 0..=255u8 {
        let code = if printable(byte) {
            u32::from(byte)
        } else {
            shifted += 1;
            255 + shifted
        };
        if let Some(c) = char::from_u32(code) {
            map.insert(c, byte);
        }
    }
    map
}

/// The character GPT-2's table writes for `byte`.
#[cfg(test)]
pub(crate) fn stand_in(byte: u8) -> char {
    byte_of_char()
        .into_iter()
        .find(|(_, b)| *b == byte)
        .map_or('?', |(c, _)| c)
}

/// The bytes each token stands for.
pub(crate) fn token_bytes(metadata: &HashMap<String, Value>) -> Vec<Vec<u8>> {
    let tokens: Vec<String> = metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map(|v| {
            v.iter()
                .map(|t| t.to_string().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let types = crate::gguf::token_types(metadata);
    let table = byte_of_char();
    let sentencepiece =
        crate::gguf::string(metadata, "tokenizer.ggml.model").as_deref() == Some("llama");
    tokens
        .iter()
        .enumerate()
        .map(|(id, token)| {
            let kind = types.get(id).copied().unwrap_or(1);
            if kind == CONTROL || kind == USER_DEFINED {
                let mut bytes = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                bytes.extend_from_slice(token.as_bytes());
                return bytes;
            }
            if sentencepiece {
                let byte = token
                    .strip_prefix("<0x")
                    .and_then(|t| t.strip_suffix('>'))
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                return match byte {
                    Some(byte) if kind == BYTE => vec![byte],
                    _ => token.replace(crate::sentencepiece::SPACE, " ").into_bytes(),
                };
            }
            // A token outside the table is not byte-level; its own UTF-8
            // is the best reading of it.
            token
                .chars()
                .map(|c| table.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .unwrap_or_else(|| token.as_bytes().to_vec())
        })
        .collect()
}

/// The model's tokenizer in the shape llguidance asks for.
pub(crate) struct Vocabulary {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl Vocabulary {
    pub(crate) fn new(
        metadata: &HashMap<String, Value>,
        tokenizer: Arc<Tokenizer>,
        stop_ids: &[u32],
    ) -> Self {
        let words = token_bytes(metadata);
        let eos = number(metadata, "tokenizer.ggml.eos_token_id")
            .and_then(|id| TokenId::try_from(id).ok())
            .or_else(|| stop_ids.first().copied())
            .unwrap_or(0);
        let info = TokRxInfo::new(u32::try_from(words.len()).unwrap_or(u32::MAX), eos);
        let trie = TokTrie::from(&info, &words);
        let trie = if stop_ids.is_empty() {
            trie
        } else {
            trie.with_eos_tokens(stop_ids)
        };
        Self { trie, tokenizer }
    }
}

impl TokenizerEnv for Vocabulary {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        let text = String::from_utf8_lossy(s);
        match self.tokenizer.encode(text.as_ref(), false) {
            Ok(encoding) => encoding.get_ids().to_vec(),
            Err(_) => self.trie.greedy_tokenize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_table_covers_every_byte_once() {
        let table = byte_of_char();
        assert_eq!(table.len(), 256);
        let mut bytes: Vec<u8> = table.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        // GPT-2's well-known stand-ins: space, newline, tab.
        assert_eq!(table.get(&'Ġ'), Some(&b' '));
        assert_eq!(table.get(&'Ċ'), Some(&b'\n'));
        assert_eq!(table.get(&'ĉ'), Some(&b'\t'));
        assert_eq!(table.get(&'a'), Some(&b'a'));
    }

    #[test]
    fn sentencepiece_pieces_become_their_bytes() {
        let metadata: HashMap<String, Value> = [
            (
                "tokenizer.ggml.model".to_owned(),
                Value::String("llama".into()),
            ),
            (
                "tokenizer.ggml.tokens".to_owned(),
                Value::Array(
                    ["<start_of_turn>", "\u{2581}world", "<0x0A>", "Ġx"]
                        .iter()
                        .map(|s| Value::String((*s).to_owned()))
                        .collect(),
                ),
            ),
            (
                "tokenizer.ggml.token_type".to_owned(),
                Value::Array(vec![
                    Value::I32(3),
                    Value::I32(1),
                    Value::I32(6),
                    Value::I32(1),
                ]),
            ),
        ]
        .into_iter()
        .collect();
        let bytes = token_bytes(&metadata);
        assert_eq!(bytes[0][0], TokTrie::SPECIAL_TOKEN_MARKER);
        assert_eq!(bytes[1], b" world");
        assert_eq!(bytes[2], b"\n");
        // Not GPT-2's table: `Ġ` is just a character here.
        assert_eq!(bytes[3], "Ġx".as_bytes());
    }

    #[test]
    fn tokens_become_their_bytes_and_control_tokens_are_marked() {
        let strings = |items: &[&str]| {
            Value::Array(
                items
                    .iter()
                    .map(|s| Value::String((*s).to_owned()))
                    .collect(),
            )
        };
        let metadata: HashMap<String, Value> = [
            (
                "tokenizer.ggml.tokens".to_owned(),
                strings(&["<|im_start|>", "Ġhello", "Ċ", "Ã©"]),
            ),
            (
                "tokenizer.ggml.token_type".to_owned(),
                Value::Array(vec![
                    Value::I32(3),
                    Value::I32(1),
                    Value::I32(1),
                    Value::I32(1),
                ]),
            ),
        ]
        .into_iter()
        .collect();
        let bytes = token_bytes(&metadata);
        assert_eq!(bytes[0][0], TokTrie::SPECIAL_TOKEN_MARKER);
        assert_eq!(&bytes[0][1..], b"<|im_start|>");
        assert_eq!(bytes[1], b" hello");
        assert_eq!(bytes[2], b"\n");
        // "é" is two bytes, stored as two stand-in characters.
        assert_eq!(bytes[3], "é".as_bytes());
    }
}
