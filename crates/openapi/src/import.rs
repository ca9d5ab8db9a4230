//! Importing an OpenAPI 3.0 or 3.1 document: every operation becomes an
//! [`Operation`] with the JSON Schema of its arguments (path, query and
//! header parameters, and the request body as `body`), `$ref`s inlined.
//!
//! Written on `serde_json::Value` rather than a typed OpenAPI model: the
//! typed crates cover 3.0 only, and a tool needs only the operations, their
//! parameters and schemas, which this reads from both versions.

use crate::HttpError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// How deep `$ref`s are followed inside one schema; deeper (or recursive)
/// references become an open schema with a note.
const MAX_REF_DEPTH: usize = 8;
/// Largest argument schema of one operation, as JSON text.
const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Longest operation description kept for the model.
const MAX_DESCRIPTION: usize = 1_500;
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParameterLocation {
    Path,
    Query,
    Header,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Parameter {
    /// The name on the wire.
    pub name: String,
    /// The tool argument carrying it (the name, unless two clash).
    pub argument: String,
    #[serde(rename = "in")]
    pub location: ParameterLocation,
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    Json,
    Form,
    Text,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operation {
    /// The operationId, or `METHOD_PATH` when the document gives none.
    pub id: String,
    /// Upper case: `GET`, `POST`, …
    pub method: String,
    /// The path template, e.g. `/pets/{petId}`.
    pub path: String,
    /// What the model reads about it.
    pub description: String,
    pub parameters: Vec<Parameter>,
    #[serde(default)]
    pub body: Option<BodyKind>,
    /// JSON Schema of the tool's arguments.
    #[schema(value_type = Object)]
    pub input_schema: Value,
}

impl Operation {
    /// GET, HEAD, OPTIONS, PUT and DELETE may be repeated without changing
    /// the outcome (HTTP's own definition).
    pub fn idempotent(&self) -> bool {
        matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE"
        )
    }
}

#[derive(Clone, Debug)]
pub struct Imported {
    pub title: String,
    pub version: String,
    /// The document's server URLs, in order.
    pub servers: Vec<String>,
    pub operations: Vec<Operation>,
    /// Operations left out, and why.
    pub skipped: Vec<String>,
}

fn invalid(at: &str, why: impl std::fmt::Display) -> HttpError {
    HttpError::Invalid(format!("OpenAPI document, at {at}: {why}"))
}

/// The document as JSON, whether given as an object or as JSON/YAML text.
fn parse_document(spec: &Value) -> Result<Value, HttpError> {
    match spec {
        Value::Object(_) => Ok(spec.clone()),
        Value::String(text) => {
            if let Ok(value) = serde_json::from_str::<Value>(text) {
                return Ok(value);
            }
            serde_yaml_ng::from_str::<Value>(text).map_err(|e| {
                HttpError::Invalid(format!(
                    "the OpenAPI document is neither JSON nor YAML: {e}"
                ))
            })
        }
        _ => Err(HttpError::Invalid(
            "spec must be the OpenAPI document, as an object or as JSON/YAML text".into(),
        )),
    }
}

/// Follows a local `$ref` (`#/components/…`) to what it names.
fn follow<'a>(root: &'a Value, reference: &str, at: &str) -> Result<&'a Value, HttpError> {
    let pointer = reference.strip_prefix('#').ok_or_else(|| {
        invalid(
            at,
            format!("`$ref: {reference}` points outside the document, which is not supported"),
        )
    })?;
    let pointer = percent_encoding::percent_decode_str(pointer).decode_utf8_lossy();
    root.pointer(&pointer)
        .ok_or_else(|| invalid(at, format!("`$ref: {reference}` does not resolve")))
}

/// A parameter, request body or response object, with a top-level `$ref`
/// followed (chains included).
fn deref<'a>(root: &'a Value, mut value: &'a Value, at: &str) -> Result<&'a Value, HttpError> {
    for _ in 0..MAX_REF_DEPTH {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => value = follow(root, reference, at)?,
            None => return Ok(value),
        }
    }
    Err(invalid(at, "`$ref`s nest too deeply"))
}

