//! Holding the model to the tool-call grammar once it starts a call: before
//! each token, every token that could not continue a valid call is masked
//! out, so what it writes always parses and fits the tool's schema.
//!
//! llguidance does the work (an Earley parser over a lexer of regular
//! expression derivatives, with JSON Schema compiled to grammar rules); this
//! module ties it to the model's vocabulary and logits.

use crate::tools::{self, ToolSpec};
use crate::vocabulary::Vocabulary;
use crate::LocalError;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use std::sync::{Arc, OnceLock};
use toktrie::{TokEnv, TokenId};

/// Per model: the vocabulary, and the parser factory built from it on the
/// first call with tools (it indexes every token, a one-off cost).
pub(crate) struct Constraints {
    env: TokEnv,
    factory: OnceLock<Result<ParserFactory, String>>,
}

impl Constraints {
    pub(crate) fn new(vocabulary: Vocabulary) -> Self {
        Self {
            env: Arc::new(vocabulary),
            factory: OnceLock::new(),
        }
    }

    fn factory(&self) -> Result<&ParserFactory, LocalError> {
        self.factory
            .get_or_init(|| {
                let mut factory =
                    ParserFactory::new_simple(&self.env).map_err(|e| e.to_string())?;
                factory.quiet();
                Ok(factory)
            })
            .as_ref()
            .map_err(|e| LocalError::Constraint(e.clone()))
    }

    /// The constraint for a call to one of `tools`. Schemas with keywords
    /// llguidance cannot enforce are retried with those keywords ignored,
    /// and a tool whose schema it cannot read at all (a regular expression
    /// with look-around, say) keeps only "arguments is an object"; the name
    /// and the JSON shape are always enforced, and each fallback is logged.
    pub(crate) fn for_tools(&self, tools: &[ToolSpec]) -> Result<CallConstraint, LocalError> {
        let factory = self.factory()?;
        let compile = |tools: &[ToolSpec], lenient: bool| -> Result<Matcher, String> {
            let grammar = TopLevelGrammar::from_lark(tools::grammar(tools, lenient));
            let matcher = Matcher::new(factory.create_parser(grammar));
            match matcher.get_error() {
                Some(error) => Err(error),
                None => Ok(matcher),
            }
        };
        let matcher = match compile(tools, false) {
            Ok(matcher) => matcher,
            Err(strict) => {
                tracing::warn!(error = %crate::error::first_line(&strict), "a tool schema has keywords the local model cannot be held to; they are ignored");
                match compile(tools, true) {
                    Ok(matcher) => matcher,
                    Err(_) => {
                        let readable: Vec<ToolSpec> = tools
                            .iter()
                            .map(|tool| {
                                if compile(std::slice::from_ref(tool), true).is_ok() {
                                    tool.clone()
                                } else {
                                    tracing::warn!(tool = %tool.name, "the local model is held only to an object for this tool's arguments");
                                    ToolSpec {
                                        parameters: serde_json::json!({"type": "object"}),
                                        ..tool.clone()
                                    }
                                }
                            })
                            .collect();
                        compile(&readable, true).map_err(LocalError::Constraint)?
                    }
                }
            }
        };
        Ok(CallConstraint {
            matcher,
            env: self.env.clone(),
            body: Vec::new(),
        })
    }
}

/// One call being written.
pub(crate) struct CallConstraint {
    matcher: Matcher,
    env: TokEnv,
    /// What the model wrote after the start marker.
    body: Vec<u8>,
}

impl CallConstraint {
    /// Gives every token the grammar does not allow next no chance at all.
    pub(crate) fn mask(&mut self, logits: &mut [f32]) -> Result<(), LocalError> {
        let allowed = self
            .matcher
            .compute_mask()
            .map_err(|e| LocalError::Constraint(e.to_string()))?;
        let mut any = false;
        for (id, logit) in logits.iter_mut().enumerate() {
            let id = TokenId::try_from(id).unwrap_or(TokenId::MAX);
            if id as usize >= allowed.len() || !allowed.is_allowed(id) {
                *logit = f32::NEG_INFINITY;
            } else {
                any = true;
            }
        }
        if any {
            Ok(())
        } else {
            Err(LocalError::Constraint(
                "no token of the vocabulary can continue the tool call".into(),
            ))
        }
    }

    /// Records the token the model picked (one the mask allowed).
    pub(crate) fn accept(&mut self, token: TokenId) -> Result<(), LocalError> {
        self.matcher
            .consume_token(token)
            .map_err(|e| LocalError::Constraint(e.to_string()))?;
        self.body
            .extend_from_slice(self.env.tok_trie().token(token));
        Ok(())
    }

    /// Text the model wrote in the same token as the start marker: kept as
    /// far as the grammar allows it, the rest dropped.
    pub(crate) fn feed(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let tokens = self.env.tokenize_bytes(text.as_bytes());
        if let Ok(taken) = self.matcher.try_consume_tokens(&tokens) {
            for token in &tokens[..taken.min(tokens.len())] {
                self.body
                    .extend_from_slice(self.env.tok_trie().token(*token));
            }
        }
    }

    /// True once the end marker is written.
    pub(crate) fn finished(&mut self) -> bool {
        self.matcher.is_stopped() || self.matcher.is_accepting().unwrap_or(false)
    }

