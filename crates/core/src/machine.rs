//! The run state machine.
//!
//! A run is a fold over its journal: the machine starts empty, consumes each
//! completed step's output in order, and says what must happen next. It does no
//! I/O, so the runner can rebuild it after a crash by replaying the journal and
//! continue exactly where the process died.

use crate::item::ToolCall;
use crate::run::RunError;
use serde::{Deserialize, Serialize};

/// What a completed model call produced, as journaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelReply {
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// The `provider/model` that answered.
    #[serde(default)]
    pub route: String,
}

/// What a completed tool call produced, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolOutcome {
    pub call_id: String,
    pub name: String,
    pub output: String,
    pub is_error: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum Phase {
    NeedModel,
    NeedTools {
        calls: Vec<ToolCall>,
        outcomes: Vec<Option<ToolOutcome>>,
    },
    Completed {
        output: String,
    },
    Failed {
        error: RunError,
    },
    /// Stopped before running `calls`, which get error results so the
    /// history never holds a call without its result.
    Stopped {
        calls: Vec<ToolCall>,
        error: RunError,
    },
}

/// The same tool calls this many times in a row stop the run: a model that
/// repeats itself exactly (small local models do) would otherwise loop
/// until `max_steps`, paying for every turn.
pub const REPEATED_CALLS_LIMIT: u32 = 3;

/// The next thing the runner must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    CallModel,
    /// Execute these calls (the ones of the current batch without an outcome).
    CallTools(Vec<ToolCall>),
    Complete(String),
    Fail(RunError),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMachine {
    max_steps: u32,
    model_calls: u32,
    phase: Phase,
    /// The last reply's calls as (name, arguments), and how many replies in
    /// a row made exactly them.
    #[serde(default)]
    last_calls: Vec<(String, serde_json::Value)>,
    #[serde(default)]
    repeats: u32,
    /// The text of the last reply, which a run ending on calls its caller
    /// answers (client tools) finishes with.
    #[serde(default)]
    last_text: String,
}

/// A call as the repeat guard compares it: its name and its arguments as
/// JSON (so spacing does not matter), or as text when they are not JSON.
fn signature(call: &ToolCall) -> (String, serde_json::Value) {
    let arguments = serde_json::from_str(&call.arguments)
        .unwrap_or_else(|_| serde_json::Value::String(call.arguments.clone()));
    (call.name.clone(), arguments)
}

impl RunMachine {
    pub fn new(max_steps: u32) -> Self {
        Self {
            max_steps: max_steps.max(1),
            model_calls: 0,
            phase: Phase::NeedModel,
            last_calls: Vec::new(),
            repeats: 0,
            last_text: String::new(),
        }
    }

    pub fn next_action(&self) -> Action {
        match &self.phase {
            Phase::NeedModel => Action::CallModel,
            Phase::NeedTools { calls, outcomes } => Action::CallTools(
                calls
                    .iter()
                    .zip(outcomes)
                    .filter(|(_, outcome)| outcome.is_none())
                    .map(|(call, _)| call.clone())
                    .collect(),
            ),
            Phase::Completed { output } => Action::Complete(output.clone()),
            Phase::Failed { error } | Phase::Stopped { error, .. } => Action::Fail(error.clone()),
        }
    }

    pub fn model_calls(&self) -> u32 {
        self.model_calls
    }

    pub fn on_model_reply(&mut self, reply: &ModelReply) {
        if !matches!(self.phase, Phase::NeedModel) {
            return;
        }
        self.model_calls += 1;
        self.last_text.clone_from(&reply.text);
        let calls: Vec<_> = reply.tool_calls.iter().map(signature).collect();
        if !calls.is_empty() && calls == self.last_calls {
            self.repeats += 1;
        } else {
            self.repeats = 1;
            self.last_calls = calls;
        }
        if self.repeats >= REPEATED_CALLS_LIMIT {
            let names: Vec<&str> = reply.tool_calls.iter().map(|c| c.name.as_str()).collect();
            self.phase = Phase::Stopped {
                calls: reply.tool_calls.clone(),
                error: RunError::new(
                    "repeated_tool_call",
                    format!(
                        "the model made the same call ({}) with the same arguments {} times in a row; the run was stopped",
                        names.join(", "),
                        self.repeats
                    ),
                ),
            };
            return;
        }
        self.phase = if reply.tool_calls.is_empty() {
            Phase::Completed {
                output: reply.text.clone(),
            }
        } else {
            Phase::NeedTools {
                calls: reply.tool_calls.clone(),
                outcomes: vec![None; reply.tool_calls.len()],
            }
        };
    }

