//! Running the model: prompt in, tokens out, streamed as text.

use crate::detokenize::Detokenizer;
use crate::gguf::{self, ModelInfo, Network};
use crate::template::{self, Message};
use crate::{tokenizer, LocalError};
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling as Sampler};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokenizers::Tokenizer;

/// How to pick each next token and when to stop.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// Most tokens to generate (capped by the room left in the context).
    pub max_tokens: usize,
    /// 0 picks the likeliest token every time.
    pub temperature: f64,
    /// Nucleus sampling: only from the likeliest tokens whose probabilities
    /// add up to this.
    pub top_p: Option<f64>,
    pub seed: u64,
    /// Text that ends the answer; it is not part of the answer.
    pub stop: Vec<String>,
    /// Above 1, tokens of the last [`REPEAT_WINDOW`] become less likely,
    /// which keeps small models from looping.
    pub repeat_penalty: f32,
}

/// How far back the repeat penalty looks.
const REPEAT_WINDOW: usize = 64;

impl Default for Sampling {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            temperature: 0.0,
            top_p: None,
            seed: 0,
            stop: Vec::new(),
            repeat_penalty: 1.1,
        }
    }
}

/// Why the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model ended its turn, or a stop sequence appeared.
    Stop,
    /// The token limit was reached.
    Length,
}

/// An answer and what it cost.
#[derive(Debug, Clone)]
pub struct Generated {
    pub text: String,
    pub prompt_tokens: usize,
    pub output_tokens: usize,
    pub finish: Finish,
    /// Time to read the prompt, i.e. to the first token.
    pub prefill: Duration,
    /// Time spent generating after the first token.
    pub decode: Duration,
}

/// A model loaded once and shared by every call. Generations take turns on
/// the network, in the model's own thread pool.
pub struct Model {
    info: ModelInfo,
    tokenizer: Tokenizer,
    network: Mutex<Network>,
    pool: rayon::ThreadPool,
}

