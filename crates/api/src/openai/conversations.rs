//! `/v1/conversations`: a conversation is a Roster session (the same id in
//! both APIs); one made before any response waits for the first response
//! to name its agent.

use super::error::OpenAiError;
use super::responses::render_items;
use super::{body_json, check_metadata, list, Page};
use crate::auth::Principal;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use roster_core::SessionId;
use roster_runtime::Conversation;
use roster_store::conversations::ItemPage;
use serde_json::{json, Map, Value};

/// Most items one request may add (OpenAI's limit).
const MAX_ITEMS: usize = 20;

fn render(conversation: &Conversation) -> Value {
    json!({
        "id": conversation.id(),
        "object": "conversation",
        "created_at": conversation.created_at().timestamp(),
        "metadata": conversation.metadata().cloned().unwrap_or_else(|| json!({})),
    })
}

async fn find(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<Conversation, OpenAiError> {
    let missing = || OpenAiError::not_found("conversation", id);
    let session = SessionId::parse(id).ok_or_else(missing)?;
    match state
        .runtime
        .conversation(&principal.actor(), &session)
        .await
    {
        Ok(found) => Ok(found),
        Err(roster_runtime::RuntimeError::NotFound(_)) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

fn metadata_of(body: &Value) -> Result<Option<Value>, OpenAiError> {
    match body.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            check_metadata(map)?;
            Ok(Some(Value::Object(map.clone())))
        }
        Some(_) => Err(OpenAiError::invalid(
            "metadata",
            "metadata must be an object",
        )),
    }
}

/// `items` of a body: at most [`MAX_ITEMS`], parsed like a response input.
fn items_of(
    body: &Value,
    earlier: &[roster_core::item::Item],
) -> Result<Vec<roster_core::item::ItemContent>, OpenAiError> {
    match body.get("items") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) if list.len() > MAX_ITEMS => Err(OpenAiError::invalid(
            "items",
            format!("at most {MAX_ITEMS} items at a time"),
        )),
        Some(items @ Value::Array(_)) => Ok(super::items::parse_input(items, earlier)
            .map_err(|r| OpenAiError::invalid(r.param.replacen("input", "items", 1), r.message))?),
        Some(_) => Err(OpenAiError::invalid("items", "items must be a list")),
    }
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    body: axum::body::Bytes,
) -> Result<Json<Value>, OpenAiError> {
    let body = body_json(&body)?;
    let metadata = metadata_of(&body)?;
    let items = items_of(&body, &[])?;
    let user = crate::identity::session_user(&principal, None)?;
    let created = state
        .store
        .create_conversation(
            &principal.tenant,
            user.as_deref(),
            metadata,
            items,
            &principal.label(),
        )
        .await?;
    Ok(Json(render(&Conversation::Pending(created))))
}

pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenAiError> {
    Ok(Json(render(&find(&state, &principal, &id).await?)))
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, OpenAiError> {
    let body = body_json(&body)?;
    let found = find(&state, &principal, &id).await?;
    let metadata = metadata_of(&body)?.or_else(|| Some(Value::Object(Map::new())));
    state
        .store
        .set_conversation_metadata(&principal.tenant, found.id(), metadata)
        .await?;
    Ok(Json(render(&find(&state, &principal, &id).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenAiError> {
    match find(&state, &principal, &id).await? {
        Conversation::Session(session) => {
            crate::routes::sessions::remove(&state, &principal, &session).await?;
        }
        Conversation::Pending(pending) => {
            state
                .store
                .delete_pending_conversation(&principal.tenant, &pending.id)
                .await?;
        }
    }
    Ok(Json(
        json!({"id": id, "object": "conversation.deleted", "deleted": true}),
    ))
}

pub async fn add_items(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, OpenAiError> {
    let body = body_json(&body)?;
    let found = find(&state, &principal, &id).await?;
    let earlier = match &found {
        Conversation::Session(s) => state.store.tail_items(&principal.tenant, &s.id, 50).await?,
        Conversation::Pending(p) => p.items.clone(),
    };
    let items = items_of(&body, &earlier)?;
    if items.is_empty() {
        return Err(OpenAiError::invalid("items", "items must not be empty"));
    }
    let added = state
        .store
        .append_conversation_items(&principal.tenant, found.id(), items)
        .await?;
    Ok(Json(list(render_items(&added), false)))
}

pub async fn list_items(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(params): Query<Page>,
) -> Result<Json<Value>, OpenAiError> {
    let found = find(&state, &principal, &id).await?;
    let limit = params.limit()?;
    let descending = params.descending("desc")?;
    let after = match &params.after {
        None => None,
        Some(after) => Some(super::items::seq_of(after).ok_or_else(|| {
            OpenAiError::invalid(
                "after",
                format!("`{after}` is not an item id of this conversation"),
            )
        })?),
    };
    // One Roster item may be several OpenAI items (a reply and its calls):
    // a page reads whole Roster items, one more than asked to see if
    // there are more, and never splits one.
    let stored = state
        .store
        .page_conversation_items(
            &principal.tenant,
            found.id(),
            ItemPage {
                after,
                limit: limit + 1,
                descending,
            },
        )
        .await?;
    let has_more = stored.len() > usize::try_from(limit).unwrap_or(0);
    let taken = &stored[..stored.len().min(usize::try_from(limit).unwrap_or(0))];
    let mut data = Vec::new();
    for item in taken {
        let mut rendered = render_items(std::slice::from_ref(item));
        if descending {
            // Newest first, a reply's own items too; the cursor
            // (`last_id`) then names the oldest item's seq.
            rendered.reverse();
        }
        data.extend(rendered);
    }
    Ok(Json(list(data, has_more)))
}

async fn item_by_id(
    state: &AppState,
    principal: &Principal,
    found: &Conversation,
    item_id: &str,
) -> Result<(i64, Value), OpenAiError> {
    let missing = || OpenAiError::not_found("item", item_id);
    let seq = super::items::seq_of(item_id).ok_or_else(missing)?;
    let stored = state
        .store
        .page_conversation_items(
            &principal.tenant,
            found.id(),
            ItemPage {
                after: Some(seq - 1),
                limit: 1,
                descending: false,
            },
        )
        .await?;
    let rendered = render_items(
        stored
            .iter()
            .filter(|i| i.seq == seq)
            .cloned()
            .collect::<Vec<_>>()
            .as_slice(),
    );
    rendered
        .into_iter()
        .find(|i| i["id"].as_str() == Some(item_id))
        .map(|item| (seq, item))
        .ok_or_else(missing)
}

pub async fn show_item(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, item_id)): Path<(String, String)>,
) -> Result<Json<Value>, OpenAiError> {
    let found = find(&state, &principal, &id).await?;
    Ok(Json(
        item_by_id(&state, &principal, &found, &item_id).await?.1,
    ))
}

/// Takes the item out of the conversation (out of what the model sees);
/// answers the conversation, as OpenAI's API does.
pub async fn delete_item(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, item_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), OpenAiError> {
    let found = find(&state, &principal, &id).await?;
    let (seq, _) = item_by_id(&state, &principal, &found, &item_id).await?;
    state
        .store
        .remove_conversation_item(&principal.tenant, found.id(), seq)
        .await?;
    Ok((
        StatusCode::OK,
        Json(render(&find(&state, &principal, &id).await?)),
    ))
}
