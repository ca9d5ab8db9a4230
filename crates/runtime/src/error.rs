//! Runtime errors: what a caller of [`crate::Runtime`] can get back.

use roster_core::run::RunStatus;
use roster_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("run {0} has already finished")]
    AlreadyFinished(String),
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// The input is larger than the agent's context budget leaves for it.
    #[error("the input is about {tokens} tokens, more than the {available} this agent's context leaves for it (context_tokens {context_tokens} minus {pinned} for its instructions and pinned memory blocks); shorten it, or let the agent cut inputs with \"context\": {{\"oversized_input\": \"truncate\"}}")]
    InputTooLarge {
        tokens: u32,
        available: u32,
        context_tokens: u32,
        pinned: u32,
    },
    /// The session's agent was deleted: its history stays readable, but no
    /// new run starts.
    #[error("the agent of this session was deleted; its history stays readable but it takes no new messages")]
    AgentDeleted,
    /// The tenant's policies refuse the action; the reason names the policy.
    #[error("{0}")]
    Denied(String),
    /// The key asks for something beyond its own scopes.
    #[error("{0}")]
    InsufficientScope(String),
    /// The key named a user it may not act for.
    #[error("{0}")]
    UserNotAllowed(String),
    /// The change contradicts what is stored (e.g. revoking the admin key).
    #[error("{0}")]
    Conflict(String),
    /// The approval was asked for by this actor's own run (or its user's),
    /// and the policy does not allow self-approval.
    #[error("this request came from a run this key (or its user) started; another key must decide it (or annotate the policy that asks for approval with @self_approval)")]
    SelfApproval,
    /// The approval was already decided or expired, or its run no longer
    /// waits.
    #[error("{0}")]
    NotPending(String),
    /// A policy document that does not parse, validate or fit.
    #[error("{0}")]
    InvalidPolicy(String),
    /// Only a failed run can be retried.
    #[error("run {run} is {}; only a failed run can be retried", status.as_str())]
    NotRetryable { run: String, status: RunStatus },
}
