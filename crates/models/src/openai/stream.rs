//! OpenAI chat-completions streaming: folds SSE chunks into one
//! `ChatResponse`, passing text deltas on as they arrive.
//!
//! Owns the accumulation of `delta.content` and of `delta.tool_calls` by
//! index, and the rule for when a stream counts as finished (`[DONE]`, or a
//! `finish_reason` before the body ended). Must never return a response from
//! a stream that was cut before either.

use super::wire::{arguments_text, call_id, content_text, is_overflow, WireUsage};
use crate::error::ProviderError;
use crate::error_body::{quote, ErrorBody};
use crate::request::ChatResponse;
use crate::sse::SseReader;
use roster_core::item::ToolCall;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Option<Vec<DeltaCall>>,
}

#[derive(Deserialize)]
struct DeltaCall {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Value,
}

/// A tool call being assembled from fragments.
#[derive(Default)]
struct PartialCall {
    index: Option<u64>,
    id: Option<String>,
    name: String,
    arguments: String,
}

/// The response assembled so far.
#[derive(Default)]
pub(crate) struct Accumulator {
    response: ChatResponse,
    calls: Vec<PartialCall>,
    saw_choice: bool,
}

impl Accumulator {
    /// Folds in one `data:` payload (not `[DONE]`).
    pub(crate) fn apply(
        &mut self,
        data: &str,
        on_text: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), ProviderError> {
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::invalid(format!("bad stream chunk ({e}): {}", quote(data)))
        })?;
        if let Some(error) = chunk.error.as_ref().and_then(ErrorBody::from_value) {
            return Err(stream_error(&error));
        }
        if let Some(usage) = chunk.usage {
            self.response.usage = usage.usage();
        }
        for choice in chunk.choices.unwrap_or_default() {
            self.saw_choice = true;
            if let Some(delta) = choice.delta {
                let text = content_text(&delta.content);
                if !text.is_empty() {
                    on_text(&text);
                    self.response.text.push_str(&text);
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    self.add_fragment(call);
                }
            }
            if choice.finish_reason.is_some() {
                self.response.stop_reason = choice.finish_reason;
            }
        }
        Ok(())
    }

    /// Adds a tool-call fragment: by `index` when the server gives one, else
    /// a new call when a new id appears, else the last call.
    fn add_fragment(&mut self, fragment: DeltaCall) {
        let id = fragment.id.filter(|id| !id.is_empty());
        let position = match fragment.index {
            Some(index) => self.calls.iter().position(|c| c.index == Some(index)),
            None => match &id {
                Some(id) if !self.calls.iter().any(|c| c.id.as_ref() == Some(id)) => None,
                Some(id) => self.calls.iter().position(|c| c.id.as_ref() == Some(id)),
                None => self.calls.len().checked_sub(1),
            },
        };
        let position = position.unwrap_or_else(|| {
            self.calls.push(PartialCall {
                index: fragment.index,
                ..PartialCall::default()
            });
            self.calls.len() - 1
        });
        let Some(call) = self.calls.get_mut(position) else {
            return;
        };
        if call.id.is_none() {
            call.id = id;
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                if call.name.is_empty() {
                    call.name = name;
                } else if call.name != name {
                    // Some servers repeat the name in every fragment.
                    call.name.push_str(&name);
                }
            }
            call.arguments
                .push_str(&arguments_text(&function.arguments));
        }
    }

    fn finished(&self) -> bool {
        self.response.stop_reason.is_some()
    }

    pub(crate) fn into_response(self) -> ChatResponse {
        let mut response = self.response;
        response.tool_calls = self
            .calls
            .into_iter()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: call_id(c.id, i),
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        response
    }
}

/// An `{"error":...}` chunk in the middle of a stream.
fn stream_error(error: &ErrorBody) -> ProviderError {
    let message = error.message.clone();
    let label = format!(
        "{} {}",
        error.kind.as_deref().unwrap_or_default(),
        error.code.as_deref().unwrap_or_default()
    );
    if is_overflow(error) {
        ProviderError::ContextOverflow { message }
    } else if label.contains("rate_limit") {
        ProviderError::RateLimited {
            retry_after: None,
            message,
        }
    } else if label.contains("invalid_request") {
        ProviderError::BadRequest { message }
    } else {
        ProviderError::Transient { message }
    }
}

/// Reads the whole stream. Ends at `[DONE]`; a body that ends (or breaks)
/// after a `finish_reason` but without `[DONE]` is accepted, one that ends
/// before is `Transient`.
pub(crate) async fn read(
    mut reader: SseReader,
    on_text: &(dyn Fn(&str) + Send + Sync),
) -> Result<ChatResponse, ProviderError> {
    let mut acc = Accumulator::default();
    loop {
        let event = match reader.next().await {
            Ok(Some(event)) => event,
            Ok(None) if acc.finished() => break,
            Ok(None) => return Err(ProviderError::transient("stream ended early")),
            Err(ProviderError::Transient { .. }) if acc.finished() => break,
            Err(e) => return Err(e),
        };
        let data = event.data.trim();
        if data == "[DONE]" {
            if !acc.saw_choice {
                return Err(ProviderError::invalid("no choices in stream"));
            }
            break;
        }
        if data.is_empty() || event.event == "ping" {
            continue;
        }
        acc.apply(data, on_text)?;
    }
    Ok(acc.into_response())
}
