//! A tenant's compiled policies and the decisions they make.

use crate::context;
use crate::error::PolicyError;
use cedar_policy::{
    ActionConstraint, Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    Policy, PolicyId, PolicySet, PrincipalConstraint, Request, ResourceConstraint,
    RestrictedExpression, Schema, ValidationError, ValidationMode, Validator,
};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::{Arc, Mutex};

/// What an actor does; each is one Cedar action of [`crate::SCHEMA`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    InvokeAgent,
    CallTool,
    ReadSource,
    ReadMemory,
    WriteMemory,
    UseRoute,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::InvokeAgent,
        Action::CallTool,
        Action::ReadSource,
        Action::ReadMemory,
        Action::WriteMemory,
        Action::UseRoute,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::InvokeAgent => "invoke_agent",
            Action::CallTool => "call_tool",
            Action::ReadSource => "read_source",
            Action::ReadMemory => "read_memory",
            Action::WriteMemory => "write_memory",
            Action::UseRoute => "use_route",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn uid(self) -> EntityUid {
        uid("Action", self.name())
    }
}

/// Who acts.
#[derive(Clone, Debug)]
pub enum Actor<'a> {
    /// An API key's holder: `id` is the key's id, `kind` `user` or `service`.
    User {
        id: &'a str,
        name: &'a str,
        kind: &'a str,
    },
    /// An agent, named as in its configuration.
    Agent { name: &'a str },
}

/// What the action is done to.
#[derive(Clone, Debug)]
pub enum Resource<'a> {
    Agent {
        name: &'a str,
    },
    /// `name` is the tool as the model sees it (`sql_query`, `fs__read_file`).
    Tool {
        name: &'a str,
        kind: &'a str,
        server: &'a str,
    },
    Source {
        name: &'a str,
        kind: &'a str,
    },
    Namespace {
        name: &'a str,
    },
    Route {
        provider: &'a str,
        model: &'a str,
        vendor: &'a str,
        region: &'a str,
        hosting: &'a str,
    },
}

/// One question put to a tenant's policies.
#[derive(Clone, Debug)]
pub struct PolicyRequest<'a> {
    pub tenant: &'a str,
    pub actor: Actor<'a>,
    pub action: Action,
    pub resource: Resource<'a>,
    /// Who the work is for (the session's user, or the calling key).
    pub user: &'a str,
    /// For `call_tool`: the call's arguments, each a context attribute.
    pub arguments: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// Facts about the call the caller derived (e.g. the tables of a query);
    /// they win over arguments of the same name.
    pub facts: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// What the policies decided, with the policies that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `policies` is empty when no policy governs the action yet.
    Allow { policies: Vec<String> },
    /// Permitted once a human approves; `reason` is the policy's annotation.
    NeedsApproval {
        policies: Vec<String>,
        reason: String,
    },
    Deny {
        policies: Vec<String>,
        reason: String,
    },
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::NeedsApproval { .. } => "needs_approval",
            Decision::Deny { .. } => "deny",
        }
    }

    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies }
            | Decision::NeedsApproval { policies, .. }
            | Decision::Deny { policies, .. } => policies,
        }
    }
}

static SCHEMA: LazyLock<Result<Schema, String>> = LazyLock::new(|| {
    Schema::from_cedarschema_str(crate::SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| e.to_string())
});

fn schema() -> Result<&'static Schema, PolicyError> {
    SCHEMA
        .as_ref()
        .map_err(|e| PolicyError::Invalid(format!("Roster's own Cedar schema: {e}")))
}

fn uid(kind: &str, id: &str) -> EntityUid {
    // Type names here are the schema's own, always valid.
    let kind = EntityTypeName::from_str(&format!("Roster::{kind}"))
        .unwrap_or_else(|_| unreachable!("`Roster::{kind}` is a valid type name"));
    EntityUid::from_type_name_and_id(kind, EntityId::new(id))
}

