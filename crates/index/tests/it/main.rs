//! The integration tests of `index`: one binary, so the crate graph is
//! linked once, with one module per area.

#[macro_use]
mod common;

mod isolation;
mod lifecycle;
mod queries;
