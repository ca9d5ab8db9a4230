//! Policy decisions for a tenant: its Cedar documents compiled once per
//! revision, every governed decision written to the audit log before the
//! action it decides runs.
//!
//! A tenant whose stored policies no longer compile (say, after an upgrade
//! changed the schema) is denied every action until they are fixed: a
//! decision is never made against a set that was not validated.

use crate::error::RuntimeError;
use roster_core::TenantId;
use roster_policy::{Action, Decision, PolicyRequest, TenantPolicies};
use roster_store::{DynStore, NewAuditEvent};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Longest argument text kept in an audit event.
const MAX_AUDITED_ARGUMENTS: usize = 4096;

/// A tenant's compiled policies, or why they do not compile.
pub type Compiled = Result<Arc<TenantPolicies>, String>;

pub struct Governance {
    store: DynStore,
    compiled: Mutex<HashMap<TenantId, (i64, Compiled)>>,
    /// How long an approval request waits before it is denied, in ms.
    approval_ttl_ms: AtomicU64,
    /// Prices by `provider/model` (or `provider/*`).
    prices: std::sync::RwLock<HashMap<String, Price>>,
}

/// What a model costs, in US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// Default for [`Governance::set_approval_ttl`]: a working day and night.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(24 * 3600);

/// What to record with a decision.
pub struct Subject<'a> {
    /// Who acts, as a chain: `key:key_… > agent:analyst`.
    pub actor: &'a str,
    /// What is acted on, e.g. `tool:sql_query`.
    pub resource: &'a str,
    /// Where it happened (`{"run": …, "step": …}`), kept in the event.
    pub at: serde_json::Value,
}

impl Governance {
    pub fn new(store: DynStore) -> Self {
        Self {
            store,
            compiled: Mutex::new(HashMap::new()),
            approval_ttl_ms: AtomicU64::new(millis(DEFAULT_APPROVAL_TTL)),
            prices: std::sync::RwLock::new(HashMap::new()),
        }
    }

    /// The prices ledger costs are computed from, by `provider/model` or
    /// `provider/*`.
    pub fn set_prices(&self, prices: HashMap<String, Price>) {
        *self
            .prices
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = prices;
    }

    /// Millionths of a dollar for a call (a price per million tokens is a
    /// price in millionths per token); `None` without a price.
    pub fn cost_micros(
        &self,
        provider: &str,
        model: &str,
        tokens_in: i64,
        tokens_out: i64,
    ) -> Option<i64> {
        let prices = self
            .prices
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let price = prices
            .get(&format!("{provider}/{model}"))
            .or_else(|| prices.get(&format!("{provider}/*")))?;
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let cost = (tokens_in as f64 * price.input_per_mtok
            + tokens_out as f64 * price.output_per_mtok)
            .round() as i64;
        Some(cost)
    }

    /// Whether today's (UTC) budget of the tenant or of the agent is used
    /// up; the message says which and by how much.
    pub async fn budget_exceeded(
        &self,
        tenant: &TenantId,
        agent: &roster_core::AgentId,
        agent_name: &str,
    ) -> Result<Option<String>, RuntimeError> {
        let budgets = self.store.budgets(tenant).await?;
        if budgets.is_empty() {
            return Ok(None);
        }
        let day = chrono::Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_else(chrono::Utc::now);
        let agent_scope = format!("agent:{agent}");
        for budget in &budgets {
            let (who, spent) = if budget.scope == "tenant" {
                (
                    "the tenant",
                    self.store.spent_since(tenant, None, day).await?,
                )
            } else if budget.scope == agent_scope {
                (
                    "this agent",
                    self.store.spent_since(tenant, Some(agent), day).await?,
                )
            } else {
                continue;
            };
            if let Some(limit) = budget.tokens_per_day.filter(|l| spent.tokens >= *l) {
                return Ok(Some(format!(
                    "{who}'s daily token budget is used up: {} of {limit} tokens today (UTC){}",
                    spent.tokens,
                    if who == "this agent" {
                        format!(" by agent `{agent_name}`")
                    } else {
                        String::new()
                    }
                )));
            }
            if let Some(limit) = budget
                .cost_micros_per_day
                .filter(|l| spent.cost_micros >= *l)
            {
                #[allow(clippy::cast_precision_loss)]
                let (spent_usd, limit_usd) = (spent.cost_micros as f64 / 1e6, limit as f64 / 1e6);
                return Ok(Some(format!(
                    "{who}'s daily cost budget is used up: ${spent_usd:.4} of ${limit_usd:.4} today (UTC)"
                )));
            }
        }
        Ok(None)
    }

