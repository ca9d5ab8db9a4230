//! The OpenAI-compatible surface: the Responses and Conversations APIs and
//! Chat Completions, under `/v1` with the same keys, as thin adapters with
//! their own wire types over the runtime's front door. A conversation is a
//! Roster session; a response is a run. The official SDKs are the judges
//! (see the e2e tests that run them).

mod chat;
mod conversations;
mod error;
mod items;
mod response;
mod responses;
mod stream;

use crate::{auth, AppState};
use axum::routing::{get, post};
use axum::Router;
use error::OpenAiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The surface's routes, each behind the API key check (scopes: the
/// `sessions` area).
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::show).delete(responses::delete),
        )
        .route("/v1/responses/{id}/cancel", post(responses::cancel))
        .route(
            "/v1/responses/{id}/input_items",
            get(responses::input_items),
        )
        .route("/v1/conversations", post(conversations::create))
        .route(
            "/v1/conversations/{id}",
            get(conversations::show)
                .post(conversations::update)
                .delete(conversations::delete),
        )
        .route(
            "/v1/conversations/{id}/items",
            get(conversations::list_items).post(conversations::add_items),
        )
        .route(
            "/v1/conversations/{id}/items/{item_id}",
            get(conversations::show_item).delete(conversations::delete_item),
        )
        .route("/v1/chat/completions", post(chat::create))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_key,
        ))
}

/// A function the caller runs, from its definition (`name`, and optional
/// `description` and `parameters`): on the tool itself in the Responses
/// API, under `function` in Chat Completions. `param` names where it is.
fn client_tool(
    definition: &Value,
    param: &str,
) -> Result<roster_core::turn::ClientTool, OpenAiError> {
    let name = definition
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            OpenAiError::invalid(format!("{param}.name"), "a function needs a `name`")
        })?;
    Ok(roster_core::turn::ClientTool {
        name: name.to_owned(),
        description: definition
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        parameters: definition
            .get("parameters")
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

/// A request's `tool_choice`: `auto`, `required`, `none`, or one named
/// tool (`{"type": "function", "name"}`, Chat Completions' `{"function":
/// {"name"}}`), which holds the first call to calling a tool.
fn tool_choice(
    given: Option<&Value>,
) -> Result<Option<roster_core::turn::TurnToolChoice>, OpenAiError> {
    use roster_core::turn::TurnToolChoice;
    Ok(match given {
        None | Some(Value::Null) => None,
        Some(Value::String(mode)) => Some(match mode.as_str() {
            "auto" => TurnToolChoice::Auto,
            "required" => TurnToolChoice::Required,
            "none" => TurnToolChoice::None,
            other => {
                return Err(OpenAiError::invalid(
                    "tool_choice",
                    format!("tool_choice `{other}` is not one of auto, required, none"),
                ))
            }
        }),
        Some(Value::Object(_)) => Some(TurnToolChoice::Required),
        Some(_) => {
            return Err(OpenAiError::invalid(
                "tool_choice",
                "tool_choice must be a string or an object",
            ))
        }
    })
}

/// What `model` names: an agent of the tenant, or a route
/// (`provider/model` of a configured provider), whose calls run as the
/// tenant's direct agent with that route. OpenAI's 404 otherwise.
async fn target(
    state: &crate::AppState,
    principal: &crate::auth::Principal,
    model: &str,
) -> Result<(roster_core::agent::Agent, Option<String>), OpenAiError> {
    let missing = || {
        OpenAiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "model_not_found".into(),
        message: format!(
            "the model `{model}` does not exist: name one of this tenant's agents (GET /v1/agents) or a route provider/model of a configured provider (GET /v1/models)"
        ),
        param: Some("model".into()),
    }
    };
    let by_name = roster_store::AgentRef::parse(model);
    if let Some(agent) = state.store.get_agent(&principal.tenant, &by_name).await? {
        return Ok((agent, None));
    }
    let Ok(route) = roster_core::route::RouteTarget::parse(model) else {
        return Err(missing());
    };
    if !state
        .models
        .providers
        .iter()
        .any(|p| p.name == route.provider)
    {
        return Err(missing());
    }
    let agent = state
        .runtime
        .direct_agent(&principal.tenant, model, &principal.label())
        .await?;
    Ok((agent, Some(model.to_owned())))
}

/// A JSON object body, refused in OpenAI's envelope otherwise.
fn body_json(body: &[u8]) -> Result<Value, OpenAiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(OpenAiError::invalid(
            "body",
            "the body must be a JSON object",
        )),
        Err(e) => Err(OpenAiError::invalid(
            "body",
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// The `Idempotency-Key` header (the SDKs send one with each POST, the
/// same on their retries).
fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, OpenAiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|k| Some(k.to_owned()))
            .map_err(|_| OpenAiError::invalid("Idempotency-Key", "Idempotency-Key must be ASCII")),
    }
}

