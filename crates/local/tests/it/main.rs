//! The real SmolLM2-135M-Instruct model, read from the file
//! `ROSTER_TEST_LOCAL_MODEL` names (`.ci/run` obtains it as a user would).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gemma3;
mod smollm2;
