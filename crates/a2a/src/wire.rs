//! The A2A messages Roster sends and reads, in both dialects: the
//! `SendMessage` / `message/send` parameters it builds, and the reply (a
//! `Message` or a `Task`) it reads leniently — 1.0's ProtoJSON
//! (`ROLE_AGENT`, `TASK_STATE_COMPLETED`, parts `{text}|{data}|{url}|{raw}`,
//! the result wrapped as `{task}` or `{message}`) and 0.3's JSON
//! (`agent`, `completed`, parts with `kind`, the result itself with
//! `kind`), as a2a-python's `json_format` and compat transport read them.

use crate::card::Protocol;
use serde::Deserialize;
use serde_json::{json, Value};

/// The parameters of one outgoing message: a user message with one text
/// part, in the conversation (`contextId`) and task the session holds.
pub(crate) fn send_params(
    protocol: Protocol,
    message_id: &str,
    text: &str,
    context_id: Option<&str>,
    task_id: Option<&str>,
    tenant: Option<&str>,
) -> Value {
    let mut message = match protocol {
        Protocol::V1 => json!({
            "messageId": message_id,
            "role": "ROLE_USER",
            "parts": [{"text": text}],
        }),
        Protocol::V0 => json!({
            "kind": "message",
            "messageId": message_id,
            "role": "user",
            "parts": [{"kind": "text", "text": text}],
        }),
    };
    if let Some(context) = context_id {
        message["contextId"] = json!(context);
    }
    if let Some(task) = task_id {
        message["taskId"] = json!(task);
    }
    let mut params = json!({ "message": message });
    match protocol {
        // Blocking is 1.0's default (`returnImmediately` false); 0.3 asked
        // for it, and a2a-python's compat transport always does.
        Protocol::V0 => params["configuration"] = json!({ "blocking": true }),
        Protocol::V1 => {
            if let Some(tenant) = tenant {
                params["tenant"] = json!(tenant);
            }
        }
    }
    params
}

/// The parameters of a task lookup (`GetTask` / `tasks/get`).
pub(crate) fn get_task_params(protocol: Protocol, task_id: &str, tenant: Option<&str>) -> Value {
    let mut params = json!({ "id": task_id });
    if let (Protocol::V1, Some(tenant)) = (protocol, tenant) {
        params["tenant"] = json!(tenant);
    }
    params
}

/// One piece of a message or artifact.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    /// Structured data.
    Data(Value),
    /// A file by reference or inline: its name, type, where it is, and how
    /// many bytes were inline.
    File {
        name: Option<String>,
        media_type: Option<String>,
        url: Option<String>,
        inline_bytes: Option<usize>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Agent,
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
    pub context_id: Option<String>,
    pub task_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub name: Option<String>,
    pub parts: Vec<Part>,
}

/// A task's state, read from either spelling (`TASK_STATE_INPUT_REQUIRED`,
/// `input-required`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Submitted,
    Working,
    Completed,
    Failed,
    Canceled,
    Rejected,
    InputRequired,
    AuthRequired,
    Unknown,
}

impl TaskState {
    pub fn parse(raw: &str) -> TaskState {
        let plain = raw
            .trim()
            .trim_start_matches("TASK_STATE_")
            .to_ascii_lowercase()
            .replace('_', "-");
        match plain.as_str() {
            "submitted" => TaskState::Submitted,
            "working" => TaskState::Working,
            "completed" => TaskState::Completed,
            "failed" => TaskState::Failed,
            "canceled" | "cancelled" => TaskState::Canceled,
            "rejected" => TaskState::Rejected,
            "input-required" => TaskState::InputRequired,
            "auth-required" => TaskState::AuthRequired,
            _ => TaskState::Unknown,
        }
    }

    /// Still running: the remote answered before the task stopped.
    pub fn is_running(self) -> bool {
        matches!(self, TaskState::Submitted | TaskState::Working)
    }

    /// Waiting for the caller (more input, or authorization).
    pub fn is_interrupted(self) -> bool {
        matches!(self, TaskState::InputRequired | TaskState::AuthRequired)
    }

    /// The name a person reads.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Submitted => "submitted",
            TaskState::Working => "working",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Canceled => "canceled",
            TaskState::Rejected => "rejected",
            TaskState::InputRequired => "input-required",
            TaskState::AuthRequired => "auth-required",
            TaskState::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: String,
    pub context_id: Option<String>,
    pub state: TaskState,
    /// The status's message (why it failed, what input it needs).
    pub status_message: Option<Message>,
    pub artifacts: Vec<Artifact>,
    pub history: Vec<Message>,
}

