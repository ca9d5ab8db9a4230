//! The real SmolLM2-135M-Instruct GGUF file for tests of the local model.

/// The file `ROSTER_TEST_LOCAL_MODEL` names (`.ci/run` obtains it as a user
/// would). `None`, with a printed notice, outside CI when it is unset; in
/// CI a missing file fails the test instead of skipping it.
pub fn local_model_file() -> Option<std::path::PathBuf> {
    match std::env::var_os("ROSTER_TEST_LOCAL_MODEL") {
        Some(path) => Some(path.into()),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set ROSTER_TEST_LOCAL_MODEL"
            );
            eprintln!("skipped: set ROSTER_TEST_LOCAL_MODEL to a SmolLM2-135M-Instruct GGUF file");
            None
        }
    }
}
