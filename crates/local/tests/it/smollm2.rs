use roster_local::{Finish, LocalError, Message, Model, Offer, Sampling};
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
    assert_eq!(info.context, 8192, "as the file declares");
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
            Offer::default(),
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
            Offer::default(),
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
            Offer::default(),
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
            Offer::default(),
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
        .generate(&prompt, Offer::default(), &warm, &never, &mut |_: &str| {})
        .unwrap();
    let b = model
        .generate(&prompt, Offer::default(), &warm, &never, &mut |_: &str| {})
        .unwrap();
    assert_eq!(a.text, b.text);
    let cancelled = AtomicBool::new(true);
    let stopped = model.generate(
        &prompt,
        Offer::default(),
        &warm,
        &cancelled,
        &mut |_: &str| {},
    );
    assert!(matches!(stopped, Err(LocalError::Cancelled)));
}

#[test]
fn a_prompt_over_the_context_is_a_typed_error() {
    let Some(model) = model() else { return };
    let long = "word ".repeat(9000);
    let result = model.generate(
        &long,
        Offer::default(),
        &Sampling::default(),
        &AtomicBool::new(false),
        &mut |_: &str| {},
    );
    assert!(
        matches!(
            result,
            Err(LocalError::ContextOverflow { context: 8192, .. })
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

fn calculator_and_weather() -> Vec<roster_local::ToolSpec> {
    vec![
        roster_local::ToolSpec {
            name: "add".into(),
            description: "Adds two whole numbers.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"], "additionalProperties": false}),
        },
        roster_local::ToolSpec {
            name: "get_weather".into(),
            description: "The current weather in a city.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"], "additionalProperties": false}),
        },
    ]
}

/// Checks a call against the tools above: a known name, every required
/// argument, no other argument, each of the right type or value.
fn assert_valid(call: &roster_local::ToolCall) {
    let args = call.arguments.as_object().expect("arguments are an object");
    match call.name.as_str() {
        "add" => {
            assert_eq!(args.len(), 2, "{args:?}");
            assert!(args["a"].is_i64() && args["b"].is_i64(), "{args:?}");
        }
        "get_weather" => {
            assert_eq!(args.len(), 2, "{args:?}");
            assert!(args["city"].is_string(), "{args:?}");
            assert!(
                ["celsius", "fahrenheit"].contains(&args["unit"].as_str().unwrap_or("")),
                "{args:?}"
            );
        }
        other => panic!("a call of a tool never offered: {other}"),
    }
}

fn with_tools(
    model: &Model,
    tools: &[roster_local::ToolSpec],
    question: &str,
    required: bool,
    max_tokens: usize,
) -> (Result<roster_local::Generated, LocalError>, String) {
    let system = format!(
        "You are a helpful assistant.\n\n{}",
        roster_local::tools::instructions(tools)
    );
    let prompt = model
        .render(&[
            Message::new("system", system),
            Message::new("user", question),
        ])
        .unwrap();
    let mut streamed = String::new();
    let answer = model.generate(
        &prompt,
        Offer { tools, required },
        &Sampling {
            max_tokens,
            ..Sampling::default()
        },
        &AtomicBool::new(false),
        &mut |t: &str| streamed.push_str(t),
    );
    (answer, streamed)
}

#[test]
fn a_required_call_names_an_offered_tool_with_valid_arguments() {
    let Some(model) = model() else { return };
    let tools = calculator_and_weather();
    for question in ["What is 3 plus 4?", "Is it raining in Oslo?", "Hello"] {
        let (answer, streamed) = with_tools(model, &tools, question, true, 120);
        let answer = answer.unwrap();
        assert_eq!(answer.finish, Finish::ToolCalls, "{answer:?}");
        assert!(!answer.tool_calls.is_empty(), "{answer:?}");
        answer.tool_calls.iter().for_each(assert_valid);
        assert!(
            !streamed.contains("<tool_call>") && !streamed.contains('{'),
            "{streamed}"
        );
    }
}

#[test]
fn an_enum_holds_the_model_to_the_listed_values() {
    let Some(model) = model() else { return };
    let tools = vec![roster_local::ToolSpec {
        name: "memory_append".into(),
        description: "Append text to one of your memory blocks.".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"label": {"type": "string", "enum": ["notes"]}, "content": {"type": "string"}}, "required": ["label", "content"], "additionalProperties": false}),
    }];
    let (answer, _) = with_tools(
        model,
        &tools,
        "Remember in your notes that my favourite colour is green.",
        true,
        200,
    );
    let answer = answer.unwrap();
    assert!(!answer.tool_calls.is_empty(), "{answer:?}");
    for call in &answer.tool_calls {
        assert_eq!(call.name, "memory_append");
        assert_eq!(call.arguments["label"], "notes", "{call:?}");
        assert!(call.arguments["content"].is_string(), "{call:?}");
    }
}

#[test]
fn offered_tools_leave_prose_answers_clean() {
    let Some(model) = model() else { return };
    let tools = calculator_and_weather();
    let (answer, streamed) = with_tools(model, &tools, "Tell me a joke.", false, 60);
    let answer = answer.unwrap();
    // Called or not (the model's choice), a call is valid and its markup
    // is never part of the prose.
    answer.tool_calls.iter().for_each(assert_valid);
    assert_eq!(streamed, answer.text);
    assert!(!answer.text.contains("<tool_call>"));
}

#[test]
fn a_call_cut_by_the_token_limit_is_an_error_not_a_broken_call() {
    let Some(model) = model() else { return };
    let (answer, _) = with_tools(
        model,
        &calculator_and_weather(),
        "What is 3 plus 4?",
        true,
        4,
    );
    assert!(
        matches!(answer, Err(LocalError::UnfinishedToolCall { limit: 4, .. })),
        "{answer:?}"
    );
}
