//! The `local` provider: a GGUF model run inside this process
//! (`roster-local`), behind the same trait as the wire clients.
//!
//! Weights are loaded once per file and shared by every provider naming it.
//! Calls take turns on the model in arrival order (a fair queue); a call
//! that is dropped while waiting leaves the queue, and one dropped while
//! generating stops at the next token.

use crate::config::{ProviderAttributes, ProviderConfig};
use crate::error::ConfigError;
use crate::request::{ChatMessage, ChatRequest, ChatResponse, ToolChoice, Usage};
use crate::{ModelProvider, ProviderError};
use roster_core::item::ToolCall;
use roster_local::tools::{self, ToolSpec};
use roster_local::{Finish, LocalError, Message, Model, Sampling};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Semaphore};

/// Tokens an answer may have when the request and the config set none.
const DEFAULT_MAX_TOKENS: u32 = 1024;

pub struct LocalProvider {
    name: String,
    model_name: String,
    model: Arc<Model>,
    /// One generation at a time; tokio's semaphore serves waiters in order.
    turn: Arc<Semaphore>,
    /// Calls waiting for their turn (shown by `GET /v1/models`).
    waiting: Arc<AtomicUsize>,
    sampling: Sampling,
    attributes: ProviderAttributes,
}

/// Threads for a model: one on machines of up to two cores (measured: a
/// second decode thread made tokens slower there), half the cores above.
fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores <= 2 {
        1
    } else {
        cores / 2
    }
}

/// Each file is loaded once per process, whichever providers name it, and
/// stays loaded (a configuration check and the server share one load).
fn shared_model(path: &Path, threads: usize) -> Result<Arc<Model>, LocalError> {
    static LOADED: Mutex<Option<HashMap<PathBuf, Arc<Model>>>> = Mutex::new(None);
    let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(model) = loaded.get(&key) {
        return Ok(model.clone());
    }
    let model = Arc::new(Model::load(path, threads)?);
    loaded.insert(key, model.clone());
    Ok(model)
}

impl LocalProvider {
    /// Loads the model `config.model_file` names.
    pub fn new(config: ProviderConfig) -> Result<Self, ConfigError> {
        let fail = |reason: String| ConfigError::LocalModel {
            provider: config.name.clone(),
            reason,
        };
        let path = config.model_file.clone().ok_or_else(|| {
            fail("a local provider needs `model_file`, the path of a GGUF model".into())
        })?;
        // Settings first: a typo should not cost a model load.
        if let Some(t) = config.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return Err(fail(format!(
                "temperature must be between 0 and 2, not {t}"
            )));
        }
        if let Some(p) = config.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(fail(format!(
                "top_p must be above 0 and at most 1, not {p}"
            )));
        }
        if config.threads == Some(0) || config.threads.is_some_and(|t| t > 256) {
            return Err(fail("threads must be between 1 and 256".into()));
        }
        if config.max_tokens == Some(0) {
            return Err(fail("max_tokens must be at least 1".into()));
        }
        if config.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(fail("model must not be blank".into()));
        }
        let started = std::time::Instant::now();
        let model = shared_model(&path, config.threads.unwrap_or_else(default_threads))
            .map_err(|e| fail(e.to_string()))?;
        let model_name = config.model.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned())
        });
        tracing::info!(
            provider = %config.name,
            model = %model_name,
            architecture = %model.info().architecture,
            context = model.info().context,
            load_ms = started.elapsed().as_millis() as u64,
            "local model loaded"
        );
        Ok(Self {
            name: config.name.clone(),
            model_name,
            model,
            turn: Arc::new(Semaphore::new(1)),
            waiting: Arc::new(AtomicUsize::new(0)),
            sampling: Sampling {
                max_tokens: config.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS) as usize,
                temperature: config.temperature.unwrap_or(0.0),
                top_p: config.top_p,
                seed: config.seed.unwrap_or(0),
                stop: config.stop.clone(),
                ..Sampling::default()
            },
            attributes: config.attributes(),
        })
    }

    /// The model's name in routes.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// The conversation as chat-template messages: the tools are described
    /// in the system message, earlier calls are written in the format the
    /// model is asked to use, and results come back as `tool` messages (or,
    /// with `results_as_user`, as user messages, for templates that refuse
    /// other roles).
    fn messages(req: &ChatRequest, results_as_user: bool) -> Vec<Message> {
        let mut out = Vec::with_capacity(req.messages.len() + 1);
        let mut system = req.system.trim().to_owned();
        if !req.tools.is_empty() {
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system.push_str(&tools::instructions(&tool_specs(req)));
        }
        if !system.is_empty() {
            out.push(Message::new("system", system));
        }
        for message in &req.messages {
            out.push(match message {
                ChatMessage::User { text } => Message::new("user", text.clone()),
                ChatMessage::Assistant { text, tool_calls } => {
                    let calls: Vec<tools::ToolCall> = tool_calls
                        .iter()
                        .map(|call| tools::ToolCall {
                            name: call.name.clone(),
                            arguments: serde_json::from_str(&call.arguments)
                                .unwrap_or_else(|_| serde_json::json!({})),
                        })
                        .collect();
                    let mut content = text.clone();
                    if !calls.is_empty() {
                        content.push_str(&tools::render_calls(&calls));
                    }
                    Message::new("assistant", content)
                }
                ChatMessage::ToolResult {
                    name,
                    output,
                    is_error,
                    ..
                } => {
                    let outcome = if *is_error { "failed" } else { "returned" };
                    if results_as_user {
                        Message::new("user", format!("The tool {name} {outcome}: {output}"))
                    } else if *is_error {
                        Message::new("tool", format!("error: {output}"))
                    } else {
                        Message::new("tool", output.clone())
                    }
                }
            });
        }
        out
    }

    /// The prompt for `req`, falling back to results as user messages when
    /// the file's template refuses the `tool` role.
    fn prompt(&self, req: &ChatRequest) -> Result<String, ProviderError> {
        match self.model.render(&Self::messages(req, false)) {
            Err(LocalError::Template(_))
                if req
                    .messages
                    .iter()
                    .any(|m| matches!(m, ChatMessage::ToolResult { .. })) =>
            {
                self.model
                    .render(&Self::messages(req, true))
                    .map_err(provider_error)
            }
            other => other.map_err(provider_error),
        }
    }
}

