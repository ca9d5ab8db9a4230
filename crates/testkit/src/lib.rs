//! Test kit for Roster: a fake model server that speaks the real OpenAI Chat
//! Completions and Anthropic Messages wire protocols, so that real HTTP client
//! code can be exercised against scripted model replies.
//!
//! This file owns only the public surface; the pieces live in:
//! - [`reply`]: the [`Reply`] builder that scripts one answer;
//! - `server`: the HTTP server, reply queue and request recording;
//! - `openai` / `anthropic`: rendering a reply in each protocol's format;
//! - `wire`: the protocol-neutral rendered response and splitting helpers;
//! - `respond`: turning a rendered answer into HTTP, including cut deliveries;
//! - `embeddings`: the fake `POST /v1/embeddings` and its knobs;
//! - `outage`: outages (every request answered with an error status, or
//!   connections refused) and their end.
//! - [`escape`]: the probe program sandboxes (`run_code`, stdio MCP
//!   servers) must wall in;
//! - [`peers`]: where the real external programs some tests run are.
//!
//! ```no_run
//! # async fn demo() {
//! use roster_testkit::{FakeModelServer, Reply};
//! let server = FakeModelServer::start().await;
//! server.push(Reply::tool_call("call_1", "get_weather", r#"{"city":"Paris"}"#));
//! server.push(Reply::text("It is sunny in Paris."));
//! // point a client at server.openai_base_url() or server.anthropic_base_url()
//! # }
//! ```

mod anthropic;
mod embeddings;
pub mod escape;
pub mod local_model;
mod openai;
mod outage;
pub mod peers;
pub mod reply;
mod respond;
mod server;
mod wire;

pub use embeddings::{fake_embedding, DEFAULT_EMBEDDING_DIMENSIONS};
pub use reply::Reply;
pub use server::{FakeModelServer, Protocol, RecordedRequest};

/// The message of the error answered when a request arrives and the queue of
/// scripted replies is empty.
pub const NO_REPLY_LEFT: &str = "fake model server: no scripted reply left";
