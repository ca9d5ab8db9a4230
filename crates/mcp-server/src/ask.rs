//! Asking an agent (`ask_NAME`) and continuing a session
//! (`continue_session`): the same runtime calls as `POST /v1/sessions` and
//! `POST /v1/sessions/{id}/messages` — a session made for the key's user,
//! then `Runtime::start_run` (the session as the key may see it, a live
//! agent, `invoke_agent` decided and audited, the busy-session policy,
//! budgets and the ledger in the run) and `wait_settled`.

use crate::args::{self, Answer};
use crate::error::ToolError;
use rmcp::model::{CallToolResult, ContentBlock};
use roster_api::auth::Principal;
use roster_api::{ApiError, AppState};
use roster_core::actor::Actor;
use roster_core::agent::Agent;
use roster_core::run::{Run, RunStatus};
use roster_core::SessionId;
use roster_runtime::RunRequest;
use std::time::Duration;

/// How long a call waits for its run, as a waiting `POST …/messages` does;
/// the run goes on after it either way.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// `ask_NAME`: in the session named (one of this agent's the key may see)
/// or a new one.
pub(crate) async fn ask(
    state: &AppState,
    principal: &Principal,
    agent: &Agent,
    request: args::Ask,
) -> Result<CallToolResult, ToolError> {
    args::check_message(&request.message)?;
    let actor = principal.actor();
    let Some(raw) = request.session else {
        let user = roster_api::identity::session_user(principal, request.user.as_deref())?;
        // A refused first call takes its new session with it (the front
        // door's `start_first_run`), as on the API's other surfaces.
        let created = state
            .runtime
            .start_first_run(&actor, agent, user.as_deref(), request_of(request.message))
            .await?;
        return settle(state, &actor, created).await;
    };
    let session = state
        .runtime
        .session_for(&actor, &session_id(&raw)?)
        .await?;
    if session.agent_id != agent.id {
        return Err(ToolError::Arguments(format!(
            "session {raw} is not a session of agent `{}`; continue it with `{}`",
            agent.name,
            crate::catalogue::CONTINUE
        )));
    }
    if let Some(user) = &request.user {
        if session.user.as_deref() != Some(user.as_str()) {
            return Err(ToolError::Arguments(format!(
                "`user` names another user than session {raw} works for; leave it out to continue the session"
            )));
        }
    }
    run(state, &actor, &session.id, request.message).await
}

/// `continue_session`: the front door finds the session as the key may see
/// it (another user's, or another tenant's, does not exist for it).
pub(crate) async fn continue_session(
    state: &AppState,
    principal: &Principal,
    request: args::Continue,
) -> Result<CallToolResult, ToolError> {
    args::check_message(&request.message)?;
    let session = session_id(&request.session)?;
    run(state, &principal.actor(), &session, request.message).await
}

/// A session id, or `not_found` as the API answers a malformed one.
fn session_id(raw: &str) -> Result<SessionId, ToolError> {
    SessionId::parse(raw).ok_or_else(|| ApiError::not_found("session").into())
}

fn request_of(message: String) -> RunRequest {
    RunRequest {
        input: message,
        idempotency_key: None,
        if_busy: None,
        notify: Vec::new(),
        turn: None,
    }
}

async fn run(
    state: &AppState,
    actor: &Actor,
    session: &SessionId,
    message: String,
) -> Result<CallToolResult, ToolError> {
    let created = state
        .runtime
        .start_run(actor, session, request_of(message))
        .await?;
    settle(state, actor, created).await
}

/// Waits for the run and renders it.
async fn settle(
    state: &AppState,
    actor: &Actor,
    created: roster_store::CreatedRun,
) -> Result<CallToolResult, ToolError> {
    let run = state
        .runtime
        .wait_settled(&actor.tenant, &created.run().id, WAIT_LIMIT)
        .await?;
    Ok(render(&run.session_id, &run))
}

