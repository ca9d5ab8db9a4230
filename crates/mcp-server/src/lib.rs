//! Roster as an MCP server: `/mcp` on the API's listener, Streamable HTTP.
//!
//! A bearer key of the API sees its tenant's agents as tools (`ask_NAME`),
//! can continue a session by id (`continue_session`) and search knowledge
//! and memory (`knowledge_search`, `memory_search`). Every run starts
//! through the runtime's front door (`Runtime::start_run`), so policy,
//! budgets, the ledger, audit and busy sessions behave as on
//! `POST /v1/sessions/{id}/messages`; searches call the memory service as
//! the `/v1` search routes do, with the same user confinement.
//!
//! The protocol is rmcp's: the legacy `initialize` handshake (2025-11-25
//! and before) and the stateless 2026-07-28 revision (`server/discover`).
//! No MCP session lives in memory: every request carries its key and, for
//! a conversation, the Roster session id, so any node of a deployment can
//! answer it.
//!
//! **Never:** SQL, a model call, or a run started other than through the
//! front door; a tool this crate lists that another tenant's key could
//! reach.

mod args;
mod ask;
mod catalogue;
mod endpoint;
mod error;
mod gate;
mod handler;
mod naming;
mod origin;
mod search;

pub use endpoint::{router, PATH};