/// A schema with every `$ref` inlined and OpenAPI 3.0's `nullable` turned
/// into JSON Schema; recursion stops with an open schema.
fn inline(
    root: &Value,
    schema: &Value,
    at: &str,
    stack: &mut Vec<String>,
) -> Result<Value, HttpError> {
    match schema {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                if stack.iter().any(|r| r == reference) || stack.len() >= MAX_REF_DEPTH {
                    let name = reference.rsplit('/').next().unwrap_or(reference);
                    return Ok(
                        json!({"description": format!("a {name} (nested; see its fields above)")}),
                    );
                }
                let target = follow(root, reference, at)?;
                stack.push(reference.to_owned());
                let mut resolved = inline(root, target, at, stack)?;
                stack.pop();
                // 3.1 allows keywords beside `$ref`; they refine the target.
                if let Value::Object(resolved_map) = &mut resolved {
                    for (key, value) in map {
                        if key != "$ref" {
                            resolved_map.insert(key.clone(), inline(root, value, at, stack)?);
                        }
                    }
                }
                return Ok(resolved);
            }
            let mut out = Map::new();
            for (key, value) in map {
                match key.as_str() {
                    // OpenAPI annotations that are not JSON Schema.
                    "discriminator" | "xml" | "externalDocs" | "example" | "nullable" => {}
                    // Names of properties, not schemas: copy their schemas.
                    "properties" | "patternProperties" | "$defs" | "definitions" => {
                        let mut inner = Map::new();
                        if let Value::Object(props) = value {
                            for (name, sub) in props {
                                inner.insert(name.clone(), inline(root, sub, at, stack)?);
                            }
                        }
                        out.insert(key.clone(), Value::Object(inner));
                    }
                    _ => {
                        out.insert(key.clone(), inline(root, value, at, stack)?);
                    }
                }
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                match out.get("type").cloned() {
                    Some(Value::String(t)) => {
                        out.insert("type".into(), json!([t, "null"]));
                    }
                    Some(Value::Array(mut types)) if !types.contains(&json!("null")) => {
                        types.push(json!("null"));
                        out.insert("type".into(), Value::Array(types));
                    }
                    _ => {}
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| inline(root, item, at, stack))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out.trim_matches('_').to_owned()
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The schema of a parameter: its `schema`, or the one of its `content`.
fn parameter_schema(parameter: &Value) -> Value {
    if let Some(schema) = parameter.get("schema") {
        return schema.clone();
    }
    parameter
        .get("content")
        .and_then(Value::as_object)
        .and_then(|c| c.values().next())
        .and_then(|m| m.get("schema"))
        .cloned()
        .unwrap_or_else(|| json!({}))
}

struct Arguments {
    properties: Map<String, Value>,
    required: Vec<String>,
    parameters: Vec<Parameter>,
}

fn add_parameters(
    root: &Value,
    list: Option<&Value>,
    at: &str,
    seen: &mut Vec<(String, String, Value)>,
) -> Result<(), HttpError> {
    let Some(list) = list else {
        return Ok(());
    };
    let items = list
        .as_array()
        .ok_or_else(|| invalid(at, "`parameters` is not a list"))?;
    for (i, item) in items.iter().enumerate() {
        let here = format!("{at}.parameters[{i}]");
        let parameter = deref(root, item, &here)?;
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&here, "a parameter has no `name`"))?;
        let location = parameter
            .get("in")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&here, format!("parameter `{name}` has no `in`")))?;
        // Operation-level parameters replace path-level ones of the same name and place.
        seen.retain(|(n, l, _)| !(n == name && l == location));
        seen.push((name.to_owned(), location.to_owned(), parameter.clone()));
    }
    Ok(())
}

