//! An in-process model: answers from a script, records every request, and
//! can hold calls until the test lets them go.

use async_trait::async_trait;
use roster_core::item::ToolCall;
use roster_models::{ChatMessage, ChatRequest, ChatResponse, ModelProvider, ProviderError, Usage};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The provider name agents route to (`fake/test-model`).
pub const PROVIDER: &str = "fake";

/// One scripted answer.
pub enum Answer {
    Reply(ChatResponse),
    /// Never answers (until the call is dropped).
    Hang,
    Fail(ProviderError),
}

pub fn text(text: &str) -> Answer {
    Answer::Reply(ChatResponse {
        text: text.into(),
        usage: Usage {
            input_tokens: 1,
            output_tokens: 1,
        },
        stop_reason: Some("stop".into()),
        ..ChatResponse::default()
    })
}

pub fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

pub fn calls(calls: Vec<ToolCall>) -> Answer {
    Answer::Reply(ChatResponse {
        tool_calls: calls,
        stop_reason: Some("tool_calls".into()),
        ..ChatResponse::default()
    })
}

type Fallback = Box<dyn Fn(&ChatRequest) -> Answer + Send + Sync>;

#[derive(Default)]
pub struct ScriptedModel {
    script: Mutex<VecDeque<Answer>>,
    /// Answers when the script is empty; without one such a call fails.
    fallback: Mutex<Option<Fallback>>,
    requests: Mutex<Vec<ChatRequest>>,
    /// When set, every call waits for a permit after it is recorded.
    gate: Option<Arc<Semaphore>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl ScriptedModel {
    pub fn new(script: Vec<Answer>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into()),
            ..Self::default()
        })
    }

    /// Every call waits for a permit of the returned semaphore.
    pub fn gated(script: Vec<Answer>) -> (Arc<Self>, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        let model = Arc::new(Self {
            script: Mutex::new(script.into()),
            gate: Some(gate.clone()),
            ..Self::default()
        });
        (model, gate)
    }

    pub fn push(&self, answer: Answer) {
        lock(&self.script).push_back(answer);
    }

    pub fn set_fallback(&self, f: impl Fn(&ChatRequest) -> Answer + Send + Sync + 'static) {
        *lock(&self.fallback) = Some(Box::new(f));
    }

    pub fn request_count(&self) -> usize {
        lock(&self.requests).len()
    }

    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    pub fn request(&self, i: usize) -> ChatRequest {
        lock(&self.requests)[i].clone()
    }

    /// Most calls ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Decrements the in-flight count however the call ends (even dropped).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ModelProvider for ScriptedModel {
    fn name(&self) -> &str {
        PROVIDER
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _in_flight = InFlight(&self.in_flight);
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        lock(&self.requests).push(req.clone());
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        let next = lock(&self.script).pop_front();
        let answer = match next {
            Some(answer) => answer,
            None => match &*lock(&self.fallback) {
                Some(f) => f(req),
                None => Answer::Fail(ProviderError::BadRequest {
                    message: "scripted model: no answer left".into(),
                }),
            },
        };
        match answer {
            Answer::Reply(response) => {
                if req.stream {
                    for word in response.text.split_inclusive(' ') {
                        on_text(word);
                    }
                }
                Ok(response)
            }
            Answer::Hang => std::future::pending().await,
            Answer::Fail(error) => Err(error),
        }
    }

    fn max_retries(&self) -> Option<u32> {
        Some(0)
    }
}

/// The text of the last user message of a request.
pub fn last_user_text(req: &ChatRequest) -> Option<String> {
    req.messages.iter().rev().find_map(|m| match m {
        ChatMessage::User { text } => Some(text.clone()),
        _ => None,
    })
}

/// The tool results a request carries, as (call id, output, is_error).
pub fn request_results(req: &ChatRequest) -> Vec<(String, String, bool)> {
    req.messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::ToolResult {
                call_id,
                output,
                is_error,
                ..
            } => Some((call_id.clone(), output.clone(), *is_error)),
            _ => None,
        })
        .collect()
}
