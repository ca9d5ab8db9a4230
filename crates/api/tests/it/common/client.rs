//! The HTTP client of the tests: requests with or without a key, whole
//! responses, SSE parsing, and shortcuts for the common steps.

use super::{eventually, TIMEOUT};
use serde_json::{json, Value};

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        &self.body
    }

    /// Asserts the status and the stable error code of the JSON error body.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.body["error"]["code"], code,
            "unexpected error code; body: {}",
            self.text
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without message: {}",
            self.text
        );
    }
}

/// One server-sent event.
#[derive(Clone, Debug)]
pub struct Sse {
    pub event: String,
    pub id: Option<i64>,
    pub data: Value,
}

pub fn parse_sse(text: &str) -> Vec<Sse> {
    let text = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut event, mut id, mut data) = (None, None, String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse::<i64>().expect("numeric SSE id"));
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if let Some(event) = event {
            let data = serde_json::from_str(&data).expect("SSE data is JSON");
            out.push(Sse { event, id, data });
        }
    }
    out
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub url: String,
    key: Option<String>,
}

impl Client {
    pub(super) fn new(http: reqwest::Client, url: String, key: Option<&str>) -> Client {
        Client {
            http,
            url,
            key: key.map(str::to_owned),
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.url));
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Resp {
        let response = tokio::time::timeout(TIMEOUT, builder.send())
            .await
            .expect("request timed out")
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = tokio::time::timeout(TIMEOUT, response.text())
            .await
            .expect("body timed out")
            .unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::PATCH, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::PUT, path).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Creates an agent from a full body; asserts 201.
    pub async fn create_agent(&self, body: Value) -> Value {
        self.post("/v1/agents", body).await.ok(201).clone()
    }

    /// Creates an agent with this name and model; returns its id.
    pub async fn agent(&self, name: &str, model: &str) -> String {
        let agent = self
            .create_agent(json!({"name": name, "model": model}))
            .await;
        agent["id"].as_str().unwrap().to_owned()
    }

    /// Creates a session of the agent; returns its id.
    pub async fn session(&self, agent: &str) -> String {
        let session = self.post("/v1/sessions", json!({"agent": agent})).await;
        session.ok(201)["id"].as_str().unwrap().to_owned()
    }

    /// An agent `name` on `openai/test-model` with one session; returns the session id.
    pub async fn agent_session(&self, name: &str) -> String {
        self.agent(name, "openai/test-model").await;
        self.session(name).await
    }

    pub async fn message(&self, session: &str, body: Value) -> Resp {
        self.post(&format!("/v1/sessions/{session}/messages"), body)
            .await
    }

    /// Posts `content` and waits for the run; asserts 200 and returns `{run, items}`.
    pub async fn say(&self, session: &str, content: &str) -> Value {
        self.message(session, json!({"content": content}))
            .await
            .ok(200)
            .clone()
    }

    /// Every item of the session, in order.
    pub async fn items(&self, session: &str) -> Vec<Value> {
        let resp = self
            .get(&format!("/v1/sessions/{session}/items?limit=1000"))
            .await;
        resp.ok(200)["data"].as_array().unwrap().clone()
    }

    /// Polls `GET /v1/runs/{id}` until the run has finished; returns it.
    pub async fn wait_run(&self, run: &str) -> Value {
        let path = format!("/v1/runs/{run}");
        eventually(|| async {
            let body = self.get(&path).await.ok(200).clone();
            let status = body["status"].as_str().unwrap_or_default();
            matches!(status, "completed" | "failed" | "cancelled").then_some(body)
        })
        .await
    }

    /// Sends a request whose answer is an SSE stream; returns the status and
    /// the events once the server ends the stream.
    pub async fn sse(&self, builder: reqwest::RequestBuilder) -> (u16, Vec<Sse>) {
        let resp = self.send(builder).await;
        if resp.status == 200 {
            let content_type = resp.headers["content-type"].to_str().unwrap();
            assert!(
                content_type.starts_with("text/event-stream"),
                "{content_type}"
            );
        }
        (resp.status, parse_sse(&resp.text))
    }

    /// The run's persisted event stream (`GET /v1/runs/{id}/events`).
    pub async fn events(&self, run: &str, last_event_id: Option<&str>) -> (u16, Vec<Sse>) {
        let mut builder = self.request(reqwest::Method::GET, &format!("/v1/runs/{run}/events"));
        if let Some(id) = last_event_id {
            builder = builder.header("last-event-id", id);
        }
        self.sse(builder).await
    }
}