/// What `SendMessage` answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Message(Message),
    Task(Task),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    bytes: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    file: Option<WireFile>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    parts: Vec<Value>,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    task_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus {
    #[serde(default)]
    state: String,
    #[serde(default)]
    message: Option<WireMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireArtifact {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    parts: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTask {
    id: String,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    status: Option<WireStatus>,
    #[serde(default)]
    artifacts: Vec<WireArtifact>,
    #[serde(default)]
    history: Vec<WireMessage>,
}

/// Base64 text's decoded length, without decoding it.
fn base64_len(text: &str) -> usize {
    let text = text.trim_end_matches('=');
    text.len() * 3 / 4
}

/// A part; one Roster cannot read is left out rather than failing the
/// whole answer (a newer part kind must not break an older client).
fn part(value: Value) -> Option<Part> {
    let wire: WirePart = serde_json::from_value(value).ok()?;
    if let Some(text) = wire.text {
        return Some(Part::Text(text));
    }
    if let Some(data) = wire.data {
        return Some(Part::Data(data));
    }
    if let Some(file) = wire.file {
        return Some(Part::File {
            name: file.name,
            media_type: file.mime_type,
            url: file.uri,
            inline_bytes: file.bytes.as_deref().map(base64_len),
        });
    }
    if wire.url.is_some() || wire.raw.is_some() {
        return Some(Part::File {
            name: wire.filename,
            media_type: wire.media_type,
            url: wire.url,
            inline_bytes: wire.raw.as_deref().map(base64_len),
        });
    }
    None
}

fn parts(values: Vec<Value>) -> Vec<Part> {
    values.into_iter().filter_map(part).collect()
}

fn message(wire: WireMessage) -> Message {
    let role = match wire
        .role
        .trim_start_matches("ROLE_")
        .to_ascii_lowercase()
        .as_str()
    {
        "user" => Role::User,
        "agent" => Role::Agent,
        _ => Role::Other,
    };
    Message {
        role,
        parts: parts(wire.parts),
        context_id: wire.context_id.filter(|c| !c.is_empty()),
        task_id: wire.task_id.filter(|t| !t.is_empty()),
    }
}

fn task(wire: WireTask) -> Task {
    let (state, status_message) = match wire.status {
        Some(status) => (TaskState::parse(&status.state), status.message.map(message)),
        None => (TaskState::Unknown, None),
    };
    Task {
        id: wire.id,
        context_id: wire.context_id.filter(|c| !c.is_empty()),
        state,
        status_message,
        artifacts: wire
            .artifacts
            .into_iter()
            .map(|a| Artifact {
                name: a.name.filter(|n| !n.is_empty()),
                parts: parts(a.parts),
            })
            .collect(),
        history: wire.history.into_iter().map(message).collect(),
    }
}

fn read<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("its {what} cannot be read: {e}"))
}

/// A task as `GetTask` / `tasks/get` returns it (either dialect: a bare
/// task object).
pub(crate) fn parse_task(result: Value) -> Result<Task, String> {
    Ok(task(read(result, "task")?))
}

