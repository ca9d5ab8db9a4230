//! Roster's runtime: turns an input into a run and drives it to its end.
//!
//! Owns the per-session scheduler (one active run per session, the rest
//! queued in order), the runner that executes the pure state machine from
//! `roster-core` against real models and tools, journaling every step through
//! the store before the next begins, recovery of unfinished runs at start-up,
//! context assembly, the tool registry with the built-in memory tools, and
//! the in-process event bus that SSE streams listen to.
//!
//! It must never speak HTTP to clients or parse CLI arguments, and must never
//! write state except through [`roster_store::Store::commit`] and friends.

pub mod bench;
mod bus;
mod caches;
mod context;
mod decisions;
mod delegation;
mod error;
mod extract;
mod front_door;
pub mod governance;
mod key_changes;
mod model_call;
mod policy_changes;
mod runner;
mod scheduler;
mod schedules;
mod services;
pub mod tools;
mod triggers;
mod turns;

pub use bus::{LiveEvent, LiveText};
pub use context::MAX_CONTEXT_ITEMS;
pub use error::RuntimeError;
pub use front_door::RunRequest;
pub use key_changes::{hash_key, user_not_allowed, IssuedKey, KeyRequest};
pub use scheduler::{Runtime, RuntimeOptions, Submission, MAX_INPUT_BYTES};
pub use turns::{turn_text, Conversation, DIRECT_AGENT};
