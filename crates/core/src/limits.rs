//! Limits on runs executing at once, and the fair queue behind them.
//!
//! A run that may not start yet stays `queued` with a [`QueuedReason`]. The
//! order among such runs is the order they began to wait: each session
//! contributes only its next run, so a session with a hundred inputs waits
//! its turn like a session with one. [`admits`] decides, from counts the
//! store reads in the transaction that would start a run, whether that run
//! may take a slot now without passing an older waiting run that could.

use crate::{AgentId, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// Largest accepted limit.
pub const MAX_LIMIT: u32 = 100_000;
/// Most webhooks one run, schedule or agent may name.
pub const MAX_NOTIFY: usize = 8;

/// Runs executing at once; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunLimits {
    /// Across the tenant.
    #[schema(minimum = 1)]
    pub runs: Option<u32>,
    /// Per agent, unless the agent sets its own `max_running`.
    #[schema(minimum = 1)]
    pub runs_per_agent: Option<u32>,
}

impl RunLimits {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(runs) = self.runs {
            validate_limit("runs", runs)?;
        }
        if let Some(runs) = self.runs_per_agent {
            validate_limit("runs_per_agent", runs)?;
        }
        Ok(())
    }

    /// `self`'s values, each falling back to `defaults`'.
    pub fn or(self, defaults: RunLimits) -> RunLimits {
        RunLimits {
            runs: self.runs.or(defaults.runs),
            runs_per_agent: self.runs_per_agent.or(defaults.runs_per_agent),
        }
    }
}

pub fn validate_limit(field: &str, value: u32) -> Result<(), ValidationError> {
    if value == 0 || value > MAX_LIMIT {
        return Err(ValidationError::new(
            field,
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok(())
}

/// A list of webhook ids: well formed, at most [`MAX_NOTIFY`], no repeats.
/// Whether each exists in the tenant is the caller's to check.
pub fn validate_notify(field: &str, ids: &[String]) -> Result<(), ValidationError> {
    if ids.len() > MAX_NOTIFY {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_NOTIFY} webhooks"),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        if crate::WebhookId::parse(id).is_none() {
            return Err(ValidationError::new(
                field,
                format!("`{id}` is not a webhook id (whk_…)"),
            ));
        }
        if ids[..i].contains(id) {
            return Err(ValidationError::new(
                field,
                format!("webhook `{id}` is listed twice"),
            ));
        }
    }
    Ok(())
}

/// Why a queued run has not started although its session is free.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueuedReason {
    /// `tenant_limit`, `agent_limit`, or `fair_queue` (slots are free but
    /// runs that began waiting earlier take them first).
    pub reason: String,
    /// The same in words, with the numbers.
    pub detail: String,
    /// When it began to wait.
    pub since: DateTime<Utc>,
}

/// What the store read about the tenant, in the transaction deciding.
#[derive(Clone, Debug, Default)]
pub struct Occupancy {
    /// Runs of the tenant executing now (those a caller waits for aside).
    pub running: u32,
    pub running_by_agent: HashMap<AgentId, u32>,
}

/// A run waiting for a slot, oldest first, with its agent's limit.
#[derive(Clone, Debug)]
pub struct Waiting {
    pub agent: AgentId,
    pub agent_limit: Option<u32>,
}

/// Which of the waiting runs (oldest first) would start now, in that
/// order: each takes a slot if the tenant and its own agent still have one.
pub fn startable(
    tenant_limit: Option<u32>,
    occupancy: &Occupancy,
    waiting: &[Waiting],
) -> Vec<bool> {
    let used_by = |a: &AgentId| occupancy.running_by_agent.get(a).copied().unwrap_or(0);
    let mut tenant_free = tenant_limit.map(|l| l.saturating_sub(occupancy.running));
    let mut agent_free: HashMap<&AgentId, u32> = HashMap::new();
    waiting
        .iter()
        .map(|w| {
            if tenant_free == Some(0) {
                return false;
            }
            let free = agent_free.entry(&w.agent).or_insert_with(|| {
                w.agent_limit
                    .map_or(u32::MAX, |l| l.saturating_sub(used_by(&w.agent)))
            });
            if *free == 0 {
                return false;
            }
            *free -= 1;
            if let Some(t) = tenant_free.as_mut() {
                *t -= 1;
            }
            true
        })
        .collect()
}

