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
}

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
}

impl RunMachine {
    pub fn new(max_steps: u32) -> Self {
        Self {
            max_steps: max_steps.max(1),
            model_calls: 0,
            phase: Phase::NeedModel,
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
            Phase::Failed { error } => Action::Fail(error.clone()),
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
