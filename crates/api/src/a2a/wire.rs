//! A2A's JSON shapes in the two protocol versions Roster speaks: 1.0
//! (ProtoJSON: `TASK_STATE_COMPLETED`, `ROLE_AGENT`, parts `{text}`, stream
//! results wrapped as `{task}` / `{statusUpdate}` / `{artifactUpdate}`) and
//! 0.3 (`completed`, `agent`, parts `{kind: "text", text}`, objects tagged
//! with `kind`, a `final` flag). A task is a run; its context the session.

use roster_core::run::{Run, RunStatus};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V03,
    V10,
}

impl Version {
    /// From the `A2A-Version` header: absent or empty means 0.3.
    pub fn from_header(value: Option<&str>) -> Option<Version> {
        match value.map(str::trim).unwrap_or("") {
            "" => Some(Version::V03),
            v if v == "0.3" || v.starts_with("0.3.") => Some(Version::V03),
            v if v == "1.0" || v.starts_with("1.0.") => Some(Version::V10),
            _ => None,
        }
    }
}

/// Where a run stands, as a task state.
pub fn state(status: RunStatus, v: Version) -> &'static str {
    match (status, v) {
        (RunStatus::Queued, Version::V10) => "TASK_STATE_SUBMITTED",
        (RunStatus::Running, Version::V10) => "TASK_STATE_WORKING",
        (RunStatus::AwaitingApproval, Version::V10) => "TASK_STATE_INPUT_REQUIRED",
        (RunStatus::Completed, Version::V10) => "TASK_STATE_COMPLETED",
        (RunStatus::Failed, Version::V10) => "TASK_STATE_FAILED",
        (RunStatus::Cancelled, Version::V10) => "TASK_STATE_CANCELED",
        (RunStatus::Queued, Version::V03) => "submitted",
        (RunStatus::Running, Version::V03) => "working",
        (RunStatus::AwaitingApproval, Version::V03) => "input-required",
        (RunStatus::Completed, Version::V03) => "completed",
        (RunStatus::Failed, Version::V03) => "failed",
        (RunStatus::Cancelled, Version::V03) => "canceled",
    }
}

/// The run statuses a `ListTasks` status filter names.
pub fn statuses_of(state: &str) -> Option<RunStatus> {
    Some(match state {
        "TASK_STATE_SUBMITTED" | "submitted" => RunStatus::Queued,
        "TASK_STATE_WORKING" | "working" => RunStatus::Running,
        "TASK_STATE_INPUT_REQUIRED" | "input-required" => RunStatus::AwaitingApproval,
        "TASK_STATE_COMPLETED" | "completed" => RunStatus::Completed,
        "TASK_STATE_FAILED" | "failed" => RunStatus::Failed,
        "TASK_STATE_CANCELED" | "canceled" => RunStatus::Cancelled,
        _ => return None,
    })
}

/// A task that waits (for a person) or has ended: a stream stops there.
pub fn settled(status: RunStatus) -> bool {
    status.is_finished() || status == RunStatus::AwaitingApproval
}

fn text_part(text: &str, v: Version) -> Value {
    match v {
        Version::V10 => json!({"text": text}),
        Version::V03 => json!({"kind": "text", "text": text}),
    }
}

fn message(id: String, agent: bool, text: &str, run: &Run, v: Version) -> Value {
    let role = match (agent, v) {
        (true, Version::V10) => "ROLE_AGENT",
        (false, Version::V10) => "ROLE_USER",
        (true, Version::V03) => "agent",
        (false, Version::V03) => "user",
    };
    let mut message = json!({
        "messageId": id,
        "contextId": run.session_id,
        "taskId": run.id,
        "role": role,
        "parts": [text_part(text, v)],
    });
    if v == Version::V03 {
        message["kind"] = json!("message");
    }
    message
}

/// What the agent says with the task's status: its answer, why it failed,
/// or what it waits for.
fn status_text(run: &Run) -> Option<String> {
    match run.status {
        RunStatus::Completed => run.output.clone(),
        RunStatus::Failed => run.error.as_ref().map(|e| format!("{}: {}", e.code, e.message)),
        RunStatus::AwaitingApproval => Some(format!(
            "run {} waits for a person to approve a tool call (GET /v1/approvals); the task goes on once it is decided",
            run.id
        )),
        RunStatus::Cancelled => Some("the task was cancelled".into()),
        _ => None,
    }
}