/// The run as the caller sees it: the answer, or why there is none yet.
fn render(session: &SessionId, run: &Run) -> CallToolResult {
    let answer = Answer {
        session: session.to_string(),
        run: run.id.to_string(),
        status: run.status.as_str().to_owned(),
        output: run.output.clone(),
    };
    let (text, failed) = match run.status {
        RunStatus::Completed => (run.output.clone().unwrap_or_default(), false),
        RunStatus::AwaitingApproval => (
            format!(
                "run {} awaits approval: a tool call it made needs a person's decision \
                 (GET /v1/approvals). It goes on once decided; its answer will be in session {session}.",
                run.id
            ),
            true,
        ),
        RunStatus::Failed => (
            match &run.error {
                Some(e) => format!("run {} failed: {}: {}", run.id, e.code, e.message),
                None => format!("run {} failed", run.id),
            },
            true,
        ),
        RunStatus::Cancelled => (format!("run {} was cancelled", run.id), true),
        RunStatus::Queued | RunStatus::Running => (
            format!(
                "run {} is still {} after {} s; it goes on (GET /v1/runs/{})",
                run.id,
                run.status.as_str(),
                WAIT_LIMIT.as_secs(),
                run.id
            ),
            true,
        ),
    };
    let content = vec![
        ContentBlock::text(text),
        ContentBlock::text(format!(
            "(session {session}: pass it as `session` to continue this conversation)"
        )),
    ];
    let mut result = if failed {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    result.structured_content = serde_json::to_value(&answer).ok();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: RunStatus, output: Option<&str>) -> Run {
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": roster_core::RunId::generate(),
            "session_id": SessionId::generate(),
            "status": status,
            "input": "hi",
            "output": output,
            "error": null,
            "agent_version": 1,
            "created_at": "2026-01-01T00:00:00Z",
            "started_at": null,
            "finished_at": null,
        }))
        .expect("a run");
        if status == RunStatus::Failed {
            run.error = Some(roster_core::run::RunError::new(
                "budget_exceeded",
                "the daily budget is spent",
            ));
        }
        run
    }

    fn text(result: &CallToolResult, at: usize) -> String {
        result.content[at]
            .as_text()
            .map(|t| t.text.clone())
            .unwrap_or_default()
    }

    #[test]
    fn a_finished_run_is_its_answer_with_the_session_to_continue() {
        let session = SessionId::generate();
        let done = run(RunStatus::Completed, Some("Paris."));
        let result = render(&session, &done);
        assert_eq!(result.is_error, Some(false));
        assert_eq!(text(&result, 0), "Paris.");
        assert!(text(&result, 1).contains(session.as_str()));
        let structured = result.structured_content.expect("structured");
        assert_eq!(structured["session"], session.as_str());
        assert_eq!(structured["run"], done.id.as_str());
        assert_eq!(structured["status"], "completed");
        assert_eq!(structured["output"], "Paris.");
    }

    #[test]
    fn runs_without_an_answer_are_errors_that_say_why() {
        let session = SessionId::generate();
        let waiting = run(RunStatus::AwaitingApproval, None);
        let result = render(&session, &waiting);
        assert_eq!(result.is_error, Some(true));
        let said = text(&result, 0);
        assert!(
            said.contains(waiting.id.as_str()) && said.contains("awaits approval"),
            "{said}"
        );
        assert_eq!(
            result.structured_content.expect("structured")["status"],
            "awaiting_approval"
        );
        let failed = render(&session, &run(RunStatus::Failed, None));
        assert!(text(&failed, 0).contains("budget_exceeded: the daily budget is spent"));
        let cancelled = render(&session, &run(RunStatus::Cancelled, None));
        assert!(text(&cancelled, 0).contains("was cancelled"));
        let slow = render(&session, &run(RunStatus::Running, None));
        assert!(text(&slow, 0).contains("is still running"));
    }
}
