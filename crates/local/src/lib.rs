//! A language model run in-process on the CPU, read from one GGUF file.
//!
//! - `gguf`: the file's metadata (architecture, context window, special
//!   tokens, chat template) and its weights, converted at load;
//! - `tokenizer`: the tokenizer built from the file's vocabulary with the
//!   pre-tokenizer its `tokenizer.ggml.pre` names;
//! - `template`: the file's Jinja chat template, rendered;
//! - `tools` and `constrain`: the tool-call format the model is taught and
//!   the grammar that holds it to that format once it starts a call;
//!   `vocabulary` gives the grammar engine the tokens as bytes;
//! - `generate`: the decode loop (sampling, stop sequences, token limits)
//!   and `detokenize`, which streams text without splitting a character.
//!
//! Must never download anything, read a file other than the one it is
//! given, or keep a conversation between calls: each call gets the whole
//! prompt.

mod constrain;
mod detokenize;
mod error;
mod generate;
mod gguf;
mod llama;
mod sentencepiece;
mod template;
mod tokenizer;
pub mod tools;
mod vocabulary;

pub use error::LocalError;
pub use generate::{Finish, Generated, Model, Sampling};
pub use gguf::ModelInfo;
pub use template::Message;
pub use tools::{Offer, ToolCall, ToolSpec};
