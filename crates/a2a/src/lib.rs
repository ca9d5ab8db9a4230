//! A2A (Agent2Agent) for Roster, the client side: remote agents a tenant
//! registers by their agent card become one tool each for Roster's agents.
//!
//! Owns: what a tenant registers ([`RemoteInput`], split into a stored
//! [`RemoteConfig`] — the card URL and what the card said — and sealed
//! credentials), reading an agent card in both protocol eras (A2A 1.0's
//! `supportedInterfaces`, 0.3's `url`/`preferredTransport`/
//! `protocolVersion`) into a [`Card`], the JSON-RPC calls (`SendMessage`
//! with `A2A-Version: 1.0`, or 0.3's `message/send`), turning a remote's
//! answer (a message, or a task with artifacts and a status) into the text
//! a model reads, and [`RemoteProvider`], which resolves an agent's
//! `a2a:NAME` entry into the tool `ask_remote_NAME`.
//!
//! Each Roster session keeps one conversation with each remote: the
//! remote's `contextId` (and a task it left waiting for input) is stored
//! with the session, so later calls — after a restart too — continue it.
//!
//! Every connection (the card, each call) goes only to addresses the
//! egress policy allows: names resolve through it at connect time, IP
//! literals are checked before sending, and no redirect is followed.
//!
//! Must never: reach an address the egress policy refuses, show a stored
//! credential, send a call twice on its own (a call is not idempotent), or
//! let a slow remote hold a run past the registration's timeout.

mod answer;
mod call;
mod card;
mod error;
mod http;
mod manager;
mod rpc;
mod spec;
mod tool;
mod turn;
mod wire;

pub use answer::{Answer, Outcome};
pub use card::{card_url, parse_card, Card, Protocol, Skill};
pub use error::{A2aError, RemoteError};
pub use manager::{secret_context, Remotes};
pub use spec::{
    RemoteConfig, RemoteInput, DEFAULT_TIMEOUT_SECS, MAX_DESCRIPTION_CHARS, MAX_TIMEOUT_SECS,
};
pub use tool::{tool_name, AskArguments, RemoteProvider, RemoteTool};
pub use wire::{Message, Part, Reply, Task, TaskState};

/// The integration kind remote agents are stored under, and the scheme of
/// agents' `a2a:NAME` tool entries.
pub const KIND: &str = "a2a";