/// A tenant's policy documents, compiled and indexed.
///
/// Cedar's authorizer evaluates every policy of the set it is given (about a
/// microsecond each here), so a decision is put only to the policies whose
/// scope can match it: those of its action whose principal and resource are
/// unconstrained, plus those naming its principal or its resource. That
/// slice is built once per (action, principal, resource) and kept.
#[derive(Clone, Debug, Default)]
pub struct TenantPolicies {
    per_action: [Index; 6],
    governed: [bool; 6],
    count: usize,
    /// Ids of `@approval` policies whose requests the requester may decide
    /// (`@self_approval`); every other approval needs another principal.
    self_approval: Arc<HashSet<String>>,
    /// Ids of policies annotated `@approval`.
    approval: Arc<HashSet<String>>,
    slices: Arc<Mutex<HashMap<SliceKey, Arc<PolicySet>>>>,
}

/// (action index, principal, resource).
type SliceKey = (usize, EntityUid, EntityUid);

/// One action's policies by the entity their scope names with `==`.
#[derive(Clone, Debug, Default)]
struct Index {
    general: Vec<Policy>,
    by_principal: HashMap<EntityUid, Vec<Policy>>,
    by_resource: HashMap<EntityUid, Vec<Policy>>,
}

/// Slices kept per tenant before the cache starts over; each is small.
const MAX_SLICES: usize = 4096;

impl TenantPolicies {
    /// Parses and validates named documents (each one or more Cedar
    /// policies). A policy's id is its document's name, with `[n]` (from 1)
    /// when the document holds several.
    pub fn compile<'a>(
        documents: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, PolicyError> {
        let mut all = PolicySet::new();
        for (name, text) in documents {
            let parsed = PolicySet::from_str(text)
                .map_err(|e| PolicyError::Invalid(format!("policy `{name}`: {}", report(&e))))?;
            if parsed.templates().next().is_some() {
                return Err(PolicyError::Invalid(format!(
                    "policy `{name}`: templates (?principal, ?resource) are not supported"
                )));
            }
            let statements: Vec<_> = parsed.policies().collect();
            if statements.is_empty() {
                return Err(PolicyError::Invalid(format!(
                    "policy `{name}` holds no Cedar policy"
                )));
            }
            let several = statements.len() > 1;
            for (i, policy) in statements.into_iter().enumerate() {
                let id = if several {
                    format!("{name}[{}]", i + 1)
                } else {
                    name.to_owned()
                };
                all.add(policy.new_id(PolicyId::new(&id)))
                    .map_err(|e| PolicyError::Invalid(format!("policy `{name}`: {e}")))?;
            }
        }
        validate(&all)?;
        let mut compiled = Self {
            count: all.policies().count(),
            ..Self::default()
        };
        let annotated = |key: &str| -> HashSet<String> {
            all.policies()
                .filter(|p| p.annotation(key).is_some())
                .map(|p| p.id().to_string())
                .collect()
        };
        compiled.approval = Arc::new(annotated("approval"));
        compiled.self_approval = Arc::new(annotated("self_approval"));
        if let Some(stray) = compiled
            .self_approval
            .iter()
            .find(|id| !compiled.approval.contains(*id))
        {
            return Err(PolicyError::Invalid(format!(
                "policy `{stray}`: @self_approval only applies beside @approval"
            )));
        }
        for policy in all.policies() {
            let applies: Vec<Action> = match policy.action_constraint() {
                ActionConstraint::Any => Action::ALL.to_vec(),
                ActionConstraint::Eq(action) => actions_named(std::slice::from_ref(&action)),
                ActionConstraint::In(actions) => actions_named(&actions),
            };
            for action in applies {
                compiled.governed[action.index()] = true;
                let index = &mut compiled.per_action[action.index()];
                if let ResourceConstraint::Eq(resource) = policy.resource_constraint() {
                    index
                        .by_resource
                        .entry(resource)
                        .or_default()
                        .push(policy.clone());
                } else if let PrincipalConstraint::Eq(principal) = policy.principal_constraint() {
                    index
                        .by_principal
                        .entry(principal)
                        .or_default()
                        .push(policy.clone());
                } else {
                    index.general.push(policy.clone());
                }
            }
        }
        Ok(compiled)
    }