impl Model {
    /// Loads `path` and prepares a pool of `threads` threads for it. On two
    /// cores one thread decodes faster than two: a step is a row of tiny
    /// matrix products that stall whenever a worker is descheduled.
    pub fn load(path: &Path, threads: usize) -> Result<Self, LocalError> {
        let loaded = gguf::load(path)?;
        let tokenizer = tokenizer::from_metadata(&loaded.metadata).map_err(|e| match e {
            LocalError::Load { message, .. } => LocalError::Load {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("roster-local-{i}"))
            .build()
            .map_err(|e| LocalError::Load {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            info: loaded.info,
            tokenizer,
            network: Mutex::new(loaded.network),
            pool,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Token ids of `text`, control tokens (`<|im_start|>`) matched whole.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(LocalError::inference)
    }

    /// The prompt for the assistant's next turn in this conversation.
    pub fn render(&self, messages: &[Message]) -> Result<String, LocalError> {
        template::render(
            self.info.chat_template.as_deref(),
            messages,
            self.info.bos_token.as_deref(),
            self.info.eos_token.as_deref(),
        )
    }

    /// Continues `prompt`, calling `on_text` with each piece of new text.
    /// Checks `cancelled` between tokens.
    pub fn generate(
        &self,
        prompt: &str,
        sampling: &Sampling,
        cancelled: &AtomicBool,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generated, LocalError> {
        let prompt_ids = self.encode(prompt)?;
        let room = self.info.context.saturating_sub(prompt_ids.len());
        if room == 0 {
            return Err(LocalError::ContextOverflow {
                prompt: prompt_ids.len(),
                reserve: 1,
                context: self.info.context,
            });
        }
        let limit = sampling.max_tokens.min(room);
        self.pool
            .install(|| self.run(&prompt_ids, limit, sampling, cancelled, on_text))
    }

    fn run(
        &self,
        prompt_ids: &[u32],
        limit: usize,
        sampling: &Sampling,
        cancelled: &AtomicBool,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generated, LocalError> {
        // A panic mid-generation leaves only a cache behind, which the
        // reset below discards.
        let mut network = self
            .network
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        network.reset();
        let mut sampler = LogitsProcessor::from_sampling(
            sampling.seed,
            if sampling.temperature <= 0.0 {
                Sampler::ArgMax
            } else if let Some(p) = sampling.top_p {
                Sampler::TopP {
                    p,
                    temperature: sampling.temperature,
                }
            } else {
                Sampler::All {
                    temperature: sampling.temperature,
                }
            },
        );
        let started = Instant::now();
        let mut logits = step(&mut network, prompt_ids, 0)?;
        let prefill = started.elapsed();
        let mut output = StopScan::new(&sampling.stop);
        let mut detokenizer = Detokenizer::new(&self.tokenizer);
        let mut generated: Vec<u32> = Vec::new();
        let mut finish = Finish::Length;
        while generated.len() < limit {
            if cancelled.load(Ordering::Relaxed) {
                return Err(LocalError::Cancelled);
            }
            if sampling.repeat_penalty > 1.0 && !generated.is_empty() {
                let recent = &generated[generated.len().saturating_sub(REPEAT_WINDOW)..];
                logits = candle_transformers::utils::apply_repeat_penalty(
                    &logits,
                    sampling.repeat_penalty,
                    recent,
                )
                .map_err(LocalError::inference)?;
            }
            let token = sampler.sample(&logits).map_err(LocalError::inference)?;
            if self.info.stop_ids.contains(&token) {
                finish = Finish::Stop;
                break;
            }
            generated.push(token);
            if let Some(delta) = detokenizer.push(token) {
                if output.push(&delta, on_text) {
                    finish = Finish::Stop;
                    break;
                }
            }
            if generated.len() < limit {
                let position = prompt_ids.len() + generated.len() - 1;
                logits = step(&mut network, &[token], position)?;
            }
        }
        if finish == Finish::Length {
            if let Some(rest) = detokenizer.finish() {
                if output.push(&rest, on_text) {
                    finish = Finish::Stop;
                }
            }
        }
        output.flush(on_text);
        Ok(Generated {
            text: output.text,
            prompt_tokens: prompt_ids.len(),
            output_tokens: generated.len(),
            finish,
            prefill,
            decode: started.elapsed().saturating_sub(prefill),
        })
    }
}

/// Feeds `tokens` at `position`; the next token's logits.
fn step(network: &mut Network, tokens: &[u32], position: usize) -> Result<Tensor, LocalError> {
    let input = Tensor::new(tokens, &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .map_err(LocalError::inference)?;
    network
        .forward(&input, position)
        .and_then(|logits| logits.squeeze(0))
        .and_then(|logits| logits.to_dtype(candle_core::DType::F32))
        .map_err(LocalError::inference)
}

/// The answer so far, released to the caller only where it cannot be the
/// start of a stop sequence.
struct StopScan<'s> {
    stops: &'s [String],
    text: String,
    released: usize,
}

impl<'s> StopScan<'s> {
    fn new(stops: &'s [String]) -> Self {
        Self {
            stops,
            text: String::new(),
            released: 0,
        }
    }

    /// Adds text; true when a stop sequence appeared (the answer is cut
    /// before it).
    fn push(&mut self, delta: &str, on_text: &mut (dyn FnMut(&str) + Send)) -> bool {
        self.text.push_str(delta);
        let first_stop = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| {
                // A stop can only begin in what was held back, at most its
                // own length before the released end.
                let mut from = self.released.saturating_sub(s.len());
                while !self.text.is_char_boundary(from) {
                    from -= 1;
                }
                self.text[from..].find(s.as_str()).map(|at| at + from)
            })
            .min();
        if let Some(at) = first_stop {
            self.text.truncate(at);
            self.flush(on_text);
            return true;
        }
        let held = self
            .stops
            .iter()
            .map(|s| held_back(&self.text, s))
            .max()
            .unwrap_or(0);
        let safe = self.text.len() - held;
        if safe > self.released {
            on_text(&self.text[self.released..safe]);
            self.released = safe;
        }
        false
    }

    fn flush(&mut self, on_text: &mut (dyn FnMut(&str) + Send)) {
        if self.text.len() > self.released {
            on_text(&self.text[self.released..]);
            self.released = self.text.len();
        }
    }
}

/// Length of the longest end of `text` that begins `stop` (and could become
/// it with more text).
fn held_back(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .filter(|n| {
            *n <= text.len() && text.is_char_boundary(text.len() - n) && stop.is_char_boundary(*n)
        })
        .find(|n| text.ends_with(&stop[..*n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(stops: &[&str], deltas: &[&str]) -> (Vec<String>, String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| (*s).to_owned()).collect();
        let mut scan = StopScan::new(&stops);
        let mut seen = Vec::new();
        let mut stopped = false;
        for delta in deltas {
            if scan.push(delta, &mut |t: &str| seen.push(t.to_owned())) {
                stopped = true;
                break;
            }
        }
        if !stopped {
            scan.flush(&mut |t: &str| seen.push(t.to_owned()));
        }
        (seen, scan.text, stopped)
    }

    #[test]
    fn a_stop_sequence_split_over_deltas_is_never_streamed() {
        let (seen, text, stopped) = scan(&["END"], &["Hello E", "N", "D and more"]);
        assert!(stopped);
        assert_eq!(text, "Hello ");
        assert_eq!(seen.concat(), "Hello ");
        assert!(seen.iter().all(|s| !s.contains('E')));
    }

    #[test]
    fn text_that_only_looked_like_a_stop_is_released() {
        let (seen, text, stopped) = scan(&["END"], &["The E", "ast"]);
        assert!(!stopped);
        assert_eq!(text, "The East");
        assert_eq!(seen.concat(), "The East");
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        let (_, text, stopped) = scan(&["\n\n", "User:"], &["one User: two\n\nthree"]);
        assert!(stopped);
        assert_eq!(text, "one ");
    }

    #[test]
    fn the_search_for_a_stop_starts_on_a_character() {
        // Released "日日" is 6 bytes; a 2-byte stop would start its search
        // at byte 4, inside the second character.
        let (seen, text, stopped) = scan(&["ab"], &["日日", "xab"]);
        assert!(stopped);
        assert_eq!(text, "日日x");
        assert_eq!(seen.concat(), "日日x");
    }

    #[test]
    fn holding_back_respects_characters() {
        assert_eq!(held_back("café", "é!"), 2);
        assert_eq!(held_back("abc", "xyz"), 0);
        assert_eq!(held_back("ab", "bcd"), 1);
    }
}
