//! The integration tests of `ingest`: one binary, so the crate graph is
//! linked once, with one module per area.

#[macro_use]
mod common;

mod chunking;
mod errors;
mod formats;
mod pdf;