    pub fn on_tool_outcome(&mut self, outcome: &ToolOutcome) {
        let Phase::NeedTools { calls, outcomes } = &mut self.phase else {
            return;
        };
        let slot = calls
            .iter()
            .zip(outcomes.iter_mut())
            .find(|(call, slot)| call.id == outcome.call_id && slot.is_none());
        if let Some((_, slot)) = slot {
            *slot = Some(outcome.clone());
        }
        if outcomes.iter().all(Option::is_some) {
            self.phase = if self.model_calls >= self.max_steps {
                Phase::Failed {
                    error: RunError::new(
                        "max_steps_exceeded",
                        format!(
                            "the run reached its limit of {} model calls without a final answer",
                            self.max_steps
                        ),
                    ),
                }
            } else {
                Phase::NeedModel
            };
        }
    }

    /// The text of the last model reply.
    pub fn last_text(&self) -> &str {
        &self.last_text
    }

    /// A model call failed for good (after retries and fallbacks).
    pub fn on_model_failure(&mut self, error: RunError) {
        self.phase = Phase::Failed { error };
    }

    /// Tool calls of the current batch that have no outcome: when a run stops
    /// early these get an error result, so the history never holds a tool
    /// call without its result.
    pub fn dangling_calls(&self) -> Vec<ToolCall> {
        match &self.phase {
            Phase::NeedTools { .. } => match self.next_action() {
                Action::CallTools(calls) => calls,
                _ => Vec::new(),
            },
            Phase::Stopped { calls, .. } => calls.clone(),
            _ => Vec::new(),
        }
    }
}

/// A completed step's output as the journal holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepOutput {
    ModelCall(ModelReply),
    ToolCall(ToolOutcome),
    /// The session's history up to `through_seq` folded into `text`. Not
    /// part of the run's logic: the machine skips it.
    Summary(SummaryOutput),
}

/// What a model step's journal row says went in: the route that answered,
/// who asked, and what the context held. Stored with the step; written,
/// never read back by the runner (the output is what replays).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCallInput {
    /// The target that answered, `provider/model`.
    pub route: String,
    /// The actor chain: the key (and its user), then `agent:NAME`.
    pub actors: Vec<String>,
    /// Messages of history in the request.
    pub context_items: usize,
    /// Ids of the memory records recalled into the context.
    pub recalled: Vec<String>,
    /// Citations of the knowledge passages in the context.
    pub passages: Vec<String>,
    /// The session's summary covered history up to this item (0: none).
    pub summary_through: i64,
}

/// A completed summary step, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryOutput {
    pub text: String,
    pub through_seq: i64,
}

