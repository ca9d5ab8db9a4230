//! The [`Reply`] builder: one scripted answer of the fake model server, kept
//! protocol-neutral so the same script can drive an OpenAI or an Anthropic
//! client. Rendering to each wire format lives in `openai.rs` / `anthropic.rs`.

use std::time::Duration;

/// One tool call the fake model makes. `arguments` is passed through verbatim
/// and may deliberately be invalid JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScriptedToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What the reply says, before any delivery modifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    /// An assistant message: optional text and zero or more tool calls.
    Message {
        text: Option<String>,
        tool_calls: Vec<ScriptedToolCall>,
    },
    /// An error in the protocol's native error format.
    Error { status: u16, message: String },
    /// The protocol's "context window exceeded" error.
    ContextOverflow,
    /// Exact bytes, whatever the protocol.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// A successful answer with no choices / no content blocks.
    EmptyChoices,
}

/// A scripted answer. Build one with a constructor ([`Reply::text`],
/// [`Reply::tool_call`], [`Reply::error`], ...) and refine it with the
/// chained modifiers ([`Reply::with_usage`], [`Reply::delayed`],
/// [`Reply::cut_stream`], ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub(crate) kind: ReplyKind,
    pub(crate) input_tokens: u32,
    pub(crate) output_tokens: u32,
    pub(crate) delay: Option<Duration>,
    pub(crate) retry_after: Option<u64>,
    pub(crate) cut: bool,
    pub(crate) hang: bool,
}

impl Reply {
    fn of(kind: ReplyKind) -> Reply {
        Reply {
            kind,
            input_tokens: 10,
            output_tokens: 5,
            delay: None,
            retry_after: None,
            cut: false,
            hang: false,
        }
    }

    /// A final assistant message with this text and no tool calls.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::of(ReplyKind::Message {
            text: Some(text.into()),
            tool_calls: Vec::new(),
        })
    }

    /// An assistant message asking for one tool call. `arguments_json` is sent
    /// verbatim, so it may be invalid JSON on purpose.
    pub fn tool_call(id: &str, name: &str, arguments_json: &str) -> Reply {
        Reply::of(ReplyKind::Message {
            text: None,
            tool_calls: Vec::new(),
        })
        .and_tool_call(id, name, arguments_json)
    }

    /// Adds another (parallel) tool call. On a reply that is not a message
    /// (an error, raw bytes, ...) it turns the reply into a message with just
    /// this tool call.
    pub fn and_tool_call(mut self, id: &str, name: &str, arguments_json: &str) -> Reply {
        let call = ScriptedToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: arguments_json.to_owned(),
        };
        match &mut self.kind {
            ReplyKind::Message { tool_calls, .. } => tool_calls.push(call),
            other => {
                *other = ReplyKind::Message {
                    text: None,
                    tool_calls: vec![call],
                }
            }
        }
        self
    }

    /// Sets the text that accompanies the tool calls (replacing any text
    /// already set). On a reply that is not a message it turns the reply into
    /// a text message.
    pub fn with_text(mut self, text: &str) -> Reply {
        match &mut self.kind {
            ReplyKind::Message { text: t, .. } => *t = Some(text.to_owned()),
            other => {
                *other = ReplyKind::Message {
                    text: Some(text.to_owned()),
                    tool_calls: Vec::new(),
                }
            }
        }
        self
    }

    /// Token usage reported with the answer (default: 10 in, 5 out).
    pub fn with_usage(mut self, input_tokens: u32, output_tokens: u32) -> Reply {
        self.input_tokens = input_tokens;
        self.output_tokens = output_tokens;
        self
    }

    /// Waits this long before sending anything (status line included).
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }

    /// An error with this status, in the protocol's native error format.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::of(ReplyKind::Error {
            status,
            message: message.to_owned(),
        })
    }

    /// Adds a `retry-after: <secs>` header to the answer (meant for 429s).
    pub fn retry_after(mut self, secs: u64) -> Reply {
        self.retry_after = Some(secs);
        self
    }

    /// The protocol's context-window-exceeded error: OpenAI answers 400 with
    /// `error.code = "context_length_exceeded"`; Anthropic answers 400
    /// `invalid_request_error` with "prompt is too long: 250000 tokens > 200000 maximum".
    pub fn context_overflow() -> Reply {
        Reply::of(ReplyKind::ContextOverflow)
    }

    /// Exact bytes with this status and content type (garbage, HTML error
    /// pages, ...), whichever protocol asked.
    pub fn raw(status: u16, content_type: &str, body: &str) -> Reply {
        Reply::of(ReplyKind::Raw {
            status,
            content_type: content_type.to_owned(),
            body: body.to_owned(),
        })
    }

    /// A successful answer with nothing in it: OpenAI `"choices": []`;
    /// Anthropic `"content": []` with `stop_reason: "end_turn"`.
    pub fn empty_choices() -> Reply {
        Reply::of(ReplyKind::EmptyChoices)
    }

    /// Breaks delivery half way. Streaming requests get about the first half
    /// of the SSE events and then the connection is closed abruptly, without
    /// the terminating event. Non-streaming requests get the headers and
    /// about half of the body, then the connection is closed (truncated JSON).
    pub fn cut_stream(mut self) -> Reply {
        self.cut = true;
        self
    }

    /// Never answers: the connection is held open and nothing is sent, for
    /// timeout tests. The request is still recorded and the reply consumed.
    pub fn hang(mut self) -> Reply {
        self.hang = true;
        self
    }
}