/// What `SendMessage` (`{"task": …}` or `{"message": …}`) or `message/send`
/// (the task or message itself, told apart by `kind`, or by `messageId`
/// and `id` for servers that omit it) returned.
pub(crate) fn parse_reply(result: Value) -> Result<Reply, String> {
    let Value::Object(mut object) = result else {
        return Err("the result is not an object".into());
    };
    if let Some(inner) = object.remove("task").filter(Value::is_object) {
        return Ok(Reply::Task(task(read(inner, "task")?)));
    }
    if let Some(inner) = object.remove("message").filter(Value::is_object) {
        return Ok(Reply::Message(message(read(inner, "message")?)));
    }
    let kind = match object.get("kind").and_then(Value::as_str) {
        Some(kind) => kind.to_owned(),
        None if object.contains_key("messageId") => "message".to_owned(),
        None if object.contains_key("id") => "task".to_owned(),
        None => String::new(),
    };
    let value = Value::Object(object);
    match kind.as_str() {
        "task" => Ok(Reply::Task(task(read(value, "task")?))),
        "message" => Ok(Reply::Message(message(read(value, "message")?))),
        _ => Err("the result is neither a task nor a message".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1_0_message_is_proto_json_and_a_0_3_one_has_kinds() {
        let v1 = send_params(Protocol::V1, "m1", "hi", Some("c1"), None, Some("t"));
        assert_eq!(
            v1,
            json!({"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}], "contextId": "c1"}, "tenant": "t"})
        );
        let v0 = send_params(Protocol::V0, "m2", "hi", Some("c1"), Some("k"), Some("t"));
        assert_eq!(
            v0,
            json!({
                "message": {"kind": "message", "messageId": "m2", "role": "user",
                            "parts": [{"kind": "text", "text": "hi"}], "contextId": "c1", "taskId": "k"},
                "configuration": {"blocking": true}
            })
        );
        assert_eq!(
            get_task_params(Protocol::V1, "k", Some("t")),
            json!({"id": "k", "tenant": "t"})
        );
        assert_eq!(
            get_task_params(Protocol::V0, "k", Some("t")),
            json!({"id": "k"})
        );
    }

    #[test]
    fn states_read_in_both_spellings() {
        for (raw, state) in [
            ("TASK_STATE_COMPLETED", TaskState::Completed),
            ("completed", TaskState::Completed),
            ("TASK_STATE_INPUT_REQUIRED", TaskState::InputRequired),
            ("input-required", TaskState::InputRequired),
            ("TASK_STATE_AUTH_REQUIRED", TaskState::AuthRequired),
            ("auth-required", TaskState::AuthRequired),
            ("TASK_STATE_CANCELED", TaskState::Canceled),
            ("TASK_STATE_REJECTED", TaskState::Rejected),
            ("failed", TaskState::Failed),
            ("TASK_STATE_WORKING", TaskState::Working),
            ("submitted", TaskState::Submitted),
            ("TASK_STATE_UNSPECIFIED", TaskState::Unknown),
            ("", TaskState::Unknown),
        ] {
            assert_eq!(TaskState::parse(raw), state, "{raw}");
        }
        assert!(TaskState::Working.is_running());
        assert!(TaskState::AuthRequired.is_interrupted());
        assert!(!TaskState::Completed.is_running());
    }

    /// What the a2a-sdk 1.3 server answered (recorded from
    /// `tests/clients/a2a_remote_agent.py`).
    #[test]
    fn a_1_0_task_reply_is_read() {
        let reply = parse_reply(json!({"task": {
            "id": "t1", "contextId": "c1",
            "status": {"state": "TASK_STATE_COMPLETED", "timestamp": "2026-01-01T00:00:00Z"},
            "artifacts": [{"artifactId": "a1", "name": "answer", "parts": [
                {"text": "echo: hello"},
                {"data": {"n": 1}},
                {"url": "https://h/f.pdf", "filename": "f.pdf", "mediaType": "application/pdf"},
                {"raw": "aGVsbG8=", "mediaType": "image/png"},
                {"somethingNew": 1}
            ]}],
            "history": [{"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hello"}]}]
        }}))
        .expect("reply");
        let Reply::Task(task) = reply else {
            panic!("a task")
        };
        assert_eq!(task.id, "t1");
        assert_eq!(task.context_id.as_deref(), Some("c1"));
        assert_eq!(task.state, TaskState::Completed);
        assert_eq!(task.artifacts[0].name.as_deref(), Some("answer"));
        assert_eq!(
            task.artifacts[0].parts,
            [
                Part::Text("echo: hello".into()),
                Part::Data(json!({"n": 1})),
                Part::File {
                    name: Some("f.pdf".into()),
                    media_type: Some("application/pdf".into()),
                    url: Some("https://h/f.pdf".into()),
                    inline_bytes: None
                },
                Part::File {
                    name: None,
                    media_type: Some("image/png".into()),
                    url: None,
                    inline_bytes: Some(5)
                },
            ]
        );
        assert_eq!(task.history[0].role, Role::User);
    }

    #[test]
    fn a_1_0_message_reply_is_read() {
        let reply = parse_reply(json!({"message": {
            "messageId": "m", "contextId": "c9", "role": "ROLE_AGENT", "parts": [{"text": "hi"}]
        }}))
        .expect("reply");
        assert_eq!(
            reply,
            Reply::Message(Message {
                role: Role::Agent,
                parts: vec![Part::Text("hi".into())],
                context_id: Some("c9".into()),
                task_id: None,
            })
        );
    }

    #[test]
    fn a_0_3_reply_is_read_by_its_kind_or_its_fields() {
        let reply = parse_reply(json!({
            "kind": "task", "id": "t2", "contextId": "c2",
            "status": {"state": "input-required", "message": {
                "kind": "message", "messageId": "m", "role": "agent",
                "parts": [{"kind": "text", "text": "Which city?"}]}},
            "artifacts": [{"artifactId": "a", "parts": [
                {"kind": "file", "file": {"name": "r.txt", "mimeType": "text/plain", "uri": "https://h/r.txt"}}
            ]}]
        }))
        .expect("reply");
        let Reply::Task(task) = reply else {
            panic!("a task")
        };
        assert_eq!(task.state, TaskState::InputRequired);
        let status = task.status_message.expect("status message");
        assert_eq!(status.role, Role::Agent);
        assert_eq!(status.parts, [Part::Text("Which city?".into())]);
        assert!(
            matches!(&task.artifacts[0].parts[0], Part::File { name: Some(n), .. } if n == "r.txt")
        );
        let message = parse_reply(
            json!({"messageId": "m", "role": "agent", "parts": [{"kind": "text", "text": "x"}]}),
        )
        .expect("message without kind");
        assert!(matches!(message, Reply::Message(_)));
        let task = parse_reply(json!({"id": "t", "status": {"state": "completed"}}))
            .expect("task without kind");
        assert!(matches!(
            task,
            Reply::Task(Task {
                state: TaskState::Completed,
                ..
            })
        ));
    }

    #[test]
    fn replies_that_are_neither_are_refused() {
        assert!(parse_reply(json!("done")).is_err());
        assert!(parse_reply(json!({"ok": true})).is_err());
        assert!(
            parse_reply(json!({"kind": "task"})).is_err(),
            "a task needs its id"
        );
        assert!(parse_task(json!({"status": {}})).is_err());
    }
}