fn arguments(
    root: &Value,
    parameters: &[(String, String, Value)],
    at: &str,
) -> Result<Arguments, HttpError> {
    let mut out = Arguments {
        properties: Map::new(),
        required: Vec::new(),
        parameters: Vec::new(),
    };
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (name, location, parameter) in parameters {
        let location = match location.as_str() {
            "path" => ParameterLocation::Path,
            "query" => ParameterLocation::Query,
            "header" => {
                // The spec says these three are ignored as parameters.
                if ["accept", "content-type", "authorization"]
                    .contains(&name.to_ascii_lowercase().as_str())
                {
                    continue;
                }
                ParameterLocation::Header
            }
            // Cookies are not sent by Roster; an optional one is dropped.
            "cookie" => {
                if parameter.get("required") == Some(&Value::Bool(true)) {
                    return Err(invalid(
                        at,
                        format!("required cookie parameter `{name}` is not supported"),
                    ));
                }
                continue;
            }
            other => {
                return Err(invalid(
                    at,
                    format!("parameter `{name}` is `in: {other}`, which OpenAPI does not define"),
                ))
            }
        };
        let required = location == ParameterLocation::Path
            || parameter.get("required") == Some(&Value::Bool(true));
        let mut argument = name.clone();
        if names.contains(&argument) || argument == "body" {
            argument = format!("{}_{name}", format!("{location:?}").to_ascii_lowercase());
        }
        names.insert(argument.clone());
        let mut schema = inline(root, &parameter_schema(parameter), at, &mut Vec::new())?;
        if let (Some(description), Value::Object(map)) = (
            parameter.get("description").and_then(Value::as_str),
            &mut schema,
        ) {
            map.entry("description")
                .or_insert_with(|| json!(cut(description, 500)));
        }
        out.properties.insert(argument.clone(), schema);
        if required {
            out.required.push(argument.clone());
        }
        out.parameters.push(Parameter {
            name: name.clone(),
            argument,
            location,
            required,
        });
    }
    Ok(out)
}

/// What an operation's request body is.
enum BodyChoice {
    Absent,
    Sent {
        kind: BodyKind,
        schema: Value,
        required: bool,
    },
    /// A body Roster does not send; the operation is left out, saying why.
    Unsupported(String),
}

fn request_body(root: &Value, operation: &Value, at: &str) -> Result<BodyChoice, HttpError> {
    let Some(body) = operation.get("requestBody") else {
        return Ok(BodyChoice::Absent);
    };
    let body = deref(root, body, &format!("{at}.requestBody"))?;
    let required = body.get("required") == Some(&Value::Bool(true));
    let content = body.get("content").and_then(Value::as_object);
    let Some(content) = content else {
        return Ok(BodyChoice::Absent);
    };
    let pick = |wanted: &dyn Fn(&str) -> bool| {
        content
            .iter()
            .find(|(media, _)| wanted(&media.to_ascii_lowercase()))
            .map(|(_, m)| m.get("schema").cloned().unwrap_or_else(|| json!({})))
    };
    let chosen = if let Some(schema) = pick(&|m| {
        m == "application/json" || m.ends_with("+json") || m.starts_with("application/json")
    }) {
        (BodyKind::Json, schema)
    } else if let Some(schema) = pick(&|m| m == "application/x-www-form-urlencoded") {
        (BodyKind::Form, schema)
    } else if let Some(schema) = pick(&|m| m.starts_with("text/")) {
        (BodyKind::Text, schema)
    } else {
        let kinds: Vec<&str> = content.keys().map(String::as_str).collect();
        return Ok(BodyChoice::Unsupported(format!(
            "its request body is {} (only JSON, form and text bodies are sent)",
            kinds.join(", ")
        )));
    };
    let mut schema = inline(
        root,
        &chosen.1,
        &format!("{at}.requestBody"),
        &mut Vec::new(),
    )?;
    if let (Some(description), Value::Object(map)) =
        (body.get("description").and_then(Value::as_str), &mut schema)
    {
        map.entry("description")
            .or_insert_with(|| json!(cut(description, 500)));
    }
    if chosen.0 == BodyKind::Text {
        schema = json!({"type": "string", "description": schema.get("description").cloned().unwrap_or(json!("The request body, as text."))});
    }
    Ok(BodyChoice::Sent {
        kind: chosen.0,
        schema,
        required,
    })
}

