//! The integration tests of `api`: one binary, so the crate graph is
//! linked once, with one module per area.

#[macro_use]
mod common;

mod a2a_surface;
mod agents;
mod anthropic;
mod approvals;
mod auth_and_errors;
mod budgets;
mod cancel;
mod delegation;
mod entry_points;
mod failures;
mod isolation;
mod keys;
mod knowledge;
mod lifecycle;
mod memories;
mod messages;
mod openai_surface;
mod openapi;
mod outages;
mod policies;
mod remotes;
mod schedules;
mod shared_blocks;
mod store_failure;
mod streaming;
mod tenancy;
mod triggers;
mod users;
mod walls;
mod webhooks;
