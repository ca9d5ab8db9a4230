//! The fake model server itself: binding, routing, the FIFO queue of scripted
//! replies shared by both protocols, and the record of every request.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use crate::embeddings::{self, EmbeddingState};
use crate::reply::Reply;
use crate::respond::to_response;
use crate::wire::{Rendered, RequestInfo};
use crate::{anthropic, openai, NO_REPLY_LEFT};

/// Which wire protocol a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI Chat Completions, `POST /v1/chat/completions`.
    OpenAi,
    /// Anthropic Messages, `POST /v1/messages`.
    Anthropic,
}

/// One request the server received, recorded before it was answered.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub protocol: Protocol,
    /// The request path, without the query string.
    pub path: String,
    /// Header names are lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The JSON body, or `Value::Null` when it did not parse.
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    queue: Mutex<VecDeque<Reply>>,
    /// Answers a request the queue has no reply for (many concurrent
    /// sessions whose replies depend on what each asked).
    responder: Mutex<Option<ResponderFn>>,
    requests: Mutex<Vec<RecordedRequest>>,
    seq: AtomicU64,
    /// While set, every chat request is answered with this status.
    pub(crate) outage_status: Mutex<Option<u16>>,
    /// Chat requests answered with the outage status.
    pub(crate) outage_answers: AtomicU64,
    /// Kept apart so that embedding calls never touch the chat queue/record.
    embeddings: EmbeddingState,
}

/// A running fake model server. Cloning gives another handle to the same
/// server; it stops accepting connections when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct FakeModelServer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) addr: SocketAddr,
    pub(crate) listener: Arc<crate::outage::Listening>,
}

type Responder = Box<dyn Fn(&Value) -> Reply + Send + Sync>;

/// The responder, shown by `Debug` as a name only.
pub(crate) struct ResponderFn(Responder);

impl std::fmt::Debug for ResponderFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponderFn")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeModelServer {
    /// Binds `127.0.0.1:0` and serves in a background tokio task.
    pub async fn start() -> FakeModelServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake model server: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("fake model server: bound socket has no local address");
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/v1/chat/completions", post(openai_handler))
            .route("/v1/messages", post(anthropic_handler))
            .route("/v1/embeddings", post(embeddings_handler))
            .fallback(fallback)
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::clone(&shared));
        FakeModelServer {
            shared,
            addr,
            listener: Arc::new(crate::outage::Listening::serve(listener, router)),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`; the client POSTs `{base}/chat/completions`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT`; the client POSTs `{base}/v1/messages`.
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a reply; replies are consumed first in, first out, whichever
    /// protocol asks.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.queue).push_back(reply);
    }

    /// Answers requests the queue has no reply for with `f(request body)`.
    pub fn respond_with(&self, f: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        *lock(&self.shared.responder) = Some(ResponderFn(Box::new(f)));
    }

    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.queue).extend(replies);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The most recent request, if any.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Scripted replies not yet consumed.
    pub fn pending(&self) -> usize {
        lock(&self.shared.queue).len()
    }

    /// The embeddings endpoint's state, for its knobs in `embeddings.rs`.
    pub(crate) fn embeddings(&self) -> &EmbeddingState {
        &self.shared.embeddings
    }
}

async fn openai_handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&shared, Protocol::OpenAi, &uri, &headers, &body).await
}

async fn anthropic_handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&shared, Protocol::Anthropic, &uri, &headers, &body).await
}

async fn embeddings_handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    embeddings::handle(&shared.embeddings, &uri, &headers, &body).await
}

async fn fallback(method: Method, uri: Uri) -> Response {
    let message = format!(
        "fake model server: no route for {method} {}; use POST /v1/chat/completions, \
         POST /v1/messages or POST /v1/embeddings",
        uri.path()
    );
    (StatusCode::NOT_FOUND, message).into_response()
}

fn native_error(protocol: Protocol, status: u16, message: &str) -> Rendered {
    match protocol {
        Protocol::OpenAi => openai::error(status, message),
        Protocol::Anthropic => anthropic::error(status, message),
    }
}

async fn handle(
    shared: &Shared,
    protocol: Protocol,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let parsed = serde_json::from_slice::<Value>(body);
    let recorded = RecordedRequest {
        protocol,
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: parsed.as_ref().cloned().unwrap_or(Value::Null),
    };
    lock(&shared.requests).push(recorded);
    let seq = shared.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = format!("req_fake{seq}");
    let outage = *lock(&shared.outage_status);
    if let Some(status) = outage {
        shared.outage_answers.fetch_add(1, Ordering::Relaxed);
        let message = format!("fake model server: outage (answering {status})");
        return finish(native_error(protocol, status, &message), &request_id, false);
    }

    let json = match parsed {
        Ok(json) => json,
        Err(e) => {
            let message = format!("fake model server: request body is not valid JSON: {e}");
            return finish(native_error(protocol, 400, &message), &request_id, false);
        }
    };
    let queued = lock(&shared.queue).pop_front();
    let reply = queued.or_else(|| lock(&shared.responder).as_ref().map(|f| (f.0)(&json)));
    let Some(reply) = reply else {
        return finish(
            native_error(protocol, 500, NO_REPLY_LEFT),
            &request_id,
            false,
        );
    };

    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    if reply.hang {
        std::future::pending::<()>().await;
    }
    let info = RequestInfo::from_body(&json, seq);
    let mut rendered = match protocol {
        Protocol::OpenAi => openai::render(&reply, &info),
        Protocol::Anthropic => anthropic::render(&reply, &info),
    };
    if let Some(secs) = reply.retry_after {
        rendered
            .headers
            .push(("retry-after".to_owned(), secs.to_string()));
    }
    finish(rendered, &request_id, reply.cut)
}

fn finish(mut rendered: Rendered, request_id: &str, cut: bool) -> Response {
    rendered
        .headers
        .push(("x-request-id".to_owned(), request_id.to_owned()));
    rendered
        .headers
        .push(("request-id".to_owned(), request_id.to_owned()));
    to_response(rendered, cut)
}
