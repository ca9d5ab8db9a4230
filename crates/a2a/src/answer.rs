//! A remote's reply as the model reads it: the text of a message, or of a
//! task's artifacts (else its status message, else the agent's last word
//! in its history), and whether the call succeeded. A task that stopped
//! for input or authorization, or failed, was rejected or canceled, is an
//! error result that says so — the model must not take it for an answer.

use crate::wire::{Message, Part, Reply, Role, Task, TaskState};
use roster_tool::ToolOutput;

/// How the remote's work ended, as far as this call saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An answer: a message, or a completed task.
    Done,
    /// The task waits for more input; the next call in the session answers it.
    NeedsInput,
    /// The task waits for authorization Roster cannot give.
    NeedsAuth,
    /// The task ended without an answer (failed, rejected, canceled).
    Ended(TaskState),
    /// The task was still running (or in a state Roster does not know).
    Unfinished(TaskState),
}

/// The reply, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub outcome: Outcome,
    /// The remote conversation the reply belongs to.
    pub context_id: Option<String>,
    /// The task, when it waits for the caller (the next call continues it).
    pub waiting_task: Option<String>,
    /// The task's id, whatever its state (for messages to the model).
    pub task_id: Option<String>,
}

fn part_text(part: &Part) -> String {
    match part {
        Part::Text(text) => text.clone(),
        Part::Data(value) => value.to_string(),
        Part::File {
            name,
            media_type,
            url,
            inline_bytes,
        } => {
            let name = name.as_deref().unwrap_or("a file");
            let kind = media_type
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            match (url, inline_bytes) {
                (Some(url), _) => format!("[{name}{kind} at {url}]"),
                (None, Some(n)) => format!("[{name}{kind}: {n} bytes inline, not shown]"),
                (None, None) => format!("[{name}{kind}]"),
            }
        }
    }
}

