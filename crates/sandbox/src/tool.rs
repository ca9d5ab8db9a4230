//! `run_code`: the built-in tool that runs code in the session's sandbox.

use crate::run::{Language, RunOutcome};
use crate::{Limits, Sandbox};
use async_trait::async_trait;
use roster_tool::{Tool, ToolCallContext, ToolOutput};
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "run_code";

/// Arguments of `run_code`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCodeArgs {
    /// `python`, `javascript` or `shell`.
    pub language: Language,
    /// The program. It runs in /workspace, the session's directory: files
    /// written there are there in later calls; nothing else persists.
    pub code: String,
    /// Seconds before the run is killed (at most the server's limit).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

pub struct RunCodeTool {
    sandbox: Arc<Sandbox>,
    parameters: serde_json::Value,
}

impl RunCodeTool {
    pub fn new(sandbox: Arc<Sandbox>) -> Arc<Self> {
        Arc::new(Self {
            sandbox,
            parameters: parameters(),
        })
    }
}

/// The JSON Schema the model sees, derived from [`RunCodeArgs`].
pub fn parameters() -> serde_json::Value {
    roster_tool::parameters_of::<RunCodeArgs>()
}

/// What the model reads: exit status, then each stream, with any cut said.
pub fn render(outcome: &RunOutcome) -> String {
    let mut text = match (outcome.timed_out, outcome.exit_code) {
        (true, _) => format!(
            "killed: the run passed its time limit ({:.1} s)",
            outcome.duration.as_secs_f64()
        ),
        (false, Some(code)) => {
            format!("exit code {code} ({:.2} s)", outcome.duration.as_secs_f64())
        }
        (false, None) => {
            "killed by a signal (a CPU, memory or process limit, or a crash)".to_owned()
        }
    };
    if outcome.output_cut {
        text.push_str("\n[output passed the limit: cut, and the process was stopped]");
    }
    if !outcome.stdout.is_empty() {
        text.push_str("\n[stdout]\n");
        text.push_str(&outcome.stdout);
    }
    if !outcome.stderr.is_empty() {
        text.push_str("\n[stderr]\n");
        text.push_str(&outcome.stderr);
    }
    text
}

#[async_trait]
impl Tool for RunCodeTool {
    fn name(&self) -> &str {
        NAME
    }

    fn policy_kind(&self) -> &str {
        "sandbox"
    }

    fn description(&self) -> &str {
        "Runs Python, JavaScript (Node.js) or shell code in an isolated sandbox without network access. \
         The working directory /workspace belongs to this session and keeps its files between calls; \
         print what you want to see."
    }

    fn parameters(&self) -> serde_json::Value {
        self.parameters.clone()
    }

    fn timeout(&self) -> Duration {
        // The sandbox kills at its own limit; this is the backstop.
        self.sandbox.config().limits.wall + Duration::from_secs(10)
    }

    async fn call(&self, ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput {
        let args: RunCodeArgs = match serde_json::from_value(arguments) {
            Ok(args) => args,
            Err(e) => {
                return ToolOutput::error(format!(
                    "invalid arguments for run_code: {}",
                    roster_core::plain::plain_serde_error(&e.to_string())
                ))
            }
        };
        let mut limits: Limits = self.sandbox.config().limits.clone();
        if let Some(secs) = args.timeout_secs {
            limits.wall = limits.wall.min(Duration::from_secs(secs.max(1)));
        }
        match self
            .sandbox
            .run(
                &ctx.tenant,
                &ctx.session_id,
                args.language,
                &args.code,
                &limits,
            )
            .await
        {
            Ok(outcome) => {
                let failed = outcome.timed_out || outcome.exit_code != Some(0);
                ToolOutput {
                    text: render(&outcome),
                    is_error: failed,
                }
            }
            Err(e) => ToolOutput::error(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema is part of the model's contract: a change must be seen.
    #[test]
    fn schema_snapshot() {
        let expected = serde_json::json!({
            "type": "object",
            "description": "Arguments of `run_code`.",
            "properties": {
                "language": {"$ref": "#/$defs/Language", "description": "`python`, `javascript` or `shell`."},
                "code": {"type": "string", "description": "The program. It runs in /workspace, the session's directory: files\nwritten there are there in later calls; nothing else persists."},
                "timeout_secs": {"type": ["integer", "null"], "format": "uint64", "minimum": 0, "default": null, "description": "Seconds before the run is killed (at most the server's limit)."}
            },
            "required": ["language", "code"],
            "additionalProperties": false,
            "$defs": {"Language": {"type": "string", "enum": ["python", "javascript", "shell"]}}
        });
        assert_eq!(parameters(), expected, "{}", parameters());
    }

    #[test]
    fn outcomes_read_plainly() {
        let out = RunOutcome {
            exit_code: Some(1),
            stdout: "partial".into(),
            stderr: "Traceback".into(),
            timed_out: false,
            output_cut: true,
            duration: Duration::from_millis(120),
        };
        let text = render(&out);
        assert!(text.starts_with("exit code 1 (0.12 s)"), "{text}");
        assert!(text.contains("cut") && text.contains("[stdout]\npartial"));
        assert!(text.contains("[stderr]\nTraceback"));
    }
}