    /// How long approval requests made from now on wait for a decision.
    pub fn set_approval_ttl(&self, ttl: Duration) {
        self.approval_ttl_ms.store(millis(ttl), Ordering::Relaxed);
    }

    pub fn approval_ttl(&self) -> Duration {
        Duration::from_millis(self.approval_ttl_ms.load(Ordering::Relaxed))
    }

    /// The tenant's policies as of now: one indexed read of the revision,
    /// and a compile only when it moved.
    pub async fn policies(&self, tenant: &TenantId) -> Result<Compiled, RuntimeError> {
        let revision = self.store.policy_revision(tenant).await?;
        if let Some((seen, compiled)) = self.lock().get(tenant) {
            if *seen == revision {
                return Ok(compiled.clone());
            }
        }
        let snapshot = self.store.policies(tenant).await?;
        let compiled = TenantPolicies::compile(
            snapshot
                .documents
                .iter()
                .map(|d| (d.name.as_str(), d.text.as_str())),
        )
        .map(Arc::new)
        .map_err(|e| e.to_string());
        if let Err(e) = &compiled {
            tracing::error!(tenant = %tenant, error = %e, "stored policies do not compile; governed actions are denied");
        }
        self.lock()
            .insert(tenant.clone(), (snapshot.revision, compiled.clone()));
        Ok(compiled)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, (i64, Compiled)>> {
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The decision alone, without recording it; `None` when no policy
    /// governs the action (it is allowed). The authorisation cost of a call
    /// (`examples/authorize_cost.rs`).
    pub async fn evaluate(
        &self,
        tenant: &TenantId,
        request: &PolicyRequest<'_>,
    ) -> Result<Option<Decision>, RuntimeError> {
        Ok(judge(&self.policies(tenant).await?, request))
    }

    /// Decides `request` and, when a policy governs it, appends the decision
    /// to the audit log before returning it.
    pub async fn decide(
        &self,
        tenant: &TenantId,
        request: &PolicyRequest<'_>,
        subject: Subject<'_>,
    ) -> Result<Decision, RuntimeError> {
        let compiled = self.policies(tenant).await?;
        self.decide_in(tenant, &compiled, request, subject).await
    }

    /// [`Governance::decide`] against policies the caller already read
    /// (one revision check for several decisions, or a decision after a
    /// [`governed`] check).
    pub async fn decide_in(
        &self,
        tenant: &TenantId,
        compiled: &Compiled,
        request: &PolicyRequest<'_>,
        subject: Subject<'_>,
    ) -> Result<Decision, RuntimeError> {
        let Some(decision) = judge(compiled, request) else {
            return Ok(open());
        };
        let mut detail = json!({
            "policies": decision.policies(),
            "at": subject.at,
        });
        if let Decision::Deny { reason, .. } | Decision::NeedsApproval { reason, .. } = &decision {
            detail["reason"] = json!(reason);
        }
        if let Some(arguments) = request.arguments {
            let text = serde_json::Value::Object(arguments.clone()).to_string();
            detail["arguments"] = if text.len() <= MAX_AUDITED_ARGUMENTS {
                serde_json::Value::Object(arguments.clone())
            } else {
                json!(format!(
                    "{}… ({} bytes)",
                    cut(&text, MAX_AUDITED_ARGUMENTS),
                    text.len()
                ))
            };
        }
        if let Some(facts) = request.facts.filter(|f| !f.is_empty()) {
            detail["facts"] = serde_json::Value::Object(facts.clone());
        }
        self.store
            .append_audit(
                tenant,
                vec![NewAuditEvent {
                    actor: subject.actor.to_owned(),
                    action: format!("policy.{}", request.action.name()),
                    resource: subject.resource.to_owned(),
                    decision: Some(decision.label().to_owned()),
                    detail,
                }],
            )
            .await?;
        Ok(decision)
    }

    /// Whether any policy of the tenant governs `action` (cheap after the
    /// first call per revision).
    pub async fn governs(&self, tenant: &TenantId, action: Action) -> Result<bool, RuntimeError> {
        Ok(governed(&self.policies(tenant).await?, action))
    }
}

/// Whether some policy of a compiled set can apply to `action` (a set that
/// does not compile governs everything: it denies).
pub fn governed(compiled: &Compiled, action: Action) -> bool {
    compiled.as_ref().map_or(true, |p| p.governs(action))
}

/// The decision of a compiled set; `None` when it does not govern the action.
fn judge(compiled: &Compiled, request: &PolicyRequest<'_>) -> Option<Decision> {
    Some(match compiled {
        Ok(policies) if !policies.governs(request.action) => return None,
        Ok(policies) => policies.decide(request).unwrap_or_else(|e| Decision::Deny {
            policies: Vec::new(),
            reason: e.to_string(),
        }),
        Err(e) => Decision::Deny {
            policies: Vec::new(),
            reason: format!("the tenant's policies do not compile: {e}"),
        },
    })
}

fn open() -> Decision {
    Decision::Allow {
        policies: Vec::new(),
    }
}

fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Who asks for a route, for the decision and its audit event.
pub struct Caller<'a> {
    pub agent: &'a str,
    /// Who the work is for.
    pub user: &'a str,
    /// The actor chain, e.g. `key:key_… > agent:analyst`.
    pub actor: &'a str,
    /// Where it happened, kept in the audit event.
    pub at: serde_json::Value,
}

/// A model route after the tenant's routing policy: the targets it may
/// use, in order, with the decision for each; the refused ones with why.
#[derive(Debug, Default)]
pub struct PolicedRoute {
    pub allowed: roster_core::route::ModelRoute,
    pub decisions: HashMap<String, roster_core::ledger::RouteDecision>,
    pub refused: Vec<(roster_core::route::RouteTarget, String)>,
}

impl PolicedRoute {
    /// Ledger rows of the refused targets: no byte left for them.
    pub fn refused_entries(
        &self,
        registry: &roster_models::ProviderRegistry,
        base: &roster_core::ledger::NewLedgerEntry,
    ) -> Vec<roster_core::ledger::NewLedgerEntry> {
        self.refused
            .iter()
            .map(|(target, reason)| roster_core::ledger::NewLedgerEntry {
                provider: target.provider.clone(),
                model: target.model.clone(),
                tokens_in: 0,
                tokens_out: 0,
                latency_ms: 0,
                outcome: "route_denied".into(),
                error: Some(reason.clone()),
                region: Some(region_of(registry, &target.provider)),
                route: self.decisions.get(&target.to_string()).cloned(),
                ..base.clone()
            })
            .collect()
    }
}

/// The configured region of a provider (`unknown` when it does not say).
pub fn region_of(registry: &roster_models::ProviderRegistry, provider: &str) -> String {
    registry
        .get(provider)
        .map_or_else(|| "unknown".to_owned(), |p| p.attributes().region)
}

impl Governance {
    /// Puts each target of `route` to the tenant's `use_route` policies
    /// before anything is sent: fallbacks only go to allowed targets.
    pub async fn police_route(
        &self,
        registry: &roster_models::ProviderRegistry,
        tenant: &TenantId,
        route: &roster_core::route::ModelRoute,
        caller: Caller<'_>,
    ) -> Result<PolicedRoute, RuntimeError> {
        let Caller {
            agent,
            user,
            actor,
            at,
        } = caller;
        let mut policed = PolicedRoute::default();
        let compiled = self.policies(tenant).await?;
        let governs = governed(&compiled, Action::UseRoute);
        for target in &route.targets {
            let key = target.to_string();
            if !governs {
                policed.decisions.insert(
                    key,
                    roster_core::ledger::RouteDecision {
                        decision: "open".into(),
                        policies: Vec::new(),
                    },
                );
                policed.allowed.targets.push(target.clone());
                continue;
            }
            let attributes = registry.get(&target.provider).map_or_else(
                || roster_models::ProviderAttributes {
                    vendor: "unknown".into(),
                    region: "unknown".into(),
                    hosting: "unknown".into(),
                },
                |p| p.attributes(),
            );
            let request = PolicyRequest {
                tenant: tenant.as_str(),
                actor: roster_policy::Actor::Agent { name: agent },
                action: Action::UseRoute,
                resource: roster_policy::Resource::Route {
                    provider: &target.provider,
                    model: &target.model,
                    vendor: &attributes.vendor,
                    region: &attributes.region,
                    hosting: &attributes.hosting,
                },
                user,
                arguments: None,
                facts: None,
            };
            let decision = self
                .decide_in(
                    tenant,
                    &compiled,
                    &request,
                    Subject {
                        actor,
                        resource: &format!("route:{key}"),
                        at: at.clone(),
                    },
                )
                .await?;
            let record = |label: &str| roster_core::ledger::RouteDecision {
                decision: label.to_owned(),
                policies: decision.policies().to_vec(),
            };
            match &decision {
                Decision::Allow { .. } => {
                    policed.decisions.insert(key, record("allow"));
                    policed.allowed.targets.push(target.clone());
                }
                Decision::Deny { reason, .. } => {
                    policed.decisions.insert(key, record("deny"));
                    policed.refused.push((target.clone(), reason.clone()));
                }
                Decision::NeedsApproval { .. } => {
                    policed.decisions.insert(key, record("deny"));
                    policed.refused.push((
                        target.clone(),
                        "routes cannot wait for approval; an @approval policy on use_route denies"
                            .into(),
                    ));
                }
            }
        }
        Ok(policed)
    }
}

impl Governance {
    /// Whether `agent` may do `action` to `resource` (reading a knowledge
    /// source, reading or writing a memory namespace); the refusal says
    /// why. Recorded like every governed decision.
    pub async fn permits(
        &self,
        tenant: &TenantId,
        action: Action,
        resource: roster_policy::Resource<'_>,
        label: &str,
        caller: Caller<'_>,
    ) -> Result<Result<(), String>, RuntimeError> {
        let compiled = self.policies(tenant).await?;
        if !governed(&compiled, action) {
            return Ok(Ok(()));
        }
        let request = PolicyRequest {
            tenant: tenant.as_str(),
            actor: roster_policy::Actor::Agent { name: caller.agent },
            action,
            resource,
            user: caller.user,
            arguments: None,
            facts: None,
        };
        let decision = self
            .decide_in(
                tenant,
                &compiled,
                &request,
                Subject {
                    actor: caller.actor,
                    resource: label,
                    at: caller.at,
                },
            )
            .await?;
        Ok(match decision {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny { reason, .. } => Err(reason),
            Decision::NeedsApproval { .. } => Err(format!(
                "{} cannot wait for approval; an @approval policy on it denies",
                action.name()
            )),
        })
    }
}

/// The run error when no target of a route is allowed.
pub fn no_route(policed: &PolicedRoute) -> String {
    let reasons: Vec<String> = policed
        .refused
        .iter()
        .map(|(target, reason)| format!("{target}: {reason}"))
        .collect();
    format!(
        "no target of this agent's model route is allowed by the tenant's routing policy ({}); nothing was sent",
        reasons.join("; ")
    )
}