    /// The last `chars` characters written, for error messages.
    pub(crate) fn tail(&self, chars: usize) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let skip = text.chars().count().saturating_sub(chars);
        text.chars().skip(skip).collect()
    }

    /// The calls written, once [`Self::finished`].
    pub(crate) fn calls(&self) -> Result<Vec<tools::ToolCall>, LocalError> {
        tools::parse(&String::from_utf8_lossy(&self.body)).map_err(LocalError::Constraint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file::Value;
    use serde_json::json;
    use std::collections::HashMap;

    /// A vocabulary of the 256 single bytes (as GPT-2 stand-ins), a few
    /// longer tokens and an end-of-turn control token.
    fn constraints() -> Constraints {
        let mut tokens: Vec<String> = (0..=255u8)
            .map(|b| crate::vocabulary::stand_in(b).to_string())
            .collect();
        tokens.extend(["Ġ\"", "add", "\":", "<|im_end|>"].map(String::from));
        let mut types = vec![1; tokens.len()];
        if let Some(last) = types.last_mut() {
            *last = 3;
        }
        let metadata: HashMap<String, Value> = [
            (
                "tokenizer.ggml.tokens".to_owned(),
                Value::Array(tokens.iter().cloned().map(Value::String).collect()),
            ),
            (
                "tokenizer.ggml.token_type".to_owned(),
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            ("tokenizer.ggml.merges".to_owned(), Value::Array(Vec::new())),
            (
                "tokenizer.ggml.model".to_owned(),
                Value::String("gpt2".into()),
            ),
            (
                "tokenizer.ggml.pre".to_owned(),
                Value::String("smollm".into()),
            ),
        ]
        .into_iter()
        .collect();
        let tokenizer = crate::tokenizer::from_metadata(&metadata).expect("tokenizer");
        let end = u32::try_from(tokens.len() - 1).unwrap_or(0);
        Constraints::new(Vocabulary::new(&metadata, Arc::new(tokenizer), &[end]))
    }

    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec {
                name: "add".into(),
                description: "Adds".into(),
                parameters: json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}),
            },
            ToolSpec {
                name: "get_weather".into(),
                description: "Weather".into(),
                parameters: json!({"type": "object", "properties": {"unit": {"enum": ["c", "f"]}}, "required": ["unit"]}),
            },
        ]
    }

    /// Which single-byte tokens the grammar allows next.
    fn allowed_bytes(call: &mut CallConstraint) -> Vec<u8> {
        let mut logits = vec![0.0f32; 260];
        if call.mask(&mut logits).is_err() {
            return Vec::new();
        }
        (0..=255u8)
            .filter(|b| logits[usize::from(*b)].is_finite())
            .collect()
    }

    fn write(call: &mut CallConstraint, text: &str) {
        for byte in text.bytes() {
            assert!(
                allowed_bytes(call).contains(&byte),
                "{:?} refused after {:?}",
                byte as char,
                String::from_utf8_lossy(&call.body)
            );
            call.accept(u32::from(byte)).expect("accepted");
        }
    }

    #[test]
    fn a_call_is_held_to_the_offered_names_and_their_schemas() {
        let constraints = constraints();
        let mut call = constraints.for_tools(&tools()).expect("grammar");
        write(&mut call, "[{\"name\": \"");
        // Only the first letters of offered names.
        assert_eq!(allowed_bytes(&mut call), vec![b'a', b'g']);
        write(&mut call, "add\", \"arguments\": {\"a\": ");
        // An integer: digits or a minus, never a quote.
        let next = allowed_bytes(&mut call);
        assert!(next.contains(&b'7') && next.contains(&b'-'));
        assert!(!next.contains(&b'"') && !next.contains(&b'}'));
        write(&mut call, "12");
        // `b` is required, so the object cannot close yet.
        assert!(!allowed_bytes(&mut call).contains(&b'}'));
        write(&mut call, ", \"b\": 3}}");
        assert!(!call.finished());
        write(&mut call, "]</tool_call>");
        assert!(call.finished());
        let calls = call.calls().expect("calls");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "add");
        assert_eq!(calls[0].arguments, json!({"a": 12, "b": 3}));
    }

    #[test]
    fn enums_and_control_tokens_are_enforced() {
        let constraints = constraints();
        let mut call = constraints.for_tools(&tools()).expect("grammar");
        write(
            &mut call,
            "{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"",
        );
        assert_eq!(allowed_bytes(&mut call), vec![b'c', b'f']);
        // The end-of-turn token can never appear inside a call.
        let mut logits = vec![0.0f32; 260];
        call.mask(&mut logits).expect("mask");
        assert!(logits[259].is_infinite());
        write(&mut call, "f\"}}\n</tool_call>");
        assert!(call.finished());
        let calls = call.calls().expect("calls");
        assert_eq!(calls[0].arguments, json!({"unit": "f"}));
    }

    #[test]
    fn text_after_the_marker_in_the_same_token_is_kept_when_valid() {
        let constraints = constraints();
        let mut call = constraints.for_tools(&tools()).expect("grammar");
        call.feed("[{\"na");
        assert_eq!(String::from_utf8_lossy(&call.body), "[{\"na");
        let mut other = constraints.for_tools(&tools()).expect("grammar");
        other.feed(" Sure!");
        assert!(!String::from_utf8_lossy(&other.body).contains("Sure"));
    }

    #[test]
    fn a_schema_keyword_the_engine_lacks_falls_back_to_lenient() {
        let constraints = constraints();
        let odd = ToolSpec {
            name: "odd".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {"x": {"type": "string", "pattern": "(?=a)a"}}}),
        };
        let mut call = constraints
            .for_tools(&[odd, tools()[0].clone()])
            .expect("grammar");
        write(
            &mut call,
            "[{\"name\": \"odd\", \"arguments\": {\"y\": 1}}, ",
        );
        // The readable tool next to it keeps its schema.
        write(&mut call, "{\"name\": \"add\", \"arguments\": {\"a\": ");
        assert!(!allowed_bytes(&mut call).contains(&b'"'));
    }
}