/// Rebuilds a machine from completed step outputs, in journal order.
pub fn replay<'a>(max_steps: u32, outputs: impl IntoIterator<Item = &'a StepOutput>) -> RunMachine {
    let mut machine = RunMachine::new(max_steps);
    for output in outputs {
        match output {
            StepOutput::ModelCall(reply) => machine.on_model_reply(reply),
            StepOutput::ToolCall(outcome) => machine.on_tool_outcome(outcome),
            StepOutput::Summary(_) => {}
        }
    }
    machine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "t".into(),
            arguments: "{}".into(),
        }
    }

    fn outcome(id: &str) -> ToolOutcome {
        ToolOutcome {
            call_id: id.into(),
            name: "t".into(),
            output: "ok".into(),
            is_error: false,
        }
    }

    fn reply(text: &str, calls: Vec<ToolCall>) -> ModelReply {
        ModelReply {
            text: text.into(),
            tool_calls: calls,
            route: "p/m".into(),
        }
    }

    #[test]
    fn model_then_tools_then_answer() {
        let mut m = RunMachine::new(4);
        assert_eq!(m.next_action(), Action::CallModel);
        m.on_model_reply(&reply("", vec![call("a"), call("b")]));
        assert_eq!(
            m.next_action(),
            Action::CallTools(vec![call("a"), call("b")])
        );
        m.on_tool_outcome(&outcome("b"));
        assert_eq!(m.next_action(), Action::CallTools(vec![call("a")]));
        assert_eq!(m.dangling_calls(), vec![call("a")]);
        m.on_tool_outcome(&outcome("a"));
        assert_eq!(m.next_action(), Action::CallModel);
        m.on_model_reply(&reply("done", vec![]));
        assert_eq!(m.next_action(), Action::Complete("done".into()));
        assert!(m.dangling_calls().is_empty());
    }

    #[test]
    fn max_steps_fails_after_results_are_recorded() {
        let mut m = RunMachine::new(1);
        m.on_model_reply(&reply("", vec![call("a")]));
        assert_eq!(m.next_action(), Action::CallTools(vec![call("a")]));
        m.on_tool_outcome(&outcome("a"));
        match m.next_action() {
            Action::Fail(e) => assert_eq!(e.code, "max_steps_exceeded"),
            other => panic!("expected failure, got {other:?}"),
        }
    }

    #[test]
    fn replay_equals_live_execution_and_survives_serialisation() {
        let journal = vec![
            StepOutput::ModelCall(reply("", vec![call("a")])),
            StepOutput::ToolCall(outcome("a")),
        ];
        let m = replay(8, &journal);
        assert_eq!(m.next_action(), Action::CallModel);
        let json = serde_json::to_string(&m).expect("serialise");
        let back: RunMachine = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, m);
        let stored = serde_json::to_value(&journal[0]).expect("step json");
        let parsed: StepOutput = serde_json::from_value(stored).expect("step parse");
        assert_eq!(parsed, journal[0]);
    }

    fn call_with(id: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "search".into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn the_same_call_three_times_in_a_row_stops_the_run() {
        let mut m = RunMachine::new(20);
        for (n, arguments) in [r#"{"q":"x"}"#, r#"{ "q" : "x" }"#].iter().enumerate() {
            m.on_model_reply(&reply("", vec![call_with(&format!("c{n}"), arguments)]));
            assert_eq!(
                m.next_action(),
                Action::CallTools(vec![call_with(&format!("c{n}"), arguments)])
            );
            m.on_tool_outcome(&ToolOutcome {
                call_id: format!("c{n}"),
                name: "search".into(),
                output: "none".into(),
                is_error: false,
            });
        }
        m.on_model_reply(&reply("", vec![call_with("c2", r#"{"q":"x"}"#)]));
        match m.next_action() {
            Action::Fail(e) => {
                assert_eq!(e.code, "repeated_tool_call");
                assert!(
                    e.message.contains("search") && e.message.contains("3 times"),
                    "{}",
                    e.message
                );
            }
            other => panic!("expected the guard, got {other:?}"),
        }
        // The third call is not run, and gets an error result.
        assert_eq!(m.dangling_calls(), vec![call_with("c2", r#"{"q":"x"}"#)]);
        // Replayed from the journal, the machine stops at the same point.
        let journal = vec![
            StepOutput::ModelCall(reply("", vec![call_with("c0", r#"{"q":"x"}"#)])),
            StepOutput::ToolCall(ToolOutcome {
                call_id: "c0".into(),
                name: "search".into(),
                output: "none".into(),
                is_error: false,
            }),
            StepOutput::ModelCall(reply("", vec![call_with("c1", r#"{"q":"x"}"#)])),
            StepOutput::ToolCall(ToolOutcome {
                call_id: "c1".into(),
                name: "search".into(),
                output: "none".into(),
                is_error: false,
            }),
            StepOutput::ModelCall(reply("", vec![call_with("c2", r#"{"q":"x"}"#)])),
        ];
        assert_eq!(replay(20, &journal), m);
    }

    #[test]
    fn different_arguments_or_an_answer_between_reset_the_guard() {
        let mut m = RunMachine::new(20);
        for (n, arguments) in [
            r#"{"q":"x"}"#,
            r#"{"q":"x"}"#,
            r#"{"q":"y"}"#,
            r#"{"q":"y"}"#,
        ]
        .iter()
        .enumerate()
        {
            m.on_model_reply(&reply("", vec![call_with(&format!("c{n}"), arguments)]));
            assert!(matches!(m.next_action(), Action::CallTools(_)), "call {n}");
            m.on_tool_outcome(&ToolOutcome {
                call_id: format!("c{n}"),
                name: "search".into(),
                output: "r".into(),
                is_error: false,
            });
        }
        assert_eq!(m.next_action(), Action::CallModel);
    }

    #[test]
    fn duplicate_or_stray_outcomes_are_ignored() {
        let mut m = RunMachine::new(4);
        m.on_tool_outcome(&outcome("x"));
        assert_eq!(m.next_action(), Action::CallModel);
        m.on_model_reply(&reply("", vec![call("a")]));
        m.on_tool_outcome(&outcome("zzz"));
        assert_eq!(m.next_action(), Action::CallTools(vec![call("a")]));
    }
}
