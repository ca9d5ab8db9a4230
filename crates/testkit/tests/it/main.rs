//! The integration tests of `testkit`: one binary, so the crate graph is
//! linked once, with one module per area.

mod fake_server;
mod faults;
