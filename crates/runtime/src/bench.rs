//! In-process pieces for benchmarks and tests: an instant model and a
//! trivial external tool, so the runtime's own cost can be measured.

use crate::tools::{Tool, ToolCallContext, ToolOutput};
use async_trait::async_trait;
use roster_core::item::ToolCall;
use roster_models::{ChatMessage, ChatRequest, ChatResponse, ModelProvider, ProviderError, Usage};

/// Answers instantly: asks for one `echo` call after a user message, and
/// answers with text after a tool result. A turn is thus two model steps and
/// one tool step, like the peer benchmarks.
pub struct InstantModel;

#[async_trait]
impl ModelProvider for InstantModel {
    fn name(&self) -> &str {
        "instant"
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        let usage = Usage {
            input_tokens: 1,
            output_tokens: 1,
        };
        if req.tools.is_empty() {
            // A summary request: answer with a summary.
            return Ok(ChatResponse {
                text: "summary of the earlier turns".into(),
                tool_calls: vec![],
                usage,
                stop_reason: Some("stop".into()),
            });
        }
        match req.messages.last() {
            Some(ChatMessage::User { text }) => Ok(ChatResponse {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_echo".into(),
                    name: "echo".into(),
                    arguments: serde_json::json!({ "text": text }).to_string(),
                }],
                usage,
                stop_reason: Some("tool_calls".into()),
            }),
            _ => {
                if req.stream {
                    on_text("done");
                }
                Ok(ChatResponse {
                    text: "done".into(),
                    tool_calls: vec![],
                    usage,
                    stop_reason: Some("stop".into()),
                })
            }
        }
    }
}

/// Returns its `text` argument. Declared non-idempotent so every call takes
/// the full external-tool path (a `started` step, then the result).
pub struct EchoTool;

#[async_trait]
impl Tool for EchoTool {
    fn name(&self) -> &str {
        "echo"
    }

    fn description(&self) -> &str {
        "Returns its text argument."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
    }

    async fn call(&self, _ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput {
        ToolOutput::ok(arguments["text"].as_str().unwrap_or_default())
    }
}
