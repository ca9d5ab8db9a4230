use roster_local::{Finish, LocalError, Message, Model, Sampling};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

/// The model, loaded once for the whole binary; `None` outside CI when no
/// file is named.
fn model() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            roster_testkit::local_model::local_model_file()
                .map(|path| Model::load(&path, 1).expect("load the model"))
        })
        .as_ref()
}

#[test]
fn the_file_describes_the_model() {
    let Some(model) = model() else { return };
    let info = model.info();
    assert_eq!(info.architecture, "llama");
    assert_eq!(
        info.context, 4096,
        "8,192 in the file, capped by the network's rotary table"
    );
    assert!(info
        .chat_template
        .as_deref()
        .is_some_and(|t| t.contains("<|im_start|>")));
    // <|endoftext|> (eos) and <|im_end|> (end of turn) both end an answer.
    assert!(info.stop_ids.contains(&2) && info.stop_ids.contains(&0));
}

#[test]
fn control_tokens_are_whole_and_words_get_no_leading_space() {
    let Some(model) = model() else { return };
    assert_eq!(model.encode("<|im_start|>system").unwrap(), vec![1, 9690]);
    // Each digit is its own token, none with a space glued on.
    let digits = model.encode("1234567").unwrap();
    assert_eq!(digits.len(), 7);
    let one_by_one: Vec<u32> = ["1", "2", "3", "4", "5", "6", "7"]
        .iter()
        .flat_map(|d| model.encode(d).unwrap())
        .collect();
    assert_eq!(digits, one_by_one);
}

#[test]
fn a_chat_answer_streams_in_pieces_that_add_up() {
    let Some(model) = model() else { return };
    let prompt = model
        .render(&[Message::new("user", "What is the capital of France?")])
        .unwrap();
    let mut pieces = Vec::new();
    let sampling = Sampling {
        max_tokens: 40,
        ..Sampling::default()
    };
    let answer = model
        .generate(
            &prompt,
            &sampling,
            &AtomicBool::new(false),
            &mut |t: &str| pieces.push(t.to_owned()),
        )
        .unwrap();
    eprintln!("{answer:?}");
    assert!(!answer.text.trim().is_empty());
    assert_eq!(pieces.concat(), answer.text);
    assert!(pieces.len() > 1, "streamed in more than one piece");
    assert!(answer.output_tokens <= 40);
    assert!(answer.prompt_tokens > 10);
    assert!(!answer.text.contains("<|im_end|>"));
}

#[test]
fn the_token_limit_and_stop_sequences_end_the_answer() {
    let Some(model) = model() else { return };
    let prompt = model
        .render(&[Message::new(
            "user",
            "Count from one to twenty in words, separated by commas.",
        )])
        .unwrap();
    let never = AtomicBool::new(false);
    let short = model
        .generate(
            &prompt,
            &Sampling {
                max_tokens: 5,
                ..Sampling::default()
            },
            &never,
            &mut |_: &str| {},
        )
        .unwrap();
    assert_eq!(short.finish, Finish::Length);
    assert_eq!(short.output_tokens, 5);
    let full = model
        .generate(
            &prompt,
            &Sampling {
                max_tokens: 60,
                ..Sampling::default()
            },
            &never,
            &mut |_: &str| {},
        )
        .unwrap();
    // Greedy decoding repeats itself, so stopping at a word from the middle
    // of the full answer must give exactly the text before that word.
    let words: Vec<&str> = full.text.split_whitespace().collect();
    assert!(words.len() > 4, "{full:?}");
    let stop = words[words.len() / 2].to_owned();
    let cut = full.text.find(&stop).expect("the word is in the answer");
    let stopped = model
        .generate(
            &prompt,
            &Sampling {
                max_tokens: 60,
                stop: vec![stop],
                ..Sampling::default()
            },
            &never,
            &mut |_: &str| {},
        )
        .unwrap();
    assert_eq!(stopped.finish, Finish::Stop);
    assert_eq!(stopped.text, full.text[..cut]);
}

#[test]
fn sampling_with_a_seed_repeats_and_cancel_stops() {
    let Some(model) = model() else { return };
    let prompt = model
        .render(&[Message::new("user", "Tell me a story.")])
        .unwrap();
    let never = AtomicBool::new(false);
    let warm = Sampling {
        max_tokens: 20,
        temperature: 0.8,
        top_p: Some(0.9),
        seed: 7,
        ..Sampling::default()
    };
    let a = model
        .generate(&prompt, &warm, &never, &mut |_: &str| {})
        .unwrap();
    let b = model
        .generate(&prompt, &warm, &never, &mut |_: &str| {})
        .unwrap();
    assert_eq!(a.text, b.text);
    let cancelled = AtomicBool::new(true);
    let stopped = model.generate(&prompt, &warm, &cancelled, &mut |_: &str| {});
    assert!(matches!(stopped, Err(LocalError::Cancelled)));
}

#[test]
fn a_prompt_over_the_context_is_a_typed_error() {
    let Some(model) = model() else { return };
    let long = "word ".repeat(5000);
    let result = model.generate(
        &long,
        &Sampling::default(),
        &AtomicBool::new(false),
        &mut |_: &str| {},
    );
    assert!(
        matches!(
            result,
            Err(LocalError::ContextOverflow { context: 4096, .. })
        ),
        "{result:?}"
    );
}

/// Token ids llama.cpp (llama-cpp-python 0.3.36, `tokenize(text, special=True)`)
/// gives for the same file: the reference this tokenizer must match.
const LLAMA_CPP_IDS: &[(&str, &[u32])] = &[
    (
        "Hello, world! It's 2026-12-07.",
        &[
            19556, 28, 905, 17, 657, 506, 216, 34, 32, 34, 38, 29, 33, 34, 29, 32, 39, 30,
        ],
    ),
    (
        "  leading spaces and\ttabs\nnew lines",
        &[216, 2899, 5600, 284, 197, 100, 7366, 198, 2241, 3204],
    ),
    (
        "naïve café — 東京 🚀",
        &[
            3546, 46494, 37366, 1841, 17097, 247, 126, 16736, 122, 15107, 244, 218,
        ],
    ),
    ("1234567", &[33, 34, 35, 36, 37, 38, 39]),
];

/// The rendered chat prompt for one question, and llama.cpp's ids for it.
const CHAT_IDS: &[u32] = &[
    1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407,
    19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531,
    198,
];

#[test]
fn token_ids_match_llama_cpp() {
    let Some(model) = model() else { return };
    for (text, ids) in LLAMA_CPP_IDS {
        assert_eq!(model.encode(text).unwrap(), *ids, "{text:?}");
    }
    let prompt = model
        .render(&[Message::new("user", "What is the capital of France?")])
        .unwrap();
    assert_eq!(model.encode(&prompt).unwrap(), CHAT_IDS, "{prompt:?}");
}
