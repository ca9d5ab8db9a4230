//! The integration tests of `memory`: one binary, so the crate graph is
//! linked once, with one module per area.

mod memory;
mod quality;