    fn slice(
        &self,
        action: Action,
        principal: &EntityUid,
        resource: &EntityUid,
    ) -> Result<Arc<PolicySet>, PolicyError> {
        let key = (action.index(), principal.clone(), resource.clone());
        let mut slices = self
            .slices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(set) = slices.get(&key) {
            return Ok(set.clone());
        }
        let index = &self.per_action[action.index()];
        let named = [
            index.by_principal.get(principal),
            index.by_resource.get(resource),
        ];
        let policies = index
            .general
            .iter()
            .chain(named.into_iter().flatten().flatten())
            .cloned();
        let set = Arc::new(
            PolicySet::from_policies(policies).map_err(|e| PolicyError::Request(e.to_string()))?,
        );
        if slices.len() >= MAX_SLICES {
            slices.clear();
        }
        slices.insert(key, set.clone());
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the principal whose run asked may decide an approval that
    /// `policies` (an approval's deciding policies) required: only when
    /// every `@approval` policy among them also says `@self_approval`.
    /// Policies since removed count as not saying it, so the safe default
    /// (someone else decides) holds.
    pub fn allows_self_approval(&self, policies: &[String]) -> bool {
        let mut requiring = policies
            .iter()
            .filter(|id| self.approval.contains(*id))
            .peekable();
        requiring.peek().is_some() && requiring.all(|id| self.self_approval.contains(id))
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether any policy can apply to `action` (if none, it is allowed).
    pub fn governs(&self, action: Action) -> bool {
        self.governed[action.index()]
    }

    pub fn decide(&self, request: &PolicyRequest<'_>) -> Result<Decision, PolicyError> {
        let action = request.action;
        if !self.governs(action) {
            return Ok(Decision::Allow {
                policies: Vec::new(),
            });
        }
        let tenant = uid("Tenant", request.tenant);
        let parents = HashSet::from([tenant.clone()]);
        let (principal, principal_entity) = actor_entity(&request.actor, &parents)?;
        let (resource, resource_entity) = resource_entity(&request.resource, &parents)?;
        let entities = Entities::from_entities(
            [
                Entity::new_no_attrs(tenant, HashSet::new()),
                principal_entity,
                resource_entity,
            ],
            None,
        )
        .map_err(|e| PolicyError::Request(e.to_string()))?;
        let context = request_context(request)?;
        let (principal_uid, resource_uid) = (principal.clone(), resource.clone());
        let cedar = Request::new(principal, action.uid(), resource, context, None)
            .map_err(|e| PolicyError::Request(e.to_string()))?;
        let set = self.slice(action, &principal_uid, &resource_uid)?;
        let response = Authorizer::new().is_authorized(&cedar, &set, &entities);
        let policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        Ok(match response.decision() {
            cedar_policy::Decision::Allow => {
                let approval = response.diagnostics().reason().find_map(|id| {
                    set.policy(id)
                        .and_then(|p| p.annotation("approval"))
                        .map(|why| (id, why))
                });
                match approval {
                    Some((id, why)) => Decision::NeedsApproval {
                        reason: if why.is_empty() {
                            format!("policy `{id}` requires approval")
                        } else {
                            why.to_owned()
                        },
                        policies,
                    },
                    None => Decision::Allow { policies },
                }
            }
            cedar_policy::Decision::Deny => {
                let mut reason = if policies.is_empty() {
                    format!(
                        "no policy permits {} to {} {}",
                        describe_actor(&request.actor),
                        action.name(),
                        describe_resource(&request.resource)
                    )
                } else {
                    format!("forbidden by policy {}", quoted(&policies))
                };
                if !errors.is_empty() {
                    reason.push_str(&format!(
                        " (policies that failed to evaluate: {})",
                        errors.join("; ")
                    ));
                }
                Decision::Deny { policies, reason }
            }
        })
    }
}

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_actor(actor: &Actor<'_>) -> String {
    match actor {
        Actor::User { id, name, .. } => format!("key `{name}` ({id})"),
        Actor::Agent { name } => format!("agent `{name}`"),
    }
}

fn describe_resource(resource: &Resource<'_>) -> String {
    match resource {
        Resource::Agent { name } => format!("agent `{name}`"),
        Resource::Tool { name, .. } => format!("tool `{name}`"),
        Resource::Source { name, .. } => format!("source `{name}`"),
        Resource::Namespace { name } => format!("namespace `{name}`"),
        Resource::Route {
            provider, model, ..
        } => format!("route `{provider}/{model}`"),
    }
}

fn actions_named(uids: &[EntityUid]) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| uids.iter().any(|u| *u == a.uid()))
        .collect()
}

