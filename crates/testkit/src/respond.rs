//! Turning a rendered answer into an HTTP response, including the broken
//! deliveries: a body cut half way followed by an abrupt connection close.

use std::time::Duration;

use axum::body::Body as HttpBody;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use crate::wire::{Body, Rendered};

/// Builds the response. With `cut`, only about the first half of the body
/// (or of the SSE events) is sent, then the body fails, which makes the
/// server drop the connection without finishing the message.
pub(crate) fn to_response(rendered: Rendered, cut: bool) -> Response {
    let (content_type, body) = match rendered.body {
        Body::Whole {
            content_type,
            bytes,
        } => {
            let body = if cut {
                let half = bytes[..bytes.len() / 2].to_vec();
                HttpBody::from_stream(body_stream(vec![half], true))
            } else {
                HttpBody::from(bytes)
            };
            (content_type, body)
        }
        Body::Events(events) => {
            let keep = if cut {
                (events.len() / 2)
                    .max(1)
                    .min(events.len().saturating_sub(1))
            } else {
                events.len()
            };
            let chunks = events
                .into_iter()
                .take(keep)
                .map(String::into_bytes)
                .collect();
            let body = HttpBody::from_stream(body_stream(chunks, cut));
            ("text/event-stream".to_owned(), body)
        }
    };
    let is_stream = content_type == "text/event-stream";
    let status = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(axum::http::header::CONTENT_TYPE, value);
    }
    if is_stream {
        headers.insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
    }
    for (name, value) in rendered.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

/// Streams the chunks one by one, letting the server flush each, and ends
/// with an error when the delivery is cut.
fn body_stream(
    chunks: Vec<Vec<u8>>,
    cut: bool,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    async_stream::stream! {
        for chunk in chunks {
            yield Ok(Bytes::from(chunk));
            // Give the connection a chance to write this chunk on its own.
            tokio::task::yield_now().await;
        }
        if cut {
            // Let what was sent reach the client before the connection dies.
            tokio::time::sleep(Duration::from_millis(50)).await;
            yield Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "fake model server: reply cut on purpose",
            ));
        }
    }
}
