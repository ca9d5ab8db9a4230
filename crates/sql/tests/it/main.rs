//! The integration tests of `sql`: one binary, so the crate graph is
//! linked once, with one module per area.

mod sources;
mod walls;
