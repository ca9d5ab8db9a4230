//! Running the model: prompt in, tokens out, streamed as text.

use crate::constrain::{CallConstraint, Constraints};
use crate::detokenize::Detokenizer;
use crate::gguf::{self, ModelInfo, Network};
use crate::template::{self, Message};
use crate::tools::{Offer, ToolCall, CALL_START};
use crate::vocabulary::Vocabulary;
use crate::{tokenizer, LocalError};
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling as Sampler};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// The model called tools; [`Generated::tool_calls`] has the calls.
    ToolCalls,
}

/// An answer and what it cost.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The prose of the answer (without the calls).
    pub text: String,
    /// Calls of offered tools, each valid for its tool's schema.
    pub tool_calls: Vec<ToolCall>,
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
    /// Shared with the tool-call grammar's vocabulary.
    tokenizer: Arc<Tokenizer>,
    network: Mutex<Network>,
    pool: rayon::ThreadPool,
    constraints: Constraints,
}

impl Model {
    /// Loads `path` and prepares a pool of `threads` threads for it. On two
    /// cores one thread decodes faster than two: a step is a row of tiny
    /// matrix products that stall whenever a worker is descheduled.
    pub fn load(path: &Path, threads: usize) -> Result<Self, LocalError> {
        let loaded = gguf::load(path)?;
        let tokenizer = Arc::new(tokenizer::from_metadata(&loaded.metadata).map_err(
            |e| match e {
                LocalError::Load { message, .. } => LocalError::Load {
                    path: path.display().to_string(),
                    message,
                },
                other => other,
            },
        )?);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("roster-local-{i}"))
            .build()
            .map_err(|e| LocalError::Load {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let vocabulary =
            Vocabulary::new(&loaded.metadata, tokenizer.clone(), &loaded.info.stop_ids);
        Ok(Self {
            constraints: Constraints::new(vocabulary),
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

    /// Continues `prompt`, calling `on_text` with each piece of new text
    /// (never any of a tool call). With tools offered, the model may call
    /// them in the [`crate::tools`] format, held to their schemas (and must,
    /// when the offer says so). Checks `cancelled` between tokens.
    pub fn generate(
        &self,
        prompt: &str,
        offer: Offer<'_>,
        sampling: &Sampling,
        cancelled: &AtomicBool,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generated, LocalError> {
        let forced;
        let prompt = if offer.required && !offer.tools.is_empty() {
            forced = format!("{prompt}{CALL_START}");
            forced.as_str()
        } else {
            prompt
        };
        let mut prompt_ids = self.encode(prompt)?;
        if let Some(bos) = self.info.bos_id {
            if prompt_ids.first() != Some(&bos) {
                prompt_ids.insert(0, bos);
            }
        }
        let room = self.info.context.saturating_sub(prompt_ids.len());
        if room == 0 {
            return Err(LocalError::ContextOverflow {
                prompt: prompt_ids.len(),
                reserve: 1,
                context: self.info.context,
            });
        }
        let limit = sampling.max_tokens.min(room);
        // Built before the first token, so a schema the engine refuses
        // fails the call at once rather than after the prose.
        let constraint = if offer.tools.is_empty() {
            None
        } else {
            Some(self.constraints.for_tools(offer.tools)?)
        };
        let required = offer.required && constraint.is_some();
        self.pool.install(|| {
            self.run(
                &prompt_ids,
                limit,
                sampling,
                (constraint, required),
                cancelled,
                on_text,
            )
        })
    }

    fn run(
        &self,
        prompt_ids: &[u32],
        limit: usize,
        sampling: &Sampling,
        (mut constraint, required): (Option<CallConstraint>, bool),
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
        // The call marker is watched for like a stop sequence, so none of
        // it is streamed as prose.
        let mut stops = sampling.stop.clone();
        let call_marker = constraint.as_ref().map(|_| {
            stops.push(CALL_START.to_owned());
            stops.len() - 1
        });
        let mut output = StopScan::new(&stops);
        let mut detokenizer = Detokenizer::new(&self.tokenizer);
        let mut generated: Vec<u32> = Vec::new();
        let mut finish = Finish::Length;
        // Set once the model writes the call marker (at once when a call
        // is required: the prompt ends with the marker).
        let mut calling: Option<CallConstraint> = if required { constraint.take() } else { None };
        let mut tool_calls = Vec::new();
        while generated.len() < limit {
            if cancelled.load(Ordering::Relaxed) {
                return Err(LocalError::Cancelled);
            }
            // The penalty applies inside calls too: a small model left to
            // fill a free-text argument otherwise repeats one phrase until
            // the token limit (seen with SmolLM2-135M).
            if sampling.repeat_penalty > 1.0 && !generated.is_empty() {
                let recent = &generated[generated.len().saturating_sub(REPEAT_WINDOW)..];
                logits = candle_transformers::utils::apply_repeat_penalty(
                    &logits,
                    sampling.repeat_penalty,
                    recent,
                )
                .map_err(LocalError::inference)?;
            }
            if let Some(call) = calling.as_mut() {
                let mut values: Vec<f32> = logits.to_vec1().map_err(LocalError::inference)?;
                call.mask(&mut values)?;
                let size = values.len();
                logits =
                    Tensor::from_vec(values, size, &Device::Cpu).map_err(LocalError::inference)?;
            }
            let token = sampler.sample(&logits).map_err(LocalError::inference)?;
            if calling.is_none() && self.info.stop_ids.contains(&token) {
                finish = Finish::Stop;
                break;
            }
            generated.push(token);
            if let Some(call) = calling.as_mut() {
                call.accept(token)?;
                if call.finished() {
                    tool_calls = call.calls()?;
                    finish = Finish::ToolCalls;
                    break;
                }
            } else if let Some(delta) = detokenizer.push(token) {
                match output.push(&delta, on_text) {
                    Some(hit) if Some(hit) == call_marker => {
                        let mut call = constraint.take().ok_or_else(|| {
                            LocalError::Constraint("the call marker was seen twice".into())
                        })?;
                        call.feed(&output.after_stop);
                        if call.finished() {
                            tool_calls = call.calls()?;
                            finish = Finish::ToolCalls;
                            break;
                        }
                        calling = Some(call);
                    }
                    Some(_) => {
                        finish = Finish::Stop;
                        break;
                    }
                    None => {}
                }
            }
            if generated.len() < limit {
                let position = prompt_ids.len() + generated.len() - 1;
                logits = step(&mut network, &[token], position)?;
            }
        }
        if let Some(call) = calling.as_ref().filter(|_| finish == Finish::Length) {
            return Err(LocalError::UnfinishedToolCall {
                limit,
                tail: call.tail(60),
            });
        }
        if finish == Finish::Length {
            if let Some(rest) = detokenizer.finish() {
                if output.push(&rest, on_text).is_some() {
                    finish = Finish::Stop;
                }
            }
        }
        output.flush(on_text);
        Ok(Generated {
            text: output.text,
            tool_calls,
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
    /// What came after the stop sequence in the delta that completed it.
    after_stop: String,
}

impl<'s> StopScan<'s> {
    fn new(stops: &'s [String]) -> Self {
        Self {
            stops,
            text: String::new(),
            released: 0,
            after_stop: String::new(),
        }
    }

    /// Adds text; the index of the stop sequence that appeared, if one did
    /// (the answer is cut before it).
    fn push(&mut self, delta: &str, on_text: &mut (dyn FnMut(&str) + Send)) -> Option<usize> {
        self.text.push_str(delta);
        let first_stop = self
            .stops
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .filter_map(|(index, s)| {
                // A stop can only begin in what was held back, at most its
                // own length before the released end.
                let mut from = self.released.saturating_sub(s.len());
                while !self.text.is_char_boundary(from) {
                    from -= 1;
                }
                self.text[from..]
                    .find(s.as_str())
                    .map(|at| (at + from, index, s.len()))
            })
            .min();
        if let Some((at, index, length)) = first_stop {
            self.after_stop = self.text[at + length..].to_owned();
            self.text.truncate(at);
            self.flush(on_text);
            return Some(index);
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
        None
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
            if scan
                .push(delta, &mut |t: &str| seen.push(t.to_owned()))
                .is_some()
            {
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
