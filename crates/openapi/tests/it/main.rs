//! The integration tests of `openapi`: one binary, so the crate graph is
//! linked once, with one module per area.

mod services;
mod walls;
