//! One operation call: the request built from the tool's arguments (path
//! segments percent-encoded, so no argument can change the host), sent only
//! to an allowed host at an address the egress policy allows, redirects
//! followed here hop by hop under the same checks, and the response read no
//! further than the size limit.

use crate::import::{BodyKind, Operation, ParameterLocation};
use crate::manager::Service;
use crate::spec::{host_of, Auth, HttpServiceConfig};
use futures::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use roster_egress::EgressPolicy;
use roster_tool::ToolOutput;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
const MAX_REDIRECTS: usize = 5;

/// A client for requests to `port`: it follows no redirect itself (each
/// hop is checked in [`send`]), uses no proxy, and resolves names through
/// the egress policy, keeping only addresses allowed at that port.
pub(crate) fn client(
    egress: &Arc<EgressPolicy>,
    port: u16,
    timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(roster_egress::Resolver::new(egress.clone(), port))
        .no_proxy()
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
    // Dots are unreserved, so `.` or `..` as an argument would survive
    // encoding and the URL parser would climb out of the operation's path.
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(
            "a path argument may not be `.` or `..` (it would leave the operation's path)".into(),
        );
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

/// What went wrong sending, for the model: a refusal of the egress policy
/// as it is, anything else with its chain of causes.
fn describe(e: &reqwest::Error, timeout_secs: u64) -> String {
    if let Some(refused) = roster_egress::find_in(e) {
        return format!("refused: {refused}");
    }
    if e.is_timeout() {
        return format!("no answer within {timeout_secs}s");
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// Sends the request, following redirects hop by hop: each target must be
/// on the service's host list, pass the egress policy (literal addresses
/// here, names in the port's client's resolver), and the credential stays
/// behind when the origin changes.
async fn send(
    service: &Service,
    mut request: reqwest::Request,
    credential: Option<&str>,
) -> Result<reqwest::Response, String> {
    use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, LOCATION};
    use reqwest::StatusCode;
    let config = &service.config;
    let origin = request.url().origin();
    for hop in 0..=MAX_REDIRECTS {
        let url = request.url().clone();
        service
            .egress
            .check_literal(&url)
            .map_err(|e| format!("refused: {e}"))?;
        let port = url.port_or_known_default().unwrap_or(0);
        let client = service.client(port)?;
        let replay = request.try_clone();
        let method = request.method().clone();
        let headers = request.headers().clone();
        let response = client
            .execute(request)
            .await
            .map_err(|e| describe(&e, config.timeout_secs))?;
        let status = response.status();
        let follows = matches!(
            status,
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        );
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let (true, Some(location)) = (follows, location) else {
            return Ok(response);
        };
        if hop == MAX_REDIRECTS {
            return Err(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let next = url
            .join(&location)
            .map_err(|e| format!("a redirect to `{location}` is not a URL: {e}"))?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(format!(
                "a redirect to `{next}` was refused: not http or https"
            ));
        }
        match host_of(&next) {
            Some(host) if config.allow_hosts.contains(&host) => {}
            Some(host) => {
                return Err(format!(
                    "a redirect to `{host}` was refused: not one of this service's allowed hosts"
                ))
            }
            None => return Err("a redirect to a URL without a host was refused".into()),
        }
        let keeps_body = status == StatusCode::TEMPORARY_REDIRECT
            || status == StatusCode::PERMANENT_REDIRECT
            || (status != StatusCode::SEE_OTHER && method != reqwest::Method::POST);
        let mut following = match (keeps_body, replay) {
            (true, Some(replay)) => replay,
            (true, None) => {
                return Err(
                    "the redirect needs the request body again, which cannot be repeated".into(),
                )
            }
            // 303, and 301/302 after a POST: the next request is a GET
            // without the body.
            (false, _) => {
                let head = method == reqwest::Method::HEAD;
                let method = if head {
                    reqwest::Method::HEAD
                } else {
                    reqwest::Method::GET
                };
                let mut fresh = reqwest::Request::new(method, next.clone());
                *fresh.headers_mut() = headers;
                fresh.headers_mut().remove(CONTENT_TYPE);
                fresh.headers_mut().remove(CONTENT_LENGTH);
                fresh
            }
        };
        if next.origin() != origin {
            let headers = following.headers_mut();
            headers.remove(AUTHORIZATION);
            headers.remove(COOKIE);
            if let Some(name) = credential {
                headers.remove(name);
            }
        }
        *following.url_mut() = next;
        request = following;
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// Calls the operation; the result is what the model reads.
pub(crate) async fn call(
    service: &Service,
    operation: &Operation,
    arguments: &Value,
) -> ToolOutput {
    let config = &service.config;
    let base_port = url::Url::parse(&config.base_url)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(0);
    let built = service.client(base_port).and_then(|client| {
        build(
            &client,
            config,
            service.secret.as_deref(),
            operation,
            arguments,
        )
    });
    let request = match built {
        Ok(request) => request,
        Err(why) => return ToolOutput::error(format!("`{}`: {why}", operation.id)),
    };
    let target = format!("{} {}", request.method(), request.url().path());
    let credential = match &config.auth {
        Some(Auth::ApiKey { header }) => Some(header.as_str()),
        _ => None,
    };
    let response = match send(service, request, credential).await {
        Ok(response) => response,
        Err(why) => return ToolOutput::error(format!("{target} failed: {why}")),
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