/// Whether a run of `agent` may start now: `Ok(())`, or the reason (its
/// `reason` and `detail`) it waits. `ahead` are the runs that began to
/// wait before it, oldest first; each takes a slot first if its own agent
/// has one.
pub fn admits(
    tenant_limit: Option<u32>,
    agent: &AgentId,
    agent_limit: Option<u32>,
    occupancy: &Occupancy,
    ahead: &[Waiting],
) -> Result<(), (&'static str, String)> {
    let used = occupancy.running_by_agent.get(agent).copied().unwrap_or(0);
    if let Some(limit) = tenant_limit {
        if occupancy.running >= limit {
            return Err((
                "tenant_limit",
                format!(
                    "{} of the tenant's {limit} runs at once are running",
                    occupancy.running
                ),
            ));
        }
    }
    if let Some(limit) = agent_limit {
        if used >= limit {
            return Err((
                "agent_limit",
                format!("{used} of this agent's {limit} runs at once are running"),
            ));
        }
    }
    let mut queue = ahead.to_vec();
    queue.push(Waiting {
        agent: agent.clone(),
        agent_limit,
    });
    if startable(tenant_limit, occupancy, &queue).last() == Some(&true) {
        Ok(())
    } else {
        Err((
            "fair_queue",
            "runs that began waiting earlier take the free slots first".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: &str) -> AgentId {
        AgentId::from_stored(format!("agt_{n}"))
    }

    fn occupancy(running: &[(&str, u32)]) -> Occupancy {
        Occupancy {
            running: running.iter().map(|(_, n)| n).sum(),
            running_by_agent: running.iter().map(|(a, n)| (agent(a), *n)).collect(),
        }
    }

    #[test]
    fn no_limit_admits_everything() {
        let busy = occupancy(&[("a", 1000)]);
        assert!(admits(None, &agent("a"), None, &busy, &[]).is_ok());
    }

    #[test]
    fn a_full_tenant_or_agent_holds_the_run() {
        let busy = occupancy(&[("a", 2), ("b", 1)]);
        let held = admits(Some(3), &agent("c"), None, &busy, &[]).expect_err("held");
        assert_eq!(held.0, "tenant_limit");
        let held = admits(Some(10), &agent("a"), Some(2), &busy, &[]).expect_err("held");
        assert_eq!(held.0, "agent_limit");
        assert!(admits(Some(10), &agent("b"), Some(2), &busy, &[]).is_ok());
    }

    #[test]
    fn older_waiting_runs_take_free_slots_first() {
        let busy = occupancy(&[("a", 1)]);
        let ahead = [Waiting {
            agent: agent("b"),
            agent_limit: None,
        }];
        // One free slot, and an older run of b waits for it.
        let held = admits(Some(2), &agent("c"), None, &busy, &ahead).expect_err("held");
        assert_eq!(held.0, "fair_queue");
        // Two free slots: b takes one, c the other.
        assert!(admits(Some(3), &agent("c"), None, &busy, &ahead).is_ok());
    }

    #[test]
    fn an_older_run_its_own_agent_blocks_does_not_hold_others_back() {
        let busy = occupancy(&[("a", 1)]);
        let ahead = [Waiting {
            agent: agent("a"),
            agent_limit: Some(1),
        }];
        assert!(admits(Some(2), &agent("c"), None, &busy, &ahead).is_ok());
    }

    #[test]
    fn runs_of_one_agent_start_in_the_order_they_began_to_wait() {
        let busy = occupancy(&[("a", 1)]);
        let ahead = [Waiting {
            agent: agent("a"),
            agent_limit: Some(2),
        }];
        let held = admits(None, &agent("a"), Some(2), &busy, &ahead).expect_err("held");
        assert_eq!(held.0, "fair_queue");
    }

    #[test]
    fn startable_runs_fill_the_free_slots_in_order() {
        let busy = occupancy(&[("a", 1)]);
        let w = |a: &str, l: Option<u32>| Waiting {
            agent: agent(a),
            agent_limit: l,
        };
        let queue = [w("a", Some(1)), w("b", None), w("b", Some(2)), w("c", None)];
        assert_eq!(
            startable(Some(3), &busy, &queue),
            vec![false, true, true, false]
        );
    }

    #[test]
    fn notify_lists_are_checked() {
        let id = crate::WebhookId::generate().to_string();
        assert!(validate_notify("notify", std::slice::from_ref(&id)).is_ok());
        assert!(validate_notify("notify", &["https://x".into()]).is_err());
        assert!(validate_notify("notify", &["whk_abc".into()]).is_err());
        assert!(validate_notify("notify", &[id.clone(), id]).is_err());
        let many: Vec<String> = (0..9)
            .map(|_| crate::WebhookId::generate().to_string())
            .collect();
        assert!(validate_notify("notify", &many).is_err());
        assert!(validate_limit("runs", 0).is_err());
    }
}