/// Reads the document; refuses it, saying where, when it is not a usable
/// OpenAPI 3 document.
pub fn import(spec: &Value) -> Result<Imported, HttpError> {
    let root = parse_document(spec)?;
    if root.get("swagger").is_some() {
        return Err(HttpError::Invalid(
            "this is a Swagger 2.0 document; convert it to OpenAPI 3 (e.g. with swagger2openapi) first".into(),
        ));
    }
    let version = root.get("openapi").and_then(Value::as_str).ok_or_else(|| {
        HttpError::Invalid("not an OpenAPI document: no `openapi` version field".into())
    })?;
    if !(version.starts_with("3.0") || version.starts_with("3.1")) {
        return Err(HttpError::Invalid(format!(
            "OpenAPI {version} is not supported; 3.0 and 3.1 are"
        )));
    }
    let info = root.get("info");
    let title = info
        .and_then(|i| i.get("title"))
        .and_then(Value::as_str)
        .unwrap_or("untitled")
        .to_owned();
    let api_version = info
        .and_then(|i| i.get("version"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let servers = root
        .get("servers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|s| s.get("url").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let paths = root
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| HttpError::Invalid("the document has no `paths` object".into()))?;
    let mut operations = Vec::new();
    let mut skipped = Vec::new();
    let mut ids = BTreeSet::new();
    for (path, item) in paths {
        let at_path = format!("paths.{path}");
        if !path.starts_with('/') {
            return Err(invalid(&at_path, "paths start with `/`"));
        }
        let item = deref(&root, item, &at_path)?;
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let at = format!("{at_path}.{method}");
            let id = match operation.get("operationId").and_then(Value::as_str) {
                Some(id) if !id.trim().is_empty() => id.to_owned(),
                _ => sanitize(&format!("{method}_{path}")),
            };
            if !ids.insert(id.clone()) {
                return Err(invalid(&at, format!("operationId `{id}` is used twice")));
            }
            let mut parameters = Vec::new();
            add_parameters(&root, item.get("parameters"), &at_path, &mut parameters)?;
            add_parameters(&root, operation.get("parameters"), &at, &mut parameters)?;
            let mut args = arguments(&root, &parameters, &at)?;
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if !args
                        .parameters
                        .iter()
                        .any(|p| p.location == ParameterLocation::Path && p.name == name)
                    {
                        return Err(invalid(
                            &at,
                            format!("path parameter `{name}` is not declared"),
                        ));
                    }
                }
            }
            let kind = match request_body(&root, operation, &at)? {
                BodyChoice::Absent => None,
                BodyChoice::Sent {
                    kind,
                    schema,
                    required,
                } => {
                    args.properties.insert("body".into(), schema);
                    if required {
                        args.required.push("body".into());
                    }
                    Some(kind)
                }
                BodyChoice::Unsupported(why) => {
                    skipped.push(format!("{id}: {why}"));
                    continue;
                }
            };
            let input_schema = json!({
                "type": "object",
                "properties": args.properties,
                "required": args.required,
                "additionalProperties": false,
            });
            if input_schema.to_string().len() > MAX_SCHEMA_BYTES {
                skipped.push(format!(
                    "{id}: its argument schema is larger than {MAX_SCHEMA_BYTES} bytes"
                ));
                continue;
            }
            let summary = operation
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or("");
            let detail = operation
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            let mut description = [summary.trim(), detail.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n");
            description = cut(&description, MAX_DESCRIPTION);
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&format!("{} {path}", method.to_ascii_uppercase()));
            if operation.get("deprecated") == Some(&Value::Bool(true)) {
                description.push_str(" (deprecated)");
            }
            operations.push(Operation {
                id,
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                description,
                parameters: args.parameters,
                body: kind,
                input_schema,
            });
        }
    }
    if operations.is_empty() {
        return Err(HttpError::Invalid(if skipped.is_empty() {
            "the document has no operations".into()
        } else {
            format!(
                "no operation of the document can be called: {}",
                skipped.join("; ")
            )
        }));
    }
    Ok(Imported {
        title,
        version: api_version,
        servers,
        operations,
        skipped,
    })
}
