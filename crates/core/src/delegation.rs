//! Agents as other agents' tools: the names the model sees, the limits that
//! stop recursion, and the words a hand-off's result comes back in.

use crate::run::{RunError, RunStatus};

/// The tool scheme of an agent entry: `agent:researcher`.
pub const AGENT_SCHEME: &str = "agent";
/// The built-in tool that starts a task for another agent and returns at
/// once; offered to an agent with at least one `agent:` entry.
pub const HAND_OFF_TOOL: &str = "hand_off";
/// Prefix of the synchronous tool of each callee: `ask_researcher`.
pub const ASK_PREFIX: &str = "ask_";

/// How deep and how wide delegation may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelegationLimits {
    /// Most hops from the run a person or a system started: with 3, A → B →
    /// C → D runs and D's own delegation is refused.
    pub max_depth: u32,
    /// Most runs one run may start (calls and hand-offs together).
    pub max_children: u32,
}

impl Default for DelegationLimits {
    fn default() -> Self {
        Self {
            max_depth: 3,
            max_children: 16,
        }
    }
}

/// The synchronous tool name of a callee. Agent names may hold `.`, which
/// tool names may not; a name too long for the providers' 64 characters is
/// cut and made unique with a hash of the whole name.
pub fn ask_tool_name(agent: &str) -> String {
    let plain: String = agent
        .chars()
        .map(|c| if c == '.' { '_' } else { c })
        .collect();
    let name = format!("{ASK_PREFIX}{plain}");
    if name.len() <= 64 {
        return name;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = agent.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{}_{:08x}", &name[..55], hash as u32)
}

/// The input a handed-off run's result arrives as in the session that
/// handed it off.
pub fn hand_off_input(
    agent: &str,
    run: &str,
    status: RunStatus,
    output: Option<&str>,
    error: Option<&RunError>,
) -> String {
    let head = format!("[hand-off result] The task you handed off to agent `{agent}` (run {run})");
    match status {
        RunStatus::Completed => format!(
            "{head} is done. Its answer:\n\n{}",
            output.unwrap_or_default()
        ),
        RunStatus::Failed => format!(
            "{head} failed: {}",
            error.map_or("no reason given", |e| e.message.as_str())
        ),
        _ => format!("{head} was cancelled before it finished."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_fit_the_providers_rule() {
        assert_eq!(ask_tool_name("researcher"), "ask_researcher");
        assert_eq!(ask_tool_name("team.lead"), "ask_team_lead");
        let long = "a".repeat(64);
        let other = format!("{}b", "a".repeat(63));
        let (a, b) = (ask_tool_name(&long), ask_tool_name(&other));
        assert!(a.len() <= 64 && b.len() <= 64, "{a} {b}");
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
    }

    #[test]
    fn a_hand_off_result_says_how_the_task_ended() {
        let done = hand_off_input("r", "run_1", RunStatus::Completed, Some("42"), None);
        assert!(done.contains("`r`") && done.ends_with("42"), "{done}");
        let failed = hand_off_input(
            "r",
            "run_1",
            RunStatus::Failed,
            None,
            Some(&RunError::new("x", "boom")),
        );
        assert!(failed.contains("failed: boom"), "{failed}");
        let cancelled = hand_off_input("r", "run_1", RunStatus::Cancelled, None, None);
        assert!(cancelled.contains("cancelled"), "{cancelled}");
    }
}
