//! HTTP to remotes, only where the egress policy allows: a client per
//! destination port whose resolver keeps only allowed addresses (a
//! resolver is told the name, never the port), IP literals checked before
//! sending, no proxy, and no redirect followed — a card or endpoint that
//! moved is re-registered, never chased. Bodies are read no further than a
//! limit.

use crate::RemoteError;
use futures::StreamExt;
use roster_egress::EgressPolicy;
use std::sync::Arc;
use std::time::Duration;

/// Largest card Roster reads.
pub(crate) const MAX_CARD_BYTES: usize = 1 << 20;
/// Largest JSON-RPC answer Roster reads (a task with its history and
/// artifacts; the model sees at most the tool's output limit of it).
pub(crate) const MAX_REPLY_BYTES: usize = 8 << 20;
/// Connecting never takes longer than this, whatever the call's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for requests to `port`, resolving through the egress policy.
pub(crate) fn client(egress: &Arc<EgressPolicy>, port: u16) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(roster_egress::Resolver::new(egress.clone(), port))
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// The port a URL connects to.
pub(crate) fn port_of(url: &url::Url) -> u16 {
    url.port_or_known_default().unwrap_or(0)
}

/// A response's status and (limited) body.
pub(crate) struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What went wrong sending: a refusal of the egress policy as it is,
/// anything else with its chain of causes.
fn sending_error(e: &reqwest::Error) -> RemoteError {
    if let Some(refused) = roster_egress::find_in(e) {
        return RemoteError::Egress(refused.clone());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let said = inner.to_string();
        if !text.contains(&said) {
            text.push_str(&format!(": {said}"));
        }
        source = inner.source();
    }
    RemoteError::Transport(text)
}

/// Sends `request` with `client` (made for its URL's port) and reads the
/// answer up to `limit` bytes. A redirect is an error naming its target.
pub(crate) async fn send(
    egress: &EgressPolicy,
    client: &reqwest::Client,
    request: reqwest::Request,
    limit: usize,
) -> Result<Fetched, RemoteError> {
    // IP literals never reach the resolver: judged here.
    egress
        .check_literal(request.url())
        .map_err(RemoteError::Egress)?;
    let response = client
        .execute(request)
        .await
        .map_err(|e| sending_error(&e))?;
    let status = response.status();
    if status.is_redirection() {
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("somewhere else")
            .to_owned();
        return Err(RemoteError::Redirect(to));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| sending_error(&e))?;
        if body.len() + chunk.len() > limit {
            return Err(RemoteError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        status: status.as_u16(),
        body,
    })
}

/// The start of a body, for an error message.
pub(crate) fn excerpt(body: &[u8]) -> String {
    crate::card::clip(&String::from_utf8_lossy(body), 200)
}

/// GETs `url` and reads the answer as JSON.
pub(crate) async fn get_json(
    egress: &Arc<EgressPolicy>,
    url: &url::Url,
    headers: &reqwest::header::HeaderMap,
    limit: usize,
) -> Result<serde_json::Value, RemoteError> {
    let client = client(egress, port_of(url)).map_err(RemoteError::Transport)?;
    let request = client
        .get(url.clone())
        .headers(headers.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .build()
        .map_err(|e| RemoteError::Transport(format!("cannot build the request: {e}")))?;
    let fetched = send(egress, &client, request, limit).await?;
    if !(200..300).contains(&fetched.status) {
        return Err(RemoteError::Status {
            status: fetched.status,
            body: excerpt(&fetched.body),
        });
    }
    serde_json::from_slice(&fetched.body).map_err(|e| RemoteError::NotJson(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client resolves names through the egress policy itself and a
    /// literal walled address is refused before sending: nothing connects.
    #[tokio::test]
    async fn walled_addresses_are_refused_before_anything_connects() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let walled = Arc::new(EgressPolicy::default());
        let empty = reqwest::header::HeaderMap::new();
        for url in [
            format!("http://localhost:{port}/card.json"),
            format!("http://127.0.0.1:{port}/card.json"),
        ] {
            let url = url::Url::parse(&url).expect("url");
            let err = get_json(&walled, &url, &empty, 1024)
                .await
                .expect_err("refused");
            assert!(
                matches!(
                    err,
                    RemoteError::Egress(roster_egress::EgressError::Denied(_))
                ),
                "{url}: {err}"
            );
            assert!(err.to_string().contains("loopback"), "{err}");
        }
        assert!(listener.accept().is_err(), "nothing connected");
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt(b"oops"), "oops");
        assert_eq!(excerpt(&[b'x'; 500]).chars().count(), 201);
    }
}
