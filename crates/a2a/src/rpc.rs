//! JSON-RPC 2.0 over HTTP POST to a remote's endpoint: the method names of
//! each dialect, the `A2A-Version` header (an empty one means 0.3, so 1.0
//! requests always carry `1.0`), and the answer read as its `result` or its
//! `error` — whatever the HTTP status, since servers answer JSON-RPC
//! errors with 200 and with 4xx/5xx alike.

use crate::card::Protocol;
use crate::http::{excerpt, send, MAX_REPLY_BYTES};
use crate::RemoteError;
use roster_egress::EgressPolicy;
use serde_json::{json, Value};

/// The operations Roster calls.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Method {
    SendMessage,
    GetTask,
}

impl Method {
    pub(crate) fn name(self, protocol: Protocol) -> &'static str {
        match (self, protocol) {
            (Method::SendMessage, Protocol::V1) => "SendMessage",
            (Method::SendMessage, Protocol::V0) => "message/send",
            (Method::GetTask, Protocol::V1) => "GetTask",
            (Method::GetTask, Protocol::V0) => "tasks/get",
        }
    }
}

/// Where and how to call.
pub(crate) struct Endpoint<'a> {
    pub egress: &'a EgressPolicy,
    /// Made for the endpoint's port.
    pub client: &'a reqwest::Client,
    pub url: &'a url::Url,
    pub protocol: Protocol,
    /// The registration's credentials.
    pub headers: &'a reqwest::header::HeaderMap,
}

/// The version header's value for a dialect (a2a-python sends `0.3` from
/// its compat transport, `1.0` otherwise).
fn version(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::V1 => "1.0",
        Protocol::V0 => "0.3",
    }
}

/// Reads a JSON-RPC answer: its `result`, or its `error` as
/// [`RemoteError::Rpc`].
pub(crate) fn read_answer(status: u16, body: &[u8]) -> Result<Value, RemoteError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    if let Ok(Value::Object(object)) = &parsed {
        if let Some(error) = object.get("error").filter(|e| e.is_object()) {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map(|m| crate::card::clip(m, 500))
                .unwrap_or_default();
            return Err(RemoteError::Rpc { code, message });
        }
    }
    if !(200..300).contains(&status) {
        return Err(RemoteError::Status {
            status,
            body: excerpt(body),
        });
    }
    match parsed {
        Ok(Value::Object(mut object)) => object.remove("result").ok_or_else(|| {
            RemoteError::InvalidResponse("it has neither `result` nor `error`".into())
        }),
        Ok(_) => Err(RemoteError::InvalidResponse(
            "it is not a JSON-RPC response object".into(),
        )),
        Err(e) => Err(RemoteError::NotJson(e.to_string())),
    }
}

/// Calls `method` with `params`; the caller bounds it in time (dropping
/// the future cancels the request).
pub(crate) async fn call(
    endpoint: &Endpoint<'_>,
    method: Method,
    params: Value,
) -> Result<Value, RemoteError> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": uuid::Uuid::now_v7().to_string(),
        "method": method.name(endpoint.protocol),
        "params": params,
    });
    let request = endpoint
        .client
        .post(endpoint.url.clone())
        .headers(endpoint.headers.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .header("A2A-Version", version(endpoint.protocol))
        .json(&body)
        .build()
        .map_err(|e| RemoteError::Transport(format!("cannot build the request: {e}")))?;
    let fetched = send(endpoint.egress, endpoint.client, request, MAX_REPLY_BYTES).await?;
    read_answer(fetched.status, &fetched.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_has_its_method_names() {
        assert_eq!(Method::SendMessage.name(Protocol::V1), "SendMessage");
        assert_eq!(Method::SendMessage.name(Protocol::V0), "message/send");
        assert_eq!(Method::GetTask.name(Protocol::V1), "GetTask");
        assert_eq!(Method::GetTask.name(Protocol::V0), "tasks/get");
    }

    #[test]
    fn answers_read_as_result_or_error_whatever_the_status() {
        assert_eq!(
            read_answer(200, br#"{"jsonrpc":"2.0","id":"1","result":{"ok":1}}"#).expect("result"),
            json!({"ok": 1})
        );
        // The a2a-sdk server's answer to a task it does not know.
        let err = read_answer(
            200,
            br#"{"error":{"code":-32001,"message":"Task nonexist not found","data":[{"reason":"TASK_NOT_FOUND"}]},"id":"1","jsonrpc":"2.0"}"#,
        )
        .expect_err("error");
        assert_eq!(err.rpc_code(), Some(-32001));
        assert_eq!(
            err.to_string(),
            "task not found (-32001): Task nonexist not found"
        );
        let err = read_answer(
            400,
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}"#,
        )
        .expect_err("error");
        assert_eq!(err.rpc_code(), Some(-32600));
        let err = read_answer(401, br#"{"error":"unauthorized"}"#).expect_err("status");
        assert!(err.unauthorized(), "{err}");
        let err = read_answer(502, b"<html>bad gateway</html>").expect_err("status");
        assert_eq!(err.to_string(), "HTTP 502: <html>bad gateway</html>");
        assert!(matches!(
            read_answer(200, b"not json").expect_err("json"),
            RemoteError::NotJson(_)
        ));
        assert!(matches!(
            read_answer(200, b"[1]").expect_err("object"),
            RemoteError::InvalidResponse(_)
        ));
        assert!(matches!(
            read_answer(200, br#"{"jsonrpc":"2.0","id":"1"}"#).expect_err("no result"),
            RemoteError::InvalidResponse(_)
        ));
    }
}
