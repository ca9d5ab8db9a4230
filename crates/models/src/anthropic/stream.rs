//! Anthropic Messages streaming: folds `message_start`, `content_block_*`,
//! `message_delta` and `message_stop` events into one `ChatResponse`, passing
//! text deltas on as they arrive.
//!
//! Owns the per-block accumulation (text, and tool input JSON fragments) and
//! the rule that only `message_stop` finishes a stream. Must never return a
//! response from a stream that ended before `message_stop`.

use super::wire::{arguments, stream_error, WireUsage};
use crate::error::ProviderError;
use crate::error_body::quote;
use crate::request::{tokens, ChatResponse};
use crate::sse::SseReader;
use roster_core::item::ToolCall;
use serde_json::Value;
use std::collections::BTreeMap;

/// A content block being assembled.
enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        /// `input` from `content_block_start` (normally `{}`).
        initial: Value,
        /// Concatenated `input_json_delta.partial_json`.
        json: String,
    },
    Other,
}

#[derive(Default)]
pub(crate) struct Accumulator {
    response: ChatResponse,
    blocks: BTreeMap<u64, Block>,
    stopped: bool,
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

impl Accumulator {
    /// Folds in one event (its `data` payload).
    pub(crate) fn apply(
        &mut self,
        name: &str,
        data: &str,
        on_text: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError> {
        let event: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::invalid(format!("bad stream event ({e}): {}", quote(data)))
        })?;
        let kind = event["type"].as_str().unwrap_or(name);
        let index = event["index"].as_u64().unwrap_or_default();
        match kind {
            "message_start" => self.usage(&event["message"]["usage"]),
            "content_block_start" => {
                let block = &event["content_block"];
                let block = match block["type"].as_str() {
                    Some("text") => {
                        let text = block["text"].as_str().unwrap_or_default();
                        self.text(text, on_text);
                        Block::Text
                    }
                    Some("tool_use") => Block::Tool {
                        id: str_of(&block["id"]),
                        name: str_of(&block["name"]),
                        initial: block["input"].clone(),
                        json: String::new(),
                    },
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let delta = &event["delta"];
                match (delta["type"].as_str(), self.blocks.get_mut(&index)) {
                    (Some("text_delta"), _) => {
                        let text = delta["text"].as_str().unwrap_or_default();
                        self.text(text, on_text);
                    }
                    (Some("input_json_delta"), Some(Block::Tool { json, .. })) => {
                        json.push_str(delta["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {} // thinking, signatures, citations
                }
            }
            "message_delta" => {
                if let Some(reason) = event["delta"]["stop_reason"].as_str() {
                    self.response.stop_reason = Some(reason.to_owned());
                }
                self.usage(&event["usage"]);
            }
            "message_stop" => self.stopped = true,
            "error" => return Err(stream_error(&event)),
            _ => {} // ping, content_block_stop, future event types
        }
        Ok(())
    }

    fn text(&mut self, text: &str, on_text: &(dyn Fn(&str) + Send + Sync)) {
        if !text.is_empty() {
            on_text(text);
            self.response.text.push_str(text);
        }
    }

    /// Later counts replace earlier ones (`message_delta` is cumulative).
    fn usage(&mut self, usage: &Value) {
        let Ok(usage) = serde_json::from_value::<WireUsage>(usage.clone()) else {
            return;
        };
        if let Some(input) = usage.input() {
            self.response.usage.input_tokens = tokens(Some(input));
        }
        if usage.output_tokens.is_some() {
            self.response.usage.output_tokens = tokens(usage.output_tokens);
        }
    }

    pub(crate) fn into_response(self) -> ChatResponse {
        let mut response = self.response;
        response.tool_calls = self
            .blocks
            .into_values()
            .filter_map(|block| match block {
                Block::Tool {
                    id,
                    name,
                    initial,
                    json,
                } => {
                    let arguments = if json.trim().is_empty() {
                        arguments(&initial)
                    } else {
                        // Normalised when valid; kept raw when not, so the
                        // model can be told what it sent.
                        serde_json::from_str::<Value>(&json).map_or(json, |v| v.to_string())
                    };
                    Some(ToolCall {
                        id,
                        name,
                        arguments,
                    })
                }
                Block::Text | Block::Other => None,
            })
            .collect();
        response
    }
}

/// Reads the whole stream; only `message_stop` ends it successfully.
pub(crate) async fn read(
    mut reader: SseReader,
    on_text: &(dyn Fn(&str) + Send + Sync),
) -> Result<ChatResponse, ProviderError> {
    let mut acc = Accumulator::default();
    while !acc.stopped {
        let Some(event) = reader.next().await? else {
            return Err(ProviderError::transient("stream ended early"));
        };
        let data = event.data.trim();
        if data.is_empty() {
            continue;
        }
        acc.apply(&event.event, data, on_text)?;
    }
    Ok(acc.into_response())
}
