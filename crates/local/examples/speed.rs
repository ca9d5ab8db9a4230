//! Speed of the local model on one prompt: load time, prefill and decode
//! tokens per second, time to the first token. Prints one JSON line.
//!
//! `cargo run --release -p roster-local --example speed -- MODEL.gguf PROMPT.txt [THREADS] [MAX_TOKENS] [call]`
//! (`scripts/local_model_bench.sh` runs it beside llama.cpp on the same
//! prompt.) With `call`, the answer must be a call of a note-taking tool,
//! so every decoded token also pays for the tool-call grammar's mask.

use roster_local::{Message, Model, Offer, Sampling};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model_file), Some(prompt_file)) = (args.get(1), args.get(2)) else {
        return Err("usage: speed MODEL.gguf PROMPT.txt [THREADS] [MAX_TOKENS]".into());
    };
    let threads: usize = args.get(3).map_or(Ok(1), |t| t.parse())?;
    let max_tokens: usize = args.get(4).map_or(Ok(128), |t| t.parse())?;
    let call = args.get(5).is_some_and(|a| a == "call");
    let tools = [roster_local::ToolSpec {
        name: "take_note".into(),
        description: "Writes a note.".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"title": {"type": "string"}, "text": {"type": "string"}}, "required": ["title", "text"]}),
    }];
    let started = Instant::now();
    let model = Model::load(std::path::Path::new(model_file), threads)?;
    let load = started.elapsed();
    let text = std::fs::read_to_string(prompt_file)?;
    let prompt = model.render(&[Message::new("user", text)])?;
    let sampling = Sampling {
        max_tokens,
        repeat_penalty: 1.0,
        ..Sampling::default()
    };
    let offer = if call {
        Offer {
            tools: &tools,
            required: true,
        }
    } else {
        Offer::default()
    };
    let started = Instant::now();
    let answer = model.generate(
        &prompt,
        offer,
        &sampling,
        &AtomicBool::new(false),
        &mut |_: &str| {},
    )?;
    let total = started.elapsed();
    let decoded = answer.output_tokens.saturating_sub(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "engine": "roster-local",
            "mode": if call { "call" } else { "prose" },
            "tool_calls": answer.tool_calls.len(),
            // Outside prefill and decode: building the grammar (and, on
            // the first call, the vocabulary index).
            "setup_ms": (total.saturating_sub(answer.prefill + answer.decode)).as_secs_f64() * 1000.0,
            "threads": threads,
            "load_ms": load.as_millis() as u64,
            "prompt_tokens": answer.prompt_tokens,
            "output_tokens": answer.output_tokens,
            "ttft_ms": answer.prefill.as_secs_f64() * 1000.0,
            "prefill_tok_s": answer.prompt_tokens as f64 / answer.prefill.as_secs_f64(),
            "decode_tok_s": decoded / answer.decode.as_secs_f64(),
        })
    );
    Ok(())
}
