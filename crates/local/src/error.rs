use thiserror::Error;

/// What can go wrong loading or running a local model.
#[derive(Debug, Error)]
pub enum LocalError {
    /// The file cannot be read or is not a GGUF model we can run.
    #[error("cannot load the model `{path}`: {message}")]
    Load { path: String, message: String },
    /// The prompt and the answer's room do not fit the context window.
    #[error("the prompt has {prompt} tokens; with {reserve} for the answer that is over the model's context of {context}")]
    ContextOverflow {
        prompt: usize,
        reserve: usize,
        context: usize,
    },
    /// The chat template cannot be rendered for these messages.
    #[error("the model's chat template failed: {0}")]
    Template(String),
    /// The model failed while running (a tensor error).
    #[error("the model failed: {0}")]
    Inference(String),
    /// The tool-call grammar could not be built or followed (a tool's
    /// schema the engine refuses even leniently).
    #[error("tool call constraint: {0}")]
    Constraint(String),
    /// The answer's token limit ran out in the middle of a tool call; the
    /// half-written call is not returned.
    #[error(
        "the token limit ({limit}) ran out in the middle of a tool call, which ended with `{tail}`"
    )]
    UnfinishedToolCall { limit: usize, tail: String },
    /// The caller stopped the generation.
    #[error("cancelled")]
    Cancelled,
}

impl LocalError {
    pub(crate) fn inference(e: impl std::fmt::Display) -> Self {
        LocalError::Inference(first_line(e))
    }
}

/// candle's errors carry a backtrace after their message when
/// `RUST_BACKTRACE` is set; an error shown to a user is one line.
pub(crate) fn first_line(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}
