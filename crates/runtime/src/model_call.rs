//! The one way a model is called: the daily budget, then the tenant's
//! routing policy per target, then the router, then a ledger row for every
//! attempt and every refused target (route decision, region and cost). The
//! turn, the summary fold and memory extraction all go through here, so
//! "every model call is routed, governed and in the ledger" holds by
//! construction rather than by three copies remembering it.

use crate::error::RuntimeError;
use crate::governance::{no_route, region_of, Caller, Governance};
use roster_core::ledger::{NewLedgerEntry, RouteDecision};
use roster_core::route::{ModelRoute, RouteTarget};
use roster_core::{AgentId, TenantId};
use roster_models::{Attempt, ChatRequest, ChatResponse, ProviderError, Router};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Who a model call is for: what the policies see and the audit records,
/// and where its ledger rows point.
pub(crate) struct CallFor<'a> {
    pub tenant: &'a TenantId,
    pub agent_id: &'a AgentId,
    pub agent: &'a str,
    /// Who the work is for (the session's user, else the actor).
    pub user: &'a str,
    /// The actor chain, e.g. `key:key_… > agent:analyst`.
    pub actor: &'a str,
    /// Where it happens, kept in the audit event (`{"run", "step"}`, …).
    pub at: serde_json::Value,
    pub session_id: Option<String>,
    pub run_id: Option<String>,
    pub step: Option<i64>,
}

/// A call allowed to go: the targets it may use, in order, the decision
/// for each, and the ledger rows of the targets the policy refused.
pub(crate) struct Admitted {
    pub route: ModelRoute,
    pub decisions: HashMap<String, RouteDecision>,
    pub refused: Vec<NewLedgerEntry>,
}

/// Whether a call may go.
pub(crate) enum Admission {
    Admitted(Admitted),
    /// Nothing is sent: `code` is `budget_exceeded` or `route_denied`, the
    /// ledger holds the refused targets' rows.
    Refused {
        code: &'static str,
        message: String,
        ledger: Vec<NewLedgerEntry>,
    },
}

/// What an admitted call came to: the answer (or the router's error; `None`
/// when cancelled) and a ledger row per attempt, refused targets first.
pub(crate) struct Outcome {
    pub answer: Option<Result<(ChatResponse, RouteTarget), ProviderError>>,
    pub ledger: Vec<NewLedgerEntry>,
}

/// The governed model call: the governance decides, the router calls.
#[derive(Clone, Copy)]
pub(crate) struct ModelCall<'a> {
    pub governance: &'a Governance,
    pub router: &'a Router,
}

impl ModelCall<'_> {
    /// The budget, then the routing policy for each target of `route`.
    /// Decided before any work the call needs (recall, folding, prompts).
    pub async fn admit(
        &self,
        route: &ModelRoute,
        call: &CallFor<'_>,
    ) -> Result<Admission, RuntimeError> {
        if let Some(message) = self
            .governance
            .budget_exceeded(call.tenant, call.agent_id, call.agent)
            .await?
        {
            return Ok(Admission::Refused {
                code: "budget_exceeded",
                message,
                ledger: Vec::new(),
            });
        }
        let registry = self.router.registry();
        let policed = self
            .governance
            .police_route(
                registry,
                call.tenant,
                route,
                Caller {
                    agent: call.agent,
                    user: call.user,
                    actor: call.actor,
                    at: call.at.clone(),
                },
            )
            .await?;
        let refused = policed.refused_entries(registry, &self.base_entry(call));
        if policed.allowed.targets.is_empty() {
            return Ok(Admission::Refused {
                code: "route_denied",
                message: no_route(&policed),
                ledger: refused,
            });
        }
        Ok(Admission::Admitted(Admitted {
            route: policed.allowed,
            decisions: policed.decisions,
            refused,
        }))
    }

    /// Sends an admitted call through the router (its retries and
    /// fallbacks), stopped by `cancel`.
    pub async fn send(
        &self,
        admitted: Admitted,
        request: ChatRequest,
        call: &CallFor<'_>,
        cancel: &CancellationToken,
    ) -> Outcome {
        let attempts: Mutex<Vec<Attempt>> = Mutex::new(Vec::new());
        let on_attempt = |a: Attempt| attempts.lock().unwrap_or_else(|p| p.into_inner()).push(a);
        let answer = tokio::select! {
            result = self.router.chat(&admitted.route, request, &|_| {}, &on_attempt) => Some(result),
            () = cancel.cancelled() => None,
        };
        let attempts = attempts.into_inner().unwrap_or_else(|p| p.into_inner());
        let ledger = admitted
            .refused
            .into_iter()
            .chain(
                attempts
                    .iter()
                    .map(|a| self.ledger_entry(a, call, &admitted.decisions)),
            )
            .collect();
        Outcome { answer, ledger }
    }

    /// The ledger row of one attempt: tokens, latency, outcome, region, the
    /// route decision that let it go, and its cost from the price table.
    pub fn ledger_entry(
        &self,
        attempt: &Attempt,
        call: &CallFor<'_>,
        decisions: &HashMap<String, RouteDecision>,
    ) -> NewLedgerEntry {
        let usage = attempt.usage.unwrap_or_default();
        let (tokens_in, tokens_out) = (
            i64::from(usage.input_tokens),
            i64::from(usage.output_tokens),
        );
        NewLedgerEntry {
            provider: attempt.provider.clone(),
            model: attempt.model.clone(),
            tokens_in,
            tokens_out,
            latency_ms: i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX),
            outcome: attempt.error.as_ref().map_or("ok", |e| e.code()).to_owned(),
            error: attempt.error.as_ref().map(ToString::to_string),
            region: Some(region_of(self.router.registry(), &attempt.provider)),
            route: decisions
                .get(&format!("{}/{}", attempt.provider, attempt.model))
                .cloned(),
            cost_micros: self.governance.cost_micros(
                &attempt.provider,
                &attempt.model,
                tokens_in,
                tokens_out,
            ),
            ..self.base_entry(call)
        }
    }

    /// A row naming only whom the call was for.
    fn base_entry(&self, call: &CallFor<'_>) -> NewLedgerEntry {
        NewLedgerEntry {
            provider: String::new(),
            model: String::new(),
            tokens_in: 0,
            tokens_out: 0,
            latency_ms: 0,
            outcome: String::new(),
            error: None,
            agent_id: Some(call.agent_id.to_string()),
            session_id: call.session_id.clone(),
            run_id: call.run_id.clone(),
            step: call.step,
            region: None,
            route: None,
            cost_micros: None,
        }
    }
}