pub fn status(run: &Run, v: Version) -> Value {
    let at = run.finished_at.or(run.started_at).unwrap_or(run.created_at);
    let mut status = json!({
        "state": state(run.status, v),
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(text) = status_text(run) {
        status["message"] = message(format!("{}-status", run.id), true, &text, run, v);
    }
    status
}

/// The answer as an artifact (a completed task's).
pub fn answer(run: &Run, v: Version) -> Option<Value> {
    let output = run
        .output
        .as_deref()
        .filter(|_| run.status == RunStatus::Completed)?;
    Some(json!({
        "artifactId": format!("{}-answer", run.id),
        "name": "answer",
        "parts": [text_part(output, v)],
    }))
}

/// The task: status, the answer as an artifact, and the history (the
/// input and the answer), the newest `history_length` of it.
pub fn task(run: &Run, history_length: Option<usize>, v: Version) -> Value {
    let mut history = vec![message(
        format!("{}-input", run.id),
        false,
        &run.input,
        run,
        v,
    )];
    if let (RunStatus::Completed, Some(output)) = (run.status, &run.output) {
        history.push(message(format!("{}-answer", run.id), true, output, run, v));
    }
    if let Some(keep) = history_length {
        let drop = history.len().saturating_sub(keep);
        history.drain(..drop);
    }
    let mut task = json!({
        "id": run.id,
        "contextId": run.session_id,
        "status": status(run, v),
        "artifacts": answer(run, v).into_iter().collect::<Vec<_>>(),
        "history": history,
        "metadata": {},
    });
    if v == Version::V03 {
        task["kind"] = json!("task");
    }
    task
}

/// A task as the result of `SendMessage` or the first stream event.
pub fn task_result(task: Value, v: Version) -> Value {
    match v {
        Version::V10 => json!({"task": task}),
        Version::V03 => task,
    }
}

pub fn status_update(run: &Run, v: Version) -> Value {
    match v {
        Version::V10 => json!({"statusUpdate": {
            "taskId": run.id, "contextId": run.session_id, "status": status(run, v),
        }}),
        Version::V03 => json!({
            "kind": "status-update", "taskId": run.id, "contextId": run.session_id,
            "status": status(run, v), "final": settled(run.status),
        }),
    }
}

pub fn artifact_update(run: &Run, artifact: Value, v: Version) -> Value {
    let body = json!({
        "taskId": run.id, "contextId": run.session_id, "artifact": artifact,
        "append": false, "lastChunk": true,
    });
    match v {
        Version::V10 => json!({ "artifactUpdate": body }),
        Version::V03 => {
            let mut body = body;
            body["kind"] = json!("artifact-update");
            body
        }
    }
}

/// The text of a message's parts; a part that is not text or data is
/// refused (its media type is named).
pub fn message_text(message: &Value) -> Result<String, String> {
    let parts = message
        .get("parts")
        .and_then(Value::as_array)
        .ok_or_else(|| "message.parts must be a list".to_owned())?;
    let mut texts = Vec::new();
    for part in parts {
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            texts.push(text.to_owned());
        } else if let Some(data) = part.get("data") {
            texts.push(data.to_string());
        } else {
            let kind = part
                .get("mediaType")
                .or_else(|| part.get("kind"))
                .and_then(Value::as_str)
                .unwrap_or("a file");
            return Err(format!(
                "parts of type `{kind}` are not accepted; send text or data"
            ));
        }
    }
    Ok(texts.join("\n"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn versions_come_from_the_header() {
        assert_eq!(Version::from_header(None), Some(Version::V03));
        assert_eq!(Version::from_header(Some("")), Some(Version::V03));
        assert_eq!(Version::from_header(Some("1.0")), Some(Version::V10));
        assert_eq!(Version::from_header(Some("0.3.0")), Some(Version::V03));
        assert_eq!(Version::from_header(Some("2.0")), None);
    }

    #[test]
    fn text_and_data_parts_are_read_files_refused() {
        let text =
            message_text(&json!({"parts": [{"text": "a"}, {"kind": "data", "data": {"k": 1}}]}));
        assert_eq!(text.unwrap(), "a\n{\"k\":1}");
        let refused = message_text(&json!({"parts": [{"url": "x", "mediaType": "image/png"}]}));
        assert!(refused.unwrap_err().contains("image/png"));
    }
}
