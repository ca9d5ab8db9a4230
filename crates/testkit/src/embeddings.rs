//! The fake OpenAI `POST /v1/embeddings` endpoint: deterministic vectors
//! that still mean something (texts sharing words are similar), the request
//! checks a real server makes, and the fault knobs (failures, delay, hang,
//! raw bodies, shuffled order) that exercise an embeddings client.
//!
//! Owns the embedding state of the fake server and [`fake_embedding`]. Must
//! never touch the scripted chat replies or the chat request record: an
//! embedding request consumes and records only what lives here.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use crate::openai;
use crate::respond::to_response;
use crate::server::{FakeModelServer, Protocol, RecordedRequest};
use crate::wire::{Body, Rendered};

/// Vector length when the request names no `dimensions`.
pub const DEFAULT_EMBEDDING_DIMENSIONS: usize = 64;

/// Longest vector the fake will make, like a real model's limit.
const MAX_DIMENSIONS: u64 = 4096;

/// Most inputs in one request: OpenAI's limit.
const MAX_INPUTS: usize = 2048;

/// The vector the fake endpoint answers for `text`: feature hashing of the
/// lowercase alphanumeric words (weight 1) and of their character trigrams
/// (weight 0.5, so "sits" and "sitting" meet), each into one of `dims`
/// buckets with a hashed sign, then L2-normalised. Texts sharing words have
/// a high cosine; unrelated texts are near 0. A text without words gets a
/// fixed vector of its own. `dims == 0` gives an empty vector.
pub fn fake_embedding(text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; dims];
    if dims == 0 {
        return v;
    }
    let mut add = |kind: u8, feature: &str, weight: f32| {
        let h = feature_hash(kind, feature);
        let bucket = (h % dims as u64) as usize;
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        v[bucket] += sign * weight;
    };
    let lower = text.to_lowercase();
    let mut any = false;
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        any = true;
        add(b'w', word, 1.0);
        let padded: Vec<char> = format!("#{word}#").chars().collect();
        for tri in padded.windows(3) {
            add(b't', &tri.iter().collect::<String>(), 0.5);
        }
    }
    if !any {
        add(b'e', "", 1.0);
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        // Features that cancelled out exactly: still a unit vector.
        v[0] = 1.0;
    }
    v
}

