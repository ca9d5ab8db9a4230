//! Extractors whose rejections speak the API's error format.

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// `axum::Json`, but malformed or oversize bodies get our error body.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|e| json_rejection(JsonRejection::BytesRejection(e)))?;
        // Every body this API takes is an object; serde would also read a
        // struct from an array of its fields in order (`[null, null]`).
        if is_array(&bytes) {
            return Err(ApiError::invalid(
                "invalid request body: expected a JSON object, not an array",
            ));
        }
        let parse = |bytes: axum::body::Bytes| {
            let req = Request::from_parts(parts.clone(), axum::body::Body::from(bytes));
            axum::Json::<T>::from_request(req, state)
        };
        let data_error = match parse(bytes.clone()).await {
            Ok(axum::Json(value)) => return Ok(Json(value)),
            // JSON Schema counts `1.0` as an integer, and so do clients
            // generated from the OpenAPI document; serde does not.
            Err(JsonRejection::JsonDataError(e))
                if e.body_text().contains("invalid type: floating point") =>
            {
                e
            }
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        if let Some(normalized) = integral_floats_as_integers(&bytes) {
            if let Ok(axum::Json(value)) = parse(normalized).await {
                return Ok(Json(value));
            }
        }
        Err(json_rejection(JsonRejection::JsonDataError(data_error)))
    }
}

/// Whether the body is a JSON array (its first non-blank byte is `[`).
fn is_array(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[')
}

/// The body with every number that is a whole float (`3.0`) written as an
/// integer (`3`), or `None` when it has none (or is not JSON).
fn integral_floats_as_integers(bytes: &[u8]) -> Option<axum::body::Bytes> {
    fn walk(value: &mut serde_json::Value, changed: &mut bool) {
        match value {
            serde_json::Value::Number(n) => {
                if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                    // Within ±2^53 a float holds its integer exactly.
                    if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                        #[allow(clippy::cast_possible_truncation)]
                        let whole = f as i64;
                        *value = serde_json::Value::from(whole);
                        *changed = true;
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, changed)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| walk(v, changed)),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut changed = false;
    walk(&mut value, &mut changed);
    if !changed {
        return None;
    }
    serde_json::to_vec(&value).ok().map(Into::into)
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::invalid(format!(
            "invalid request body: {}",
            roster_core::plain::plain_serde_error(&e.body_text())
        )),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            crate::codes::Code::MalformedJson,
            format!("request body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            crate::codes::Code::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                crate::codes::Code::PayloadTooLarge,
                "request body is too large",
            )
        }
        other => ApiError::invalid(other.body_text()),
    }
}

/// `axum::extract::Query` with our error body.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::invalid(format!(
                    "invalid query string: {}",
                    roster_core::plain::plain_serde_error(&e.body_text())
                ))
            })
    }
}

/// `axum::extract::Path` with our error body. A path segment that cannot be
/// decoded (say, percent-encoded bytes that are not UTF-8) cannot name
/// anything, so it is answered like any other unknown id: `not_found`.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::not_found("resource"))
            }
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_is_not_a_body() {
        assert!(is_array(b"[null, null]"));
        assert!(is_array(b" \n\t[1]"));
        assert!(!is_array(br#"{"runs": [1]}"#));
        assert!(!is_array(b""));
    }

    #[test]
    fn whole_floats_become_integers_and_nothing_else_changes() {
        let out = integral_floats_as_integers(br#"{"limit": 5.0, "x": [1.5, 2.0], "s": "3.0"}"#)
            .expect("changed");
        let value: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"limit": 5, "x": [1.5, 2], "s": "3.0"})
        );
        assert!(integral_floats_as_integers(br#"{"limit": 5}"#).is_none());
        assert!(integral_floats_as_integers(br#"{"limit": 1e300}"#).is_none());
        assert!(integral_floats_as_integers(b"not json").is_none());
    }
}