/// OpenAI's metadata rules: at most 16 pairs, keys up to 64 characters,
/// string values up to 512.
fn check_metadata(metadata: &Map<String, Value>) -> Result<(), OpenAiError> {
    if metadata.len() > 16 {
        return Err(OpenAiError::invalid(
            "metadata",
            "at most 16 metadata pairs",
        ));
    }
    for (key, value) in metadata {
        if key.chars().count() > 64 {
            return Err(OpenAiError::invalid(
                "metadata",
                format!("metadata key `{key}` is longer than 64 characters"),
            ));
        }
        match value {
            Value::String(text) if text.chars().count() <= 512 => {}
            Value::String(_) => {
                return Err(OpenAiError::invalid(
                    "metadata",
                    format!("metadata value of `{key}` is longer than 512 characters"),
                ))
            }
            _ => {
                return Err(OpenAiError::invalid(
                    "metadata",
                    format!("metadata value of `{key}` must be a string"),
                ))
            }
        }
    }
    Ok(())
}

/// Cursor pagination as the SDKs read it.
#[derive(Deserialize, Default)]
pub struct Page {
    after: Option<String>,
    limit: Option<i64>,
    order: Option<String>,
}

impl Page {
    fn limit(&self) -> Result<i64, OpenAiError> {
        match self.limit {
            None => Ok(20),
            Some(n @ 1..=100) => Ok(n),
            Some(_) => Err(OpenAiError::invalid(
                "limit",
                "limit must be between 1 and 100",
            )),
        }
    }

    fn descending(&self, default: &str) -> Result<bool, OpenAiError> {
        match self.order.as_deref().unwrap_or(default) {
            "desc" => Ok(true),
            "asc" => Ok(false),
            other => Err(OpenAiError::invalid(
                "order",
                format!("order must be `asc` or `desc`, not `{other}`"),
            )),
        }
    }
}

/// A page of `all` (in ascending order, each with an `id`).
fn page(mut all: Vec<Value>, params: &Page, default_order: &str) -> Result<Value, OpenAiError> {
    let limit = usize::try_from(params.limit()?).unwrap_or(20);
    if params.descending(default_order)? {
        all.reverse();
    }
    let start = match &params.after {
        None => 0,
        Some(after) => {
            all.iter()
                .position(|item| item["id"].as_str() == Some(after.as_str()))
                .ok_or_else(|| OpenAiError::invalid("after", format!("no item `{after}` here")))?
                + 1
        }
    };
    let rest = all.get(start..).unwrap_or(&[]);
    let data: Vec<Value> = rest.iter().take(limit).cloned().collect();
    Ok(list(data, rest.len() > limit))
}

fn list(data: Vec<Value>, has_more: bool) -> Value {
    json!({
        "object": "list",
        "first_id": data.first().map(|i| i["id"].clone()),
        "last_id": data.last().map(|i| i["id"].clone()),
        "has_more": has_more,
        "data": data,
    })
}
