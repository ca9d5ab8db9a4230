//! Real GGUF model files for tests of the local model.

/// The file the variable `var` names; `None`, with a printed notice naming
/// `what`, outside CI when it is unset; in CI a missing variable fails the
/// test instead of skipping it.
fn model_file(var: &str, what: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(path.into()),
        None => {
            assert!(std::env::var_os("CI").is_none(), "CI must set {var}");
            eprintln!("skipped: set {var} to {what}");
            None
        }
    }
}

/// The SmolLM2-135M-Instruct file `ROSTER_TEST_LOCAL_MODEL` names
/// (`.ci/run` obtains it as a user would).
pub fn local_model_file() -> Option<std::path::PathBuf> {
    model_file(
        "ROSTER_TEST_LOCAL_MODEL",
        "a SmolLM2-135M-Instruct GGUF file",
    )
}

/// The Gemma 3 270M file (SentencePiece vocabulary, the `gemma3` network)
/// `ROSTER_TEST_GEMMA_MODEL` names; `.ci/run` assembles it from its PyPI
/// packages.
pub fn gemma_model_file() -> Option<std::path::PathBuf> {
    model_file("ROSTER_TEST_GEMMA_MODEL", "the Gemma 3 270M GGUF file")
}
