//! The integration tests of `runtime`: one binary, so the crate graph is
//! linked once, with one module per area.

#[macro_use]
mod common;

mod cancel;
mod context_summary;
mod context_window;
mod delegation;
mod events;
mod extraction;
mod failures;
mod limits;
mod memory;
mod outages;
mod queue;
mod recall;
mod recovery;
mod recovery_batches;
mod schedules;
mod shared_blocks;
mod store_errors;
mod tool_calls;
mod tool_schemas;
mod user_blocks;
