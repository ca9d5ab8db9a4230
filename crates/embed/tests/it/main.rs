//! The integration tests of `embed`: one binary, so the crate graph is
//! linked once, with one module per area.

mod fake_endpoint;
mod local_model;
mod openai_fake;
