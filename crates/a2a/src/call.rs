//! One call to a remote agent: the session's conversation read, the
//! message sent (`SendMessage` or `message/send`, blocking), a task that is
//! still running polled until it stops, the conversation's new state
//! stored, and the answer turned into the model's tool result. The whole
//! exchange is bounded by the registration's timeout.
//!
//! Nothing here sends a message twice, except when the remote refused the
//! first for naming a task it no longer has (so nothing was done): a call
//! is not idempotent, and the runtime does not repeat one a crash cut off.

use crate::answer::Answer;
use crate::manager::{Remote, Remotes};
use crate::rpc::{self, Endpoint, Method};
use crate::tool::{tool_name, AskArguments};
use crate::wire::{self, Reply};
use crate::RemoteError;
use roster_core::{SessionId, TenantId};
use roster_store::remotes::RemoteContext;
use roster_tool::ToolOutput;
use std::time::Duration;

/// First wait before asking again about a task the remote left running
/// (it answered without blocking); doubled up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(2);

/// A2A's "task not found" and "unsupported operation" (a message to a task
/// in a terminal state): the waiting task Roster named is gone.
const STALE_TASK: [i64; 2] = [-32001, -32004];

/// What the model is told when the exchange failed.
fn failure(remote: &str, error: &RemoteError) -> String {
    match error {
        RemoteError::Egress(e) => format!("remote agent `{remote}` cannot be reached: {e}"),
        e if e.unauthorized() => format!(
            "remote agent `{remote}` refused Roster's credentials ({e}); its registration needs valid ones"
        ),
        RemoteError::Rpc { code: -32009, .. } => format!(
            "remote agent `{remote}` answered with an error: {error}; its card may have changed (refresh its registration)"
        ),
        RemoteError::Rpc { .. } => {
            format!("remote agent `{remote}` answered with an error: {error}")
        }
        e => format!("the call to remote agent `{remote}` failed: {e}"),
    }
}

impl Remotes {
    /// Sends `arguments.message` to the remote `name` in the conversation
    /// `session` holds with it. Every failure is an error result the model
    /// reads; none stops the run.
    pub async fn call(
        &self,
        tenant: &TenantId,
        name: &str,
        session: &SessionId,
        arguments: serde_json::Value,
    ) -> ToolOutput {
        let arguments: AskArguments = match serde_json::from_value(arguments) {
            Ok(arguments) => arguments,
            Err(e) => return ToolOutput::error(format!("invalid arguments: {e}")),
        };
        if arguments.message.trim().is_empty() {
            return ToolOutput::error("`message` is empty: say what to ask the remote agent");
        }
        let remote = match self.remote(tenant, name).await {
            Ok(remote) => remote,
            Err(e) => return ToolOutput::error(format!("remote agent `{name}`: {e}")),
        };
        // One deadline for waiting for the session's turn and the exchange,
        // so the call ends within the registration's timeout either way.
        let timeout = Duration::from_secs(remote.config.timeout_secs);
        let deadline = tokio::time::Instant::now() + timeout;
        let Ok(_turn) =
            tokio::time::timeout_at(deadline, self.turns.take(&remote.id, session)).await
        else {
            return ToolOutput::error(format!(
                "another call of this session to remote agent `{name}` was still running after {timeout:?}; this one was not sent"
            ));
        };
        let previous = if arguments.new_conversation {
            None
        } else {
            match self
                .store()
                .remote_context(tenant, &remote.id, session)
                .await
            {
                Ok(previous) => previous,
                Err(e) => {
                    return ToolOutput::error(format!(
                        "cannot read this session's conversation with `{name}`: {e}"
                    ))
                }
            }
        };
        let exchange = self.exchange(&remote, &arguments.message, previous.as_ref());
        let answer = match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return ToolOutput::error(failure(name, &e)),
            Err(_) => {
                return ToolOutput::error(format!(
                    "remote agent `{name}` did not answer within {timeout:?}; Roster stopped waiting (the remote may still finish its task)"
                ))
            }
        };
        // The remote keeps the conversation its answer names; an answer
        // naming none leaves the one the session had.
        let context_id = answer
            .context_id
            .clone()
            .or_else(|| previous.map(|p| p.context_id));
        if let Err(e) = self
            .store()
            .set_remote_context(
                tenant,
                &remote.id,
                session,
                context_id.as_deref(),
                answer.waiting_task.as_deref(),
            )
            .await
        {
            // The answer stands (the remote acted); only the next call
            // may start a new conversation.
            tracing::warn!(remote = name, error = %e, "cannot store a session's conversation with a remote agent");
        }
        answer.into_output(name, &tool_name(name))
    }

    /// Sends the message and waits for the task to stop.
    async fn exchange(
        &self,
        remote: &Remote,
        text: &str,
        previous: Option<&RemoteContext>,
    ) -> Result<Answer, RemoteError> {
        let protocol = remote.config.card.protocol;
        let tenant = remote.config.card.tenant.as_deref();
        let endpoint = Endpoint {
            egress: &self.egress,
            client: &remote.client,
            url: &remote.endpoint,
            protocol,
            headers: &remote.headers,
        };
        let context = previous.map(|p| p.context_id.as_str());
        let task = previous.and_then(|p| p.task_id.as_deref());
        let message_id = || uuid::Uuid::now_v7().to_string();
        let params = wire::send_params(protocol, &message_id(), text, context, task, tenant);
        let result = match rpc::call(&endpoint, Method::SendMessage, params).await {
            Err(e) if task.is_some() && e.rpc_code().is_some_and(|c| STALE_TASK.contains(&c)) => {
                let params =
                    wire::send_params(protocol, &message_id(), text, context, None, tenant);
                rpc::call(&endpoint, Method::SendMessage, params).await?
            }
            other => other?,
        };
        let mut reply = wire::parse_reply(result).map_err(RemoteError::InvalidResponse)?;
        let mut wait = FIRST_POLL;
        while let Reply::Task(running) = &reply {
            if !running.state.is_running() {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_POLL);
            let params = wire::get_task_params(protocol, &running.id, tenant);
            let result = rpc::call(&endpoint, Method::GetTask, params).await?;
            reply = Reply::Task(wire::parse_task(result).map_err(RemoteError::InvalidResponse)?);
        }
        Ok(Answer::read(&reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_what_to_do() {
        let denied = RemoteError::Egress(roster_egress::EgressError::Denied(
            "`10.0.0.1:80` is private".into(),
        ));
        assert_eq!(
            failure("crm", &denied),
            "remote agent `crm` cannot be reached: `10.0.0.1:80` is private"
        );
        let unauthorized = RemoteError::Status {
            status: 401,
            body: String::new(),
        };
        assert!(failure("crm", &unauthorized).contains("refused Roster's credentials (HTTP 401)"));
        let version = RemoteError::Rpc {
            code: -32009,
            message: "no".into(),
        };
        assert!(failure("crm", &version).contains("refresh its registration"));
        let rpc = RemoteError::Rpc {
            code: -32603,
            message: "boom".into(),
        };
        assert_eq!(
            failure("crm", &rpc),
            "remote agent `crm` answered with an error: internal error (-32603): boom"
        );
        assert_eq!(
            failure("crm", &RemoteError::Transport("connection refused".into())),
            "the call to remote agent `crm` failed: connection refused"
        );
    }
}