/// FNV-1a over the kind and the feature, then a finaliser so that the low
/// bits (the bucket) depend on every input byte. Stable across platforms
/// and releases, unlike std's hasher, so expected vectors never drift.
fn feature_hash(kind: u8, feature: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(kind).chain(feature.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Standard base64 (with padding) of the vector as little-endian f32s: what
/// OpenAI answers for `encoding_format: "base64"`.
fn base64_f32(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[derive(Debug, Default)]
struct Knobs {
    failures: u32,
    failure_status: u16,
    failure_retry_after: Option<u64>,
    delay: Duration,
    hang: bool,
    reverse: bool,
    raw: VecDeque<(u16, String)>,
}

/// Everything the embeddings endpoint keeps, apart from the chat state.
#[derive(Debug, Default)]
pub(crate) struct EmbeddingState {
    knobs: Mutex<Knobs>,
    requests: Mutex<Vec<RecordedRequest>>,
    seq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Embedding knobs and records. Each applies to embedding requests only.
impl FakeModelServer {
    /// The next `n` embedding requests fail with `status` and an OpenAI-format
    /// error body (after any delay).
    pub fn embedding_failures(&self, n: u32, status: u16) {
        let mut k = lock(&self.embeddings().knobs);
        (k.failures, k.failure_status, k.failure_retry_after) = (n, status, None);
    }

    /// Like [`embedding_failures`](Self::embedding_failures), each failure
    /// also carrying `retry-after: secs` (and `retry-after-ms`, as OpenAI
    /// sends both).
    pub fn embedding_failures_with_retry_after(&self, n: u32, status: u16, secs: u64) {
        let mut k = lock(&self.embeddings().knobs);
        (k.failures, k.failure_status, k.failure_retry_after) = (n, status, Some(secs));
    }

    /// Every embedding request waits this long before anything else;
    /// `Duration::ZERO` clears it.
    pub fn embedding_delay(&self, delay: Duration) {
        lock(&self.embeddings().knobs).delay = delay;
    }

    /// While on, embedding requests are never answered (the connection stays
    /// open): for timeout tests. Requests already hanging keep hanging.
    pub fn embedding_hang(&self, hang: bool) {
        lock(&self.embeddings().knobs).hang = hang;
    }

    /// While on, `data` lists the embeddings last input first (each still
    /// with its `index`), which a correct client must undo.
    pub fn embedding_reverse_order(&self, reverse: bool) {
        lock(&self.embeddings().knobs).reverse = reverse;
    }

    /// The next embedding request (after any failures) is answered with this
    /// status and body verbatim, as `application/json` whatever it holds.
    /// Queued: several calls script several requests.
    pub fn push_embedding_raw(&self, status: u16, body: impl Into<String>) {
        lock(&self.embeddings().knobs)
            .raw
            .push_back((status, body.into()));
    }

    /// Embedding requests received so far, answered or not.
    pub fn embedding_request_count(&self) -> usize {
        lock(&self.embeddings().requests).len()
    }

    /// Every embedding request received so far, in order. Their protocol is
    /// [`Protocol::OpenAi`] and their path `/v1/embeddings`.
    pub fn embedding_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.embeddings().requests).clone()
    }
}

/// Answers one `POST /v1/embeddings`.
pub(crate) async fn handle(
    state: &EmbeddingState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let parsed = serde_json::from_slice::<Value>(body);
    lock(&state.requests).push(RecordedRequest {
        protocol: Protocol::OpenAi,
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect(),
        body: parsed.as_ref().cloned().unwrap_or(Value::Null),
    });
    let seq = state.seq.fetch_add(1, Ordering::Relaxed) + 1;

    let (delay, hang) = {
        let k = lock(&state.knobs);
        (k.delay, k.hang)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let scripted = {
        let mut k = lock(&state.knobs);
        if k.failures > 0 {
            k.failures -= 1;
            Some(failure(k.failure_status, k.failure_retry_after))
        } else {
            k.raw.pop_front().map(|(status, body)| Rendered {
                status,
                headers: Vec::new(),
                body: Body::Whole {
                    content_type: "application/json".to_owned(),
                    bytes: body.into_bytes(),
                },
            })
        }
    };
    let mut rendered = match scripted {
        Some(rendered) => rendered,
        None => match parsed {
            Ok(json) => {
                let reverse = lock(&state.knobs).reverse;
                answer(&json, reverse)
            }
            Err(e) => invalid(&format!("request body is not valid JSON: {e}")),
        },
    };
    rendered
        .headers
        .push(("x-request-id".to_owned(), format!("req_fakeemb{seq}")));
    to_response(rendered, false)
}

fn failure(status: u16, retry_after: Option<u64>) -> Rendered {
    let message = format!("fake model server: scripted embeddings failure ({status})");
    let mut rendered = openai::error(status, &message);
    if let Some(secs) = retry_after {
        rendered
            .headers
            .push(("retry-after".to_owned(), secs.to_string()));
        let ms = secs.saturating_mul(1000).to_string();
        rendered.headers.push(("retry-after-ms".to_owned(), ms));
    }
    rendered
}

fn invalid(message: &str) -> Rendered {
    openai::error(400, &format!("fake model server: {message}"))
}

/// The inputs of a request, or the 400 a real server would answer.
fn inputs(body: &Value) -> Result<Vec<&str>, Rendered> {
    let items: Vec<&Value> = match body.get("input") {
        Some(single @ Value::String(_)) => vec![single],
        Some(Value::Array(items)) => items.iter().collect(),
        _ => return Err(invalid("'input' must be a string or an array of strings")),
    };
    if items.is_empty() || items.len() > MAX_INPUTS {
        return Err(invalid(&format!(
            "'input' must hold 1 to {MAX_INPUTS} non-empty strings"
        )));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) if !s.is_empty() => Ok(s.as_str()),
            Value::String(_) => Err(invalid("'input' must not contain empty strings")),
            Value::Number(_) | Value::Array(_) => Err(invalid(
                "token-id input is not supported by the fake server; send strings",
            )),
            _ => Err(invalid("'input' must be a string or an array of strings")),
        })
        .collect()
}

/// The success answer, or the 400 a real server would give.
fn answer(body: &Value, reverse: bool) -> Rendered {
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return invalid("you must provide a model parameter");
    };
    let texts = match inputs(body) {
        Ok(texts) => texts,
        Err(rendered) => return rendered,
    };
    let dims = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_EMBEDDING_DIMENSIONS,
        Some(d) => match d.as_u64().filter(|d| (1..=MAX_DIMENSIONS).contains(d)) {
            Some(d) => d as usize,
            None => return invalid(&format!("'dimensions' must be 1 to {MAX_DIMENSIONS}")),
        },
    };
    let base64 = match body.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(f) if f == "float" => false,
        Some(f) if f == "base64" => true,
        _ => return invalid("'encoding_format' must be \"float\" or \"base64\""),
    };
    let mut data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = fake_embedding(text, dims);
            let embedding = if base64 {
                Value::from(base64_f32(&vector))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    if reverse {
        data.reverse();
    }
    let tokens: usize = texts
        .iter()
        .map(|t| {
            t.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .count()
                .max(1)
        })
        .sum();
    Rendered::json(
        200,
        &json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_unit_deterministic_and_meaningful() {
        let a = fake_embedding("The cat sits on the mat", 64);
        assert_eq!(a.len(), 64);
        assert!((cos(&a, &a) - 1.0).abs() < 1e-5);
        assert_eq!(a, fake_embedding("the CAT sits, on the mat!", 64));
        let near = cos(&a, &fake_embedding("A cat is sitting on a mat", 64));
        let far = cos(&a, &fake_embedding("Quarterly revenue grew 5%", 64));
        assert!(near > far + 0.2, "near {near}, far {far}");
    }

    #[test]
    fn edge_texts_still_get_unit_vectors() {
        for text in ["", "   ", "!!!", "é"] {
            let v = fake_embedding(text, 8);
            assert!((cos(&v, &v) - 1.0).abs() < 1e-5, "{text:?}");
        }
        assert!(fake_embedding("x", 0).is_empty());
    }

    #[test]
    fn base64_matches_known_encodings() {
        // 1.0f32 is 00 00 80 3f; two floats exercise the padding.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[]), "");
    }
}