fn strings<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> HashMap<String, RestrictedExpression> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), RestrictedExpression::new_string(v.to_owned())))
        .collect()
}

fn entity(
    kind: &str,
    id: &str,
    attrs: HashMap<String, RestrictedExpression>,
    parents: &HashSet<EntityUid>,
) -> Result<(EntityUid, Entity), PolicyError> {
    let uid = uid(kind, id);
    let entity = Entity::new(uid.clone(), attrs, parents.clone())
        .map_err(|e| PolicyError::Request(e.to_string()))?;
    Ok((uid, entity))
}

fn actor_entity(
    actor: &Actor<'_>,
    parents: &HashSet<EntityUid>,
) -> Result<(EntityUid, Entity), PolicyError> {
    match actor {
        Actor::User { id, name, kind } => entity(
            "User",
            id,
            strings([("name", *name), ("kind", *kind)]),
            parents,
        ),
        Actor::Agent { name } => entity("Agent", name, strings([("name", *name)]), parents),
    }
}

fn resource_entity(
    resource: &Resource<'_>,
    parents: &HashSet<EntityUid>,
) -> Result<(EntityUid, Entity), PolicyError> {
    match resource {
        Resource::Agent { name } => entity("Agent", name, strings([("name", *name)]), parents),
        Resource::Tool { name, kind, server } => entity(
            "Tool",
            name,
            strings([("name", *name), ("kind", *kind), ("server", *server)]),
            parents,
        ),
        Resource::Source { name, kind } => entity(
            "Source",
            name,
            strings([("name", *name), ("kind", *kind)]),
            parents,
        ),
        Resource::Namespace { name } => {
            entity("Namespace", name, strings([("name", *name)]), parents)
        }
        Resource::Route {
            provider,
            model,
            vendor,
            region,
            hosting,
        } => entity(
            "Route",
            &format!("{provider}/{model}"),
            strings([
                ("provider", *provider),
                ("model", *model),
                ("vendor", *vendor),
                ("region", *region),
                ("hosting", *hosting),
            ]),
            parents,
        ),
    }
}

fn request_context(request: &PolicyRequest<'_>) -> Result<Context, PolicyError> {
    let mut pairs: HashMap<String, RestrictedExpression> = HashMap::new();
    if request.action != Action::InvokeAgent {
        for map in [request.arguments, request.facts].into_iter().flatten() {
            for (key, value) in map {
                if let Some(value) = context::value(value, 1) {
                    pairs.insert(key.clone(), value);
                }
            }
        }
        pairs.insert(
            "user".into(),
            RestrictedExpression::new_string(request.user.to_owned()),
        );
    }
    Context::from_pairs(pairs).map_err(|e| PolicyError::Request(e.to_string()))
}

/// Validates against the schema in strict mode, except that `call_tool`'s
/// context is open: a tool's arguments are whatever its own schema says, so
/// an attribute the Cedar schema does not list is not an error there.
fn validate(set: &PolicySet) -> Result<(), PolicyError> {
    let result = Validator::new(schema()?.clone()).validate(set, ValidationMode::Strict);
    let open_context = format!("in context for {}", Action::CallTool.uid());
    let errors: Vec<String> = result
        .validation_errors()
        .filter(|e| {
            !matches!(e, ValidationError::UnsafeAttributeAccess(_))
                || !e.to_string().contains(&open_context)
        })
        .map(|e| report(e))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Invalid(errors.join("; ")))
    }
}

/// An error with its help text, the way Cedar's own tools print it.
fn report(e: &dyn miette::Diagnostic) -> String {
    match e.help() {
        Some(help) => format!("{e} ({help})"),
        None => e.to_string(),
    }
}
