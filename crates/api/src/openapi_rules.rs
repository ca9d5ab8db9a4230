//! Rules between fields that the server enforces and `utoipa`'s derives
//! cannot state, added to the generated document so a client generated
//! from it never sends what the server refuses.

use serde_json::{json, Value};

/// A model route, `provider/model` (as `roster_core::route` parses it).
pub const ROUTE_PATTERN: &str = r"^\s*[A-Za-z0-9_-]+/.*\S.*$";
/// A memory namespace (as `roster_core::record` validates it).
pub const NAMESPACE_PATTERN: &str =
    r"^(?!(.*/)?\.\.?(/|$))[A-Za-z0-9._@-]{1,100}(/[A-Za-z0-9._@-]{1,100})*$";

/// `items` of an array property, or of the array inside a nullable one.
fn set_items(property: &mut Value, items: &Value) {
    if let Some(object) = property.as_object_mut() {
        object.insert("items".into(), items.clone());
    }
}

/// The OpenAPI document served at `/openapi.json`.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(crate::router::openapi()).unwrap_or(Value::Null);
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return doc;
    };
    // A list is given whole or changed by additions and removals, not both
    // (a `null` counts as not given, as the handler reads it).
    if let Some(update) = schemas
        .get_mut("UpdateAgent")
        .and_then(Value::as_object_mut)
    {
        let both = |whole: &str, change: &str| {
            json!({ "required": [whole, change],
                    "properties": { whole: { "type": "array" }, change: { "type": "array" } } })
        };
        update.insert(
            "not".into(),
            json!({ "anyOf": [
                both("tools", "add_tools"),
                both("tools", "remove_tools"),
                both("knowledge", "add_knowledge"),
                both("knowledge", "remove_knowledge"),
            ]}),
        );
    }
    // Items of lists, which the derives leave unconstrained.
    let route = json!({ "type": "string", "pattern": ROUTE_PATTERN });
    for agent in ["CreateAgent", "UpdateAgent"] {
        if let Some(fallbacks) = schemas
            .get_mut(agent)
            .and_then(|s| s.pointer_mut("/properties/fallbacks"))
        {
            set_items(fallbacks, &route);
        }
    }
    let namespace = json!({ "type": "string", "pattern": NAMESPACE_PATTERN, "maxLength": 200 });
    if let Some(namespaces) = schemas
        .get_mut("SearchMemories")
        .and_then(|s| s.pointer_mut("/properties/namespaces"))
    {
        set_items(namespaces, &namespace);
    }
    // A budget sets at least one of its limits (DELETE removes it).
    if let Some(budget) = schemas.get_mut("SetBudget").and_then(Value::as_object_mut) {
        budget.insert(
            "anyOf".into(),
            json!([
                { "required": ["tokens_per_day"], "properties": { "tokens_per_day": { "type": "integer" } } },
                { "required": ["cost_usd_per_day"], "properties": { "cost_usd_per_day": { "type": "number" } } },
            ]),
        );
    }
    // A memory change changes something.
    if let Some(update) = schemas
        .get_mut("UpdateMemory")
        .and_then(Value::as_object_mut)
    {
        update.insert(
            "anyOf".into(),
            json!([
                { "required": ["content"], "properties": { "content": { "type": "string" } } },
                { "required": ["metadata"], "properties": { "metadata": { "not": { "type": "null" } } } },
                { "required": ["expires_at"] },
            ]),
        );
    }
    // A search names where: one namespace or a non-empty list.
    if let Some(search) = schemas
        .get_mut("SearchMemories")
        .and_then(Value::as_object_mut)
    {
        search.insert(
            "anyOf".into(),
            json!([
                { "required": ["namespace"], "properties": { "namespace": { "type": "string" } } },
                { "required": ["namespaces"], "properties": { "namespaces": { "minItems": 1 } } },
            ]),
        );
    }
    // An MCP server is one of: a catalogue entry, a command, a URL.
    if let Some(server) = schemas
        .get_mut("McpServerInput")
        .and_then(Value::as_object_mut)
    {
        let given = |field: &str| json!({ "required": [field], "properties": { field: { "type": "string" } } });
        server.insert(
            "oneOf".into(),
            json!([given("from"), given("command"), given("url")]),
        );
    }
    // A SQL source offers at least one table.
    if let Some(allow) = schemas
        .get_mut("SqlSourceInput")
        .and_then(|s| s.pointer_mut("/properties/allow"))
        .and_then(Value::as_object_mut)
    {
        allow.insert("minItems".into(), json!(1));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_field_rules_are_in_the_document() {
        let doc = document();
        let update = &doc["components"]["schemas"]["UpdateAgent"];
        assert_eq!(update["not"]["anyOf"].as_array().map(Vec::len), Some(4));
        let budget = &doc["components"]["schemas"]["SetBudget"];
        assert_eq!(budget["anyOf"].as_array().map(Vec::len), Some(2));
        let fallbacks = &doc["components"]["schemas"]["UpdateAgent"]["properties"]["fallbacks"];
        assert_eq!(fallbacks["items"]["pattern"], ROUTE_PATTERN);
        let namespaces =
            &doc["components"]["schemas"]["SearchMemories"]["properties"]["namespaces"];
        assert_eq!(namespaces["items"]["pattern"], NAMESPACE_PATTERN);
        // A changed field's values are any JSON (`context.summarize` is a
        // boolean): schemathesis found them declared as objects.
        let change = &doc["components"]["schemas"]["ConfigChange"]["properties"];
        assert!(change["from"].get("type").is_none(), "{}", change["from"]);
        assert!(change["to"].get("type").is_none(), "{}", change["to"]);
    }
}
