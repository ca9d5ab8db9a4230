//! The integration tests of `models`: one binary, so the crate graph is
//! linked once, with one module per area.

#[macro_use]
mod common;

mod anthropic;
mod custom_provider;
mod local;
mod openai;
mod openai_errors;
mod patience;
mod registry;
mod router;
