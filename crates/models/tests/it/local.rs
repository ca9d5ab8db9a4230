//! The `local` provider with the real SmolLM2-135M-Instruct model, read from
//! the file `ROSTER_TEST_LOCAL_MODEL` names (`.ci/run` obtains it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use roster_models::{
    build_provider, ChatMessage, ChatRequest, ModelProvider, ProviderConfig, ProviderError,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn provider(extra: &str) -> Option<Arc<dyn ModelProvider>> {
    let path = roster_testkit::local_model::local_model_file()?;
    let table: toml::Value = toml::from_str(&format!(
        "kind = \"local\"\nmodel_file = {:?}\nmodel = \"smollm2\"\n{extra}",
        path.display().to_string()
    ))
    .unwrap();
    let mut config: ProviderConfig = table.try_into().unwrap();
    config.name = "local".into();
    Some(build_provider(config).unwrap())
}

fn ask(text: &str, max_tokens: u32, stream: bool) -> ChatRequest {
    ChatRequest {
        model: "smollm2".into(),
        system: "You are a helpful assistant.".into(),
        messages: vec![ChatMessage::User { text: text.into() }],
        max_tokens: Some(max_tokens),
        stream,
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn answers_stream_and_count_real_tokens() {
    let Some(local) = provider("") else { return };
    assert_eq!(local.attributes().hosting, "local");
    let pieces = Mutex::new(Vec::new());
    let answer = local
        .chat(
            &ask("What is the capital of France?", 30, true),
            &|t: &str| {
                pieces.lock().unwrap().push(t.to_owned());
            },
        )
        .await
        .unwrap();
    let pieces = pieces.into_inner().unwrap();
    assert!(!answer.text.trim().is_empty());
    assert_eq!(pieces.concat(), answer.text);
    assert!(answer.usage.input_tokens > 10, "{:?}", answer.usage);
    assert!(answer.usage.output_tokens >= 1 && answer.usage.output_tokens <= 30);
    // Without streaming nothing is pushed, and greedy decoding repeats.
    let quiet = local
        .chat(
            &ask("What is the capital of France?", 30, false),
            &|_: &str| panic!("no deltas without streaming"),
        )
        .await
        .unwrap();
    assert_eq!(quiet.text, answer.text);
}

#[tokio::test]
async fn another_model_name_is_not_found_and_the_file_must_exist() {
    let Some(local) = provider("") else { return };
    let mut request = ask("Hi", 5, false);
    request.model = "gpt-4o".into();
    let refused = local.chat(&request, &|_: &str| {}).await;
    assert!(
        matches!(refused, Err(ProviderError::NotFound { .. })),
        "{refused:?}"
    );
    let mut config = ProviderConfig::new("broken", roster_models::ProviderKind::Local, "");
    config.model_file = Some("/nonexistent/model.gguf".into());
    let error = build_provider(config)
        .err()
        .expect("a missing file is refused");
    assert!(
        error.to_string().contains("/nonexistent/model.gguf"),
        "{error}"
    );
    let no_file = build_provider(ProviderConfig::new(
        "bare",
        roster_models::ProviderKind::Local,
        "",
    ));
    assert!(no_file
        .err()
        .expect("refused")
        .to_string()
        .contains("model_file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_take_turns_and_a_dropped_call_frees_the_model() {
    let Some(local) = provider("") else { return };
    // A long answer, abandoned after a moment: the model must not go on
    // generating it for nobody.
    let long = ask("Write a very long story about a dragon.", 400, true);
    let abandoned =
        tokio::time::timeout(Duration::from_millis(300), local.chat(&long, &|_: &str| {})).await;
    assert!(abandoned.is_err(), "the long answer was still running");
    let started = std::time::Instant::now();
    let (hello, goodbye) = (ask("Say hello.", 8, false), ask("Say goodbye.", 8, false));
    let (a, b) = tokio::join!(
        local.chat(&hello, &|_: &str| {}),
        local.chat(&goodbye, &|_: &str| {}),
    );
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    // Two 8-token answers, not the rest of a 400-token story first.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_prompt_over_the_context_is_a_context_overflow() {
    let Some(local) = provider("") else { return };
    let huge = ask(&"lorem ipsum ".repeat(5000), 10, false);
    let result = local.chat(&huge, &|_: &str| {}).await;
    assert!(
        matches!(result, Err(ProviderError::ContextOverflow { .. })),
        "{result:?}"
    );
}

/// Runs without the model: what is refused before any file is read, and a
/// file that is not a GGUF model.
#[test]
fn bad_settings_and_files_that_are_not_models_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("notes.gguf");
    std::fs::write(&garbage, b"these are not weights").unwrap();
    let with = |edit: &dyn Fn(&mut ProviderConfig)| {
        let mut config = ProviderConfig::new("bad", roster_models::ProviderKind::Local, "");
        config.model_file = Some(garbage.clone());
        edit(&mut config);
        build_provider(config).err().expect("refused").to_string()
    };
    type Edit<'a> = &'a dyn Fn(&mut ProviderConfig);
    let cases: [(Edit, &str); 6] = [
        (&|_| {}, "notes.gguf"),
        (&|c| c.temperature = Some(-1.0), "temperature"),
        (&|c| c.top_p = Some(1.5), "top_p"),
        (&|c| c.threads = Some(0), "threads"),
        (&|c| c.max_tokens = Some(0), "max_tokens"),
        (&|c| c.model = Some(" ".into()), "model"),
    ];
    for (edit, word) in cases {
        let message = with(edit);
        assert!(
            message.contains(word) && message.contains("`bad`"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_shows_who_generates_and_who_waits_and_a_cancelled_wait_leaves_it() {
    let Some(local) = provider("") else { return };
    let depth = |l: &Arc<dyn ModelProvider>| l.queue().map(|q| (q.running, q.waiting));
    assert_eq!(depth(&local), Some((0, 0)));
    let long = ask("Write a very long story about a dragon.", 200, true);
    let (first, second) = (long.clone(), long.clone());
    let generating = {
        let local = local.clone();
        tokio::spawn(async move { local.chat(&first, &|_: &str| {}).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = {
        let local = local.clone();
        tokio::spawn(async move { local.chat(&second, &|_: &str| {}).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(depth(&local), Some((1, 1)), "one generating, one waiting");
    // Cancel the waiting call (a cancelled run drops its model call).
    waiting.abort();
    let _ = waiting.await;
    assert_eq!(
        depth(&local),
        Some((1, 0)),
        "a cancelled wait leaves the queue"
    );
    generating.abort();
    let _ = generating.await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(depth(&local), Some((0, 0)));
}
