//! The integration tests of `store`: one binary, so the crate graph is
//! linked once, with one module per area.

#[macro_use]
mod common;

mod governance;
mod integrations;
mod knowledge;
mod lifecycle;
mod postgres_nodes;
mod privacy;
mod records;
mod remotes;
mod run_waits;
mod schema_parity;
mod story;
mod vectors;
