//! The `Origin` check the MCP transport asks for (an invalid one: 403).
//!
//! What the check is for is a web page the user visits driving the
//! endpoint from their browser. Roster's answer is the bearer key: it is
//! never sent by a browser on its own (no cookies, no ambient
//! credentials), and a page cannot set the `Authorization` header on a
//! cross-origin request without a CORS grant, which Roster does not give.
//! So the `Host` allow-list rmcp applies by default (loopback only, against
//! DNS rebinding) is turned off in `endpoint.rs`: it would refuse every
//! deployment behind a real hostname, and a rebinding page has no key.
//! What remains is this check: a request that carries an `Origin` must
//! come from Roster's own origin (its host and port, as the request's
//! `Host` names them); MCP clients outside browsers send none.

use axum::extract::Request;
use axum::http::{header, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use roster_api::codes::Code;
use roster_api::ApiError;

pub(crate) async fn check(req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return next.run(req).await;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        // HTTP/2 carries the host in the URI (`:authority`).
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    let same = origin
        .to_str()
        .is_ok_and(|origin| same_origin(origin, host.as_deref()));
    if same {
        return next.run(req).await;
    }
    ApiError::new(
        Code::Forbidden,
        "the Origin header names another site; the MCP endpoint serves only its own origin and clients outside browsers",
    )
    .into_response()
}

/// Whether `origin` (`scheme://host[:port]`) is the origin whose host and
/// port `host` (a `Host` header) names. The scheme is not compared: behind
/// a proxy that ends TLS the server cannot know it; a port left out is the
/// origin scheme's default on both sides.
pub(crate) fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Ok(uri) = origin.trim().parse::<Uri>() else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    // An origin is a scheme and an authority, nothing more.
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() || authority.as_str().contains('@')
    {
        return false;
    }
    let Ok(requested) = host.trim().parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => return false,
    };
    authority.host().eq_ignore_ascii_case(requested.host())
        && authority.port_u16().or(default) == requested.port_u16().or(default)
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn the_servers_own_origin_passes() {
        let cases = [
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("https://roster.example.com", "roster.example.com"),
            ("https://Roster.Example.com", "roster.example.com:443"),
            ("http://roster.example.com:80", "roster.example.com"),
            // TLS ended by a proxy: the server sees plain HTTP.
            ("https://roster.example.com", "ROSTER.example.com"),
            ("http://[::1]:8080", "[::1]:8080"),
        ];
        for (origin, host) in cases {
            assert!(same_origin(origin, Some(host)), "{origin} at {host}");
        }
    }

    #[test]
    fn other_sites_and_odd_origins_are_refused() {
        let cases = [
            ("http://evil.example", Some("roster.example.com")),
            ("http://127.0.0.1:9999", Some("127.0.0.1:8080")),
            ("http://localhost:8080", Some("127.0.0.1:8080")),
            (
                "https://roster.example.com:8443",
                Some("roster.example.com"),
            ),
            ("null", Some("roster.example.com")),
            ("", Some("roster.example.com")),
            ("roster.example.com", Some("roster.example.com")),
            ("ftp://roster.example.com", Some("roster.example.com")),
            ("http://roster.example.com/path", Some("roster.example.com")),
            ("http://user@roster.example.com", Some("roster.example.com")),
            ("http://roster.example.com", None),
            ("http://roster.example.com", Some("bad host/")),
        ];
        for (origin, host) in cases {
            assert!(!same_origin(origin, host), "{origin} at {host:?}");
        }
    }
}