fn parts_text(parts: &[Part]) -> String {
    parts
        .iter()
        .map(part_text)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn message_text(message: Option<&Message>) -> String {
    message.map(|m| parts_text(&m.parts)).unwrap_or_default()
}

/// A task's answer: its artifacts (each named when there are several),
/// else its status message, else the agent's last message in its history.
fn task_text(task: &Task) -> String {
    let artifacts: Vec<(Option<&str>, String)> = task
        .artifacts
        .iter()
        .map(|a| (a.name.as_deref(), parts_text(&a.parts)))
        .filter(|(_, text)| !text.is_empty())
        .collect();
    match artifacts.as_slice() {
        [] => {}
        [(_, text)] => return text.clone(),
        several => {
            return several
                .iter()
                .enumerate()
                .map(|(n, (name, text))| {
                    let name = name.map_or_else(|| format!("artifact {}", n + 1), str::to_owned);
                    format!("[{name}]\n{text}")
                })
                .collect::<Vec<_>>()
                .join("\n\n")
        }
    }
    let status = message_text(task.status_message.as_ref());
    if !status.is_empty() {
        return status;
    }
    message_text(task.history.iter().rev().find(|m| m.role == Role::Agent))
}

impl Answer {
    pub fn read(reply: &Reply) -> Answer {
        match reply {
            Reply::Message(message) => Answer {
                text: message_text(Some(message)),
                outcome: Outcome::Done,
                context_id: message.context_id.clone(),
                waiting_task: None,
                task_id: message.task_id.clone(),
            },
            Reply::Task(task) => {
                let outcome = match task.state {
                    TaskState::Completed => Outcome::Done,
                    TaskState::InputRequired => Outcome::NeedsInput,
                    TaskState::AuthRequired => Outcome::NeedsAuth,
                    state @ (TaskState::Failed | TaskState::Rejected | TaskState::Canceled) => {
                        Outcome::Ended(state)
                    }
                    state => Outcome::Unfinished(state),
                };
                // Only the status message explains an interruption or an
                // end; artifacts may be partial work.
                let text = match outcome {
                    Outcome::Done => task_text(task),
                    _ => message_text(task.status_message.as_ref()),
                };
                Answer {
                    text,
                    outcome,
                    context_id: task.context_id.clone(),
                    waiting_task: task.state.is_interrupted().then(|| task.id.clone()),
                    task_id: Some(task.id.clone()),
                }
            }
        }
    }

    /// The tool result: the answer, or an error that says what the remote
    /// (`remote`, offered as the tool `tool`) needs or why it stopped.
    pub fn into_output(self, remote: &str, tool: &str) -> ToolOutput {
        let said = |text: &str| {
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        };
        let task = self
            .task_id
            .as_deref()
            .map(|t| format!(" (task {t})"))
            .unwrap_or_default();
        match self.outcome {
            Outcome::Done if self.text.is_empty() => ToolOutput::ok(format!(
                "remote agent `{remote}` finished without a text answer"
            )),
            Outcome::Done => ToolOutput::ok(self.text),
            Outcome::NeedsInput => ToolOutput::error(format!(
                "remote agent `{remote}` needs more input to finish{task}{}. Call `{tool}` again with the answer: the call continues the same task",
                said(&self.text)
            )),
            Outcome::NeedsAuth => ToolOutput::error(format!(
                "remote agent `{remote}` needs authorization to go on{task}{}. Roster cannot give it from here: the remote's registration needs credentials that allow this",
                said(&self.text)
            )),
            Outcome::Ended(state) => ToolOutput::error(format!(
                "remote agent `{remote}` {} the task{task}{}",
                match state {
                    TaskState::Rejected => "rejected",
                    TaskState::Canceled => "canceled",
                    _ => "failed",
                },
                said(&self.text)
            )),
            Outcome::Unfinished(state) => ToolOutput::error(format!(
                "remote agent `{remote}` has not finished{task}: its state is {}{}",
                state.as_str(),
                said(&self.text)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_reply, Artifact};
    use serde_json::json;

    fn task(state: TaskState) -> Task {
        Task {
            id: "t1".into(),
            context_id: Some("c1".into()),
            state,
            status_message: None,
            artifacts: Vec::new(),
            history: Vec::new(),
        }
    }

    fn agent_says(text: &str) -> Message {
        Message {
            role: Role::Agent,
            parts: vec![Part::Text(text.into())],
            context_id: None,
            task_id: None,
        }
    }

    #[test]
    fn a_message_is_the_answer() {
        let reply = parse_reply(
            json!({"message": {"messageId": "m", "contextId": "c", "role": "ROLE_AGENT",
            "parts": [{"text": "first"}, {"data": {"k": 1}}]}}),
        )
        .expect("reply");
        let answer = Answer::read(&reply);
        assert_eq!(answer.text, "first\n{\"k\":1}");
        assert_eq!(answer.outcome, Outcome::Done);
        assert_eq!(answer.context_id.as_deref(), Some("c"));
        assert_eq!(answer.waiting_task, None);
        assert_eq!(
            answer.into_output("x", "ask_remote_x"),
            ToolOutput::ok("first\n{\"k\":1}")
        );
    }

    #[test]
    fn a_completed_task_answers_with_its_artifacts_or_else_its_messages() {
        let mut done = task(TaskState::Completed);
        done.artifacts = vec![Artifact {
            name: Some("answer".into()),
            parts: vec![Part::Text("42".into())],
        }];
        done.status_message = Some(agent_says("done"));
        assert_eq!(Answer::read(&Reply::Task(done.clone())).text, "42");
        done.artifacts.push(Artifact {
            name: None,
            parts: vec![Part::File {
                name: Some("r.csv".into()),
                media_type: Some("text/csv".into()),
                url: Some("https://h/r.csv".into()),
                inline_bytes: None,
            }],
        });
        assert_eq!(
            Answer::read(&Reply::Task(done.clone())).text,
            "[answer]\n42\n\n[artifact 2]\n[r.csv (text/csv) at https://h/r.csv]"
        );
        done.artifacts.clear();
        assert_eq!(Answer::read(&Reply::Task(done.clone())).text, "done");
        done.status_message = None;
        done.history = vec![
            agent_says("from history"),
            Message {
                role: Role::User,
                parts: vec![Part::Text("question".into())],
                context_id: None,
                task_id: None,
            },
        ];
        assert_eq!(
            Answer::read(&Reply::Task(done.clone())).text,
            "from history"
        );
        done.history.clear();
        let output = Answer::read(&Reply::Task(done)).into_output("x", "ask_remote_x");
        assert!(!output.is_error);
        assert!(
            output.text.contains("without a text answer"),
            "{}",
            output.text
        );
    }

    #[test]
    fn an_interrupted_task_is_an_error_that_says_what_it_waits_for_and_keeps_the_task() {
        let mut waiting = task(TaskState::InputRequired);
        waiting.status_message = Some(agent_says("Which city?"));
        waiting.artifacts = vec![Artifact {
            name: None,
            parts: vec![Part::Text("partial".into())],
        }];
        let answer = Answer::read(&Reply::Task(waiting));
        assert_eq!(answer.outcome, Outcome::NeedsInput);
        assert_eq!(answer.waiting_task.as_deref(), Some("t1"));
        let output = answer.into_output("weather", "ask_remote_weather");
        assert!(output.is_error);
        assert!(output.text.contains("needs more input"), "{}", output.text);
        assert!(output.text.contains("Which city?"), "{}", output.text);
        assert!(
            output.text.contains("ask_remote_weather"),
            "{}",
            output.text
        );
        assert!(!output.text.contains("partial"), "{}", output.text);

        let answer = Answer::read(&Reply::Task(task(TaskState::AuthRequired)));
        assert_eq!(answer.outcome, Outcome::NeedsAuth);
        assert_eq!(answer.waiting_task.as_deref(), Some("t1"));
        let output = answer.into_output("weather", "ask_remote_weather");
        assert!(output.is_error && output.text.contains("needs authorization"));
    }

    #[test]
    fn a_task_that_ended_without_an_answer_is_an_error_naming_how() {
        for (state, word) in [
            (TaskState::Failed, "failed"),
            (TaskState::Rejected, "rejected"),
            (TaskState::Canceled, "canceled"),
        ] {
            let mut ended = task(state);
            ended.status_message = Some(agent_says("because"));
            let answer = Answer::read(&Reply::Task(ended));
            assert_eq!(answer.outcome, Outcome::Ended(state));
            assert_eq!(answer.waiting_task, None);
            let output = answer.into_output("x", "ask_remote_x");
            assert!(output.is_error);
            assert_eq!(
                output.text,
                format!("remote agent `x` {word} the task (task t1): because")
            );
        }
        let output = Answer::read(&Reply::Task(task(TaskState::Working))).into_output("x", "t");
        assert!(
            output.is_error && output.text.contains("state is working"),
            "{}",
            output.text
        );
    }
}
