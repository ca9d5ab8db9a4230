//! One operation call: the request built from the tool's arguments (path
//! segments percent-encoded, so no argument can change the host), sent only
//! to an allowed host, redirects included, and the response read no further
//! than the size limit.

use crate::import::{BodyKind, Operation, ParameterLocation};
use crate::spec::{host_of, Auth, HttpServiceConfig};
use futures::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use roster_tool::ToolOutput;
use serde_json::Value;
use std::time::Duration;

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
const MAX_REDIRECTS: usize = 5;

/// A client that follows redirects only to the allowed hosts.
pub(crate) fn client(
    allow_hosts: &[String],
    timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    let allowed = allow_hosts.to_vec();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match host_of(attempt.url()) {
            Some(host) if allowed.contains(&host) => attempt.follow(),
            Some(host) => attempt.error(format!(
                "a redirect to `{host}` was refused: not one of this service's allowed hosts"
            )),
            None => attempt.error("a redirect to a URL without a host was refused"),
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The request the arguments describe, or what is wrong with them.
fn build(
    client: &reqwest::Client,
    config: &HttpServiceConfig,
    secret: Option<&str>,
    operation: &Operation,
    arguments: &Value,
) -> Result<reqwest::Request, String> {
    let empty = serde_json::Map::new();
    let args = match arguments {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => return Err("arguments must be a JSON object".into()),
    };
    let mut path = operation.path.clone();
    for parameter in operation
        .parameters
        .iter()
        .filter(|p| p.location == ParameterLocation::Path)
    {
        let value = args
            .get(&parameter.argument)
            .ok_or_else(|| format!("`{}` is required", parameter.argument))?;
        let encoded = utf8_percent_encode(&text_of(value), SEGMENT).to_string();
        path = path.replace(&format!("{{{}}}", parameter.name), &encoded);
    }
    let base: url::Url = config
        .base_url
        .parse()
        .map_err(|e| format!("stored base URL is invalid: {e}"))?;
    let mut url = base.clone();
    url.set_path(&format!("{}{}", base.path().trim_end_matches('/'), path));
    {
        let mut query = url.query_pairs_mut();
        for parameter in operation
            .parameters
            .iter()
            .filter(|p| p.location == ParameterLocation::Query)
        {
            match args.get(&parameter.argument) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        query.append_pair(&parameter.name, &text_of(item));
                    }
                }
                Some(value) => {
                    query.append_pair(&parameter.name, &text_of(value));
                }
            }
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    // Encoding keeps arguments out of the authority, but the host is
    // checked again here, where the request is made.
    match host_of(&url) {
        Some(host) if config.allow_hosts.contains(&host) => {}
        _ => return Err("the request's host is not one of this service's allowed hosts".into()),
    }
    let method = reqwest::Method::from_bytes(operation.method.as_bytes())
        .map_err(|e| format!("invalid method: {e}"))?;
    let mut request = client.request(method, url);
    for parameter in operation
        .parameters
        .iter()
        .filter(|p| p.location == ParameterLocation::Header)
    {
        if let Some(value) = args.get(&parameter.argument).filter(|v| !v.is_null()) {
            let value = reqwest::header::HeaderValue::from_str(&text_of(value)).map_err(|_| {
                format!("`{}` cannot be sent as a header value", parameter.argument)
            })?;
            request = request.header(parameter.name.as_str(), value);
        }
    }
    if let (Some(auth), Some(secret)) = (&config.auth, secret) {
        let (name, value) = match auth {
            Auth::Bearer => ("authorization".to_owned(), format!("Bearer {secret}")),
            Auth::ApiKey { header } => (header.clone(), secret.to_owned()),
        };
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| "the stored credential cannot be sent as a header".to_owned())?;
        value.set_sensitive(true);
        request = request.header(name, value);
    }
    if let (Some(kind), Some(body)) = (operation.body, args.get("body")) {
        request = match kind {
            BodyKind::Json => request.json(body),
            BodyKind::Text => request
                .header("content-type", "text/plain; charset=utf-8")
                .body(text_of(body)),
            BodyKind::Form => {
                let Value::Object(fields) = body else {
                    return Err("`body` must be an object of form fields".into());
                };
                let pairs: Vec<(String, String)> = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), text_of(v)))
                    .collect();
                request.form(&pairs)
            }
        };
    }
    request
        .build()
        .map_err(|e| format!("cannot build the request: {e}"))
}

fn is_textual(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media.is_empty()
        || media.starts_with("text/")
        || media.ends_with("json")
        || media.ends_with("xml")
        || media == "application/x-www-form-urlencoded"
        || media == "application/javascript"
}

/// Calls the operation; the result is what the model reads.
pub(crate) async fn call(
    client: &reqwest::Client,
    config: &HttpServiceConfig,
    secret: Option<&str>,
    operation: &Operation,
    arguments: &Value,
) -> ToolOutput {
    let request = match build(client, config, secret, operation, arguments) {
        Ok(request) => request,
        Err(why) => return ToolOutput::error(format!("`{}`: {why}", operation.id)),
    };
    let target = format!("{} {}", request.method(), request.url().path());
    let response = match client.execute(request).await {
        Ok(response) => response,
        Err(e) => {
            let why = if e.is_timeout() {
                format!("no answer within {}s", config.timeout_secs)
            } else {
                // The chain names a refused redirect or a failed connection.
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(inner) = source {
                    text.push_str(&format!(": {inner}"));
                    source = inner.source();
                }
                text
            };
            return ToolOutput::error(format!("{target} failed: {why}"));
        }
    };
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let limit = config.max_response_bytes as usize;
    let mut body = Vec::new();
    let mut total = 0usize;
    let mut stream = response.bytes_stream();
    let mut cut = false;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return ToolOutput::error(format!("{target}: the response broke off: {e}")),
        };
        total += chunk.len();
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if total > limit {
            cut = true;
            break;
        }
    }
    let mut text = format!(
        "HTTP {} {}{}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        if content_type.is_empty() {
            String::new()
        } else {
            format!(" ({content_type})")
        }
    );
    if !is_textual(&content_type) {
        text.push_str(&format!(
            "[{}{} bytes of {content_type}, not shown]",
            if cut { "more than " } else { "" },
            if cut { limit } else { body.len() }
        ));
    } else {
        let mut end = body.len();
        let shown = loop {
            match std::str::from_utf8(&body[..end]) {
                Ok(s) => break s,
                // A cut may split a character; drop its start.
                Err(e) if cut && e.error_len().is_none() => end = e.valid_up_to(),
                Err(_) => break "",
            }
        };
        if shown.is_empty() && !body.is_empty() {
            text.push_str(&format!(
                "[{} bytes that are not UTF-8 text, not shown]",
                body.len()
            ));
        } else {
            text.push_str(shown);
        }
        if cut {
            text.push_str(&format!("\n[response cut: the first {end} bytes shown]"));
        }
    }
    ToolOutput {
        text,
        is_error: !status.is_success(),
    }
}
