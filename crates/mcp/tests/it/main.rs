//! The integration tests of `mcp`: one binary, so the crate graph is
//! linked once, with one module per area.

mod escape;
mod servers;