/// One call counted as waiting for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sets the flag when dropped: the generation thread stops at its next token.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn provider_error(e: LocalError) -> ProviderError {
    match e {
        LocalError::ContextOverflow { .. } => ProviderError::ContextOverflow {
            message: e.to_string(),
        },
        LocalError::Cancelled => ProviderError::Cancelled,
        LocalError::Template(_) => ProviderError::BadRequest {
            message: e.to_string(),
        },
        LocalError::Load { .. }
        | LocalError::Inference(_)
        | LocalError::Constraint(_)
        | LocalError::UnfinishedToolCall { .. } => ProviderError::InvalidResponse {
            message: e.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl ModelProvider for LocalProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        if req.model != self.model_name {
            return Err(ProviderError::NotFound {
                message: format!(
                    "the local provider `{}` runs `{}`, not `{}`",
                    self.name, self.model_name, req.model
                ),
            });
        }
        let prompt = self.prompt(req)?;
        let tools = tool_specs(req);
        let required = req.tool_choice == ToolChoice::Required;
        let mut sampling = self.sampling.clone();
        if let Some(max) = req.max_tokens {
            sampling.max_tokens = max as usize;
        }
        let busy = self.turn.available_permits() == 0;
        let _turn = {
            // Counted while waiting, however the wait ends (a cancelled
            // run drops this future mid-wait).
            let _waiting = Waiting::start(&self.waiting);
            if busy {
                tracing::info!(
                    provider = %self.name,
                    ahead = self.waiting.load(Ordering::Relaxed),
                    "waiting for the local model, busy with another call"
                );
            }
            self.turn
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ProviderError::Cancelled)?
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(cancelled.clone());
        let (deltas, mut received) = mpsc::unbounded_channel::<String>();
        let model = self.model.clone();
        let stream = req.stream;
        let generation = tokio::task::spawn_blocking(move || {
            model.generate(
                &prompt,
                tools::Offer {
                    tools: &tools,
                    required,
                },
                &sampling,
                &cancelled,
                &mut |text: &str| {
                    if stream {
                        let _ = deltas.send(text.to_owned());
                    }
                },
            )
        });
        while let Some(delta) = received.recv().await {
            on_text(&delta);
        }
        let generated = generation
            .await
            .map_err(|e| ProviderError::InvalidResponse {
                message: format!("the local model stopped: {e}"),
            })?
            .map_err(provider_error)?;
        // Ids unique within the conversation, as results are matched by id.
        let batch = uuid::Uuid::now_v7().simple().to_string();
        let tool_calls: Vec<ToolCall> = generated
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, call)| ToolCall {
                id: format!("call_{}_{i}", &batch[batch.len() - 12..]),
                name: call.name.clone(),
                arguments: call.arguments.to_string(),
            })
            .collect();
        Ok(ChatResponse {
            text: generated.text,
            tool_calls,
            usage: Usage {
                input_tokens: u32::try_from(generated.prompt_tokens).unwrap_or(u32::MAX),
                output_tokens: u32::try_from(generated.output_tokens).unwrap_or(u32::MAX),
            },
            stop_reason: Some(
                match generated.finish {
                    Finish::Stop => "stop",
                    Finish::Length => "length",
                    Finish::ToolCalls => "tool_calls",
                }
                .to_owned(),
            ),
        })
    }

    fn attributes(&self) -> ProviderAttributes {
        self.attributes.clone()
    }

    fn models(&self) -> Vec<String> {
        vec![self.model_name.clone()]
    }

    fn queue(&self) -> Option<crate::QueueDepth> {
        Some(crate::QueueDepth {
            running: 1 - self.turn.available_permits().min(1),
            waiting: self.waiting.load(Ordering::Relaxed),
        })
    }

    /// A local model has no outages to wait out: a failure is final.
    fn max_retries(&self) -> Option<u32> {
        Some(0)
    }
}

fn tool_specs(req: &ChatRequest) -> Vec<ToolSpec> {
    req.tools
        .iter()
        .map(|t| ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.parameters.clone(),
        })
        .collect()
}
