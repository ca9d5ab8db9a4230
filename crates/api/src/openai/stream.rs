//! A run's events as the Responses streaming events, in the order the
//! SDKs' strict stream helper checks: `response.created` first, every item
//! added before its parts and deltas, `output_index` and `content_index`
//! pointing at what was added, one terminal event last.
//!
//! The renderer is a pure fold over the run's events (persisted ones, and
//! text deltas while the run is live), numbering what it emits from 0, so
//! replaying a run's events renders the same stream again: a client resumes
//! with `starting_after` by dropping what it has seen.

use super::items;
use super::response;
use roster_core::event::RunEvent;
use roster_core::item::{ItemContent, ToolCall};
use roster_core::run::{Run, RunStatus};
use serde_json::{json, Value};
use std::collections::HashMap;

struct OpenMessage {
    index: usize,
    id: String,
    text: String,
    /// The model call was retried after part of it streamed.
    reset: bool,
}

pub struct Renderer {
    run: Run,
    next: u64,
    /// Output items added so far, by `output_index`.
    added: usize,
    open: Option<OpenMessage>,
    /// The newest session item seen: an assistant reply being streamed
    /// will be the next (a session runs one run at a time).
    last_seq: i64,
    inputs_left: usize,
    /// Calls Roster runs, waiting for their results: call id -> (index,
    /// reply seq, position in the reply, the call).
    running: HashMap<String, (usize, i64, usize, ToolCall)>,
}

impl Renderer {
    pub fn new(run: Run) -> Self {
        let inputs_left = response::input_count(&run);
        Self {
            run,
            next: 0,
            added: 0,
            open: None,
            last_seq: 0,
            inputs_left,
            running: HashMap::new(),
        }
    }

    fn emit(&mut self, kind: &str, mut body: Value) -> Value {
        if let Some(object) = body.as_object_mut() {
            object.insert("type".into(), Value::String(kind.to_owned()));
            object.insert("sequence_number".into(), json!(self.next));
        }
        self.next += 1;
        body
    }

    /// `response.created` and `response.in_progress`, with the response as
    /// it stands (no output yet).
    pub fn start(&mut self, snapshot: &Value) -> Vec<Value> {
        let mut snapshot = snapshot.clone();
        snapshot["output"] = json!([]);
        if !matches!(snapshot["status"].as_str(), Some("queued")) {
            snapshot["status"] = json!("in_progress");
        }
        snapshot["usage"] = Value::Null;
        let created = self.emit("response.created", json!({"response": snapshot.clone()}));
        snapshot["status"] = json!("in_progress");
        let progress = self.emit("response.in_progress", json!({"response": snapshot}));
        vec![created, progress]
    }

    pub fn on_event(&mut self, event: &RunEvent) -> Vec<Value> {
        match event {
            RunEvent::TextDelta { delta, .. } => self.delta(delta),
            RunEvent::TextReset { .. } => {
                if let Some(open) = &mut self.open {
                    open.reset = true;
                }
                Vec::new()
            }
            RunEvent::Item { item, chunks } => {
                let out = if self.inputs_left > 0 {
                    self.inputs_left -= 1;
                    Vec::new()
                } else {
                    let mut out = self.replayed_text(item.seq, &item.content, chunks);
                    out.extend(self.item(item.seq, &item.content));
                    out
                };
                self.last_seq = self.last_seq.max(item.seq);
                out
            }
            _ => Vec::new(),
        }
    }

    fn open_message(&mut self, id: String) -> Vec<Value> {
        let index = self.added;
        self.added += 1;
        let mut item = items::output_message(0, "", "in_progress");
        item["id"] = json!(id);
        item["content"] = json!([]);
        let added = self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        let part = self.emit(
            "response.content_part.added",
            json!({"item_id": id, "output_index": index, "content_index": 0,
                   "part": {"type": "output_text", "text": "", "annotations": []}}),
        );
        self.open = Some(OpenMessage {
            index,
            id,
            text: String::new(),
            reset: false,
        });
        vec![added, part]
    }

    fn delta(&mut self, delta: &str) -> Vec<Value> {
        let mut out = Vec::new();
        if self.open.is_none() {
            out = self.open_message(items::message_id(self.last_seq + 1));
        }
        let Some(open) = &mut self.open else {
            return out;
        };
        open.text.push_str(delta);
        let (id, index) = (open.id.clone(), open.index);
        out.push(self.emit(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0,
                   "delta": delta, "logprobs": []}),
        ));
        out
    }

    /// A stored reply not seen streaming: its text in the pieces it
    /// streamed in, so the replay numbers events as the live stream did.
    fn replayed_text(&mut self, seq: i64, content: &ItemContent, chunks: &[u32]) -> Vec<Value> {
        let ItemContent::AssistantMessage { text, .. } = content else {
            return Vec::new();
        };
        if self.open.is_some() || chunks.is_empty() {
            return Vec::new();
        }
        let mut out = self.open_message(items::message_id(seq));
        let mut at = 0usize;
        for &len in chunks {
            let end = at.saturating_add(len as usize).min(text.len());
            let Some(piece) = text.get(at..end) else {
                break;
            };
            if !piece.is_empty() {
                out.extend(self.delta(piece));
            }
            at = end;
        }
        out
    }

    /// Ends the open message with `text` (its whole final text).
    fn close_message(&mut self, text: &str, status: &str) -> Vec<Value> {
        let Some(open) = self.open.take() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if !open.reset {
            if let Some(rest) = text.strip_prefix(open.text.as_str()) {
                if !rest.is_empty() {
                    out.push(self.emit(
                        "response.output_text.delta",
                        json!({"item_id": open.id, "output_index": open.index,
                               "content_index": 0, "delta": rest, "logprobs": []}),
                    ));
                }
            }
        }
        let at = json!({"item_id": open.id, "output_index": open.index, "content_index": 0});
        let mut done = at.clone();
        done["text"] = json!(text);
        done["logprobs"] = json!([]);
        out.push(self.emit("response.output_text.done", done));
        let mut part = at;
        part["part"] = items::output_text(text);
        out.push(self.emit("response.content_part.done", part));
        let mut item = items::output_message(0, text, status);
        item["id"] = json!(open.id);
        out.push(self.emit(
            "response.output_item.done",
            json!({"output_index": open.index, "item": item}),
        ));
        out
    }

    fn item(&mut self, seq: i64, content: &ItemContent) -> Vec<Value> {
        match content {
            ItemContent::AssistantMessage { text, tool_calls } => {
                let mut out = Vec::new();
                if self.open.is_none() && (!text.is_empty() || tool_calls.is_empty()) {
                    out.extend(self.open_message(items::message_id(seq)));
                }
                out.extend(self.close_message(text, "completed"));
                for (position, call) in tool_calls.iter().enumerate() {
                    let index = self.added;
                    self.added += 1;
                    if response::is_function(&self.run, &call.name) {
                        out.extend(self.function_call(seq, position, index, call));
                    } else {
                        let item = items::ran_call(seq, position, call, None);
                        out.push(self.emit(
                            "response.output_item.added",
                            json!({"output_index": index, "item": item}),
                        ));
                        self.running
                            .insert(call.id.clone(), (index, seq, position, call.clone()));
                    }
                }
                out
            }
            ItemContent::ToolResult { call_id, .. } => match self.running.remove(call_id) {
                Some((index, reply, position, call)) => {
                    let item = items::ran_call(reply, position, &call, Some(content));
                    vec![self.emit(
                        "response.output_item.done",
                        json!({"output_index": index, "item": item}),
                    )]
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn function_call(
        &mut self,
        seq: i64,
        position: usize,
        index: usize,
        call: &ToolCall,
    ) -> Vec<Value> {
        let mut item = items::function_call(seq, position, call, "in_progress");
        item["arguments"] = json!("");
        let id = item["id"].clone();
        let added = self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        let delta = self.emit(
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": index, "delta": call.arguments}),
        );
        let done = self.emit(
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": index, "arguments": call.arguments, "name": call.name}),
        );
        let item = items::function_call(seq, position, call, "completed");
        let finished = self.emit(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        vec![added, delta, done, finished]
    }

    /// The terminal event, with the final response; items still open are
    /// closed first (a stopped run leaves them incomplete).
    pub fn finish(&mut self, status: RunStatus, final_response: Value) -> Vec<Value> {
        let mut out = Vec::new();
        if let Some(open) = &self.open {
            let text = open.text.clone();
            out.extend(self.close_message(&text, "incomplete"));
        }
        let mut running: Vec<_> = self.running.drain().map(|(_, v)| v).collect();
        running.sort_by_key(|(index, ..)| *index);
        for (index, seq, position, call) in running {
            let mut item = items::ran_call(seq, position, &call, None);
            item["status"] = json!("incomplete");
            out.push(self.emit(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            ));
        }
        let kind = match status {
            RunStatus::Completed => "response.completed",
            _ => "response.failed",
        };
        out.push(self.emit(kind, json!({"response": final_response})));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use roster_core::item::Item;

    fn run() -> Run {
        serde_json::from_value(json!({
            "id": "run_01a252ec0ff57723b92f2e76bb3b7fac",
            "session_id": "ses_01a252ec0ff3710492c6d04051ce5520",
            "status": "running", "input": "hi", "output": null, "error": null,
            "agent_version": 1, "created_at": "2026-12-07T00:00:00Z",
            "started_at": null, "finished_at": null,
        }))
        .unwrap()
    }

    fn item(seq: i64, content: ItemContent, chunks: Vec<u32>) -> RunEvent {
        RunEvent::Item {
            item: Item {
                seq,
                run_id: None,
                content,
                tokens: 1,
                created_at: chrono::Utc::now(),
            },
            chunks,
        }
    }

    fn render(events: &[RunEvent]) -> Vec<Value> {
        let mut renderer = Renderer::new(run());
        let mut out = renderer.start(&json!({"id": "r", "status": "in_progress"}));
        for event in events {
            out.extend(renderer.on_event(event));
        }
        out.extend(renderer.finish(RunStatus::Completed, json!({"id": "r"})));
        out
    }

    #[test]
    fn a_replay_numbers_events_as_the_live_stream_did() {
        let input = item(1, ItemContent::UserMessage { text: "hi".into() }, vec![]);
        let reply = item(
            2,
            ItemContent::AssistantMessage {
                text: "echo: hi".into(),
                tool_calls: vec![],
            },
            vec![5, 3],
        );
        let delta = |d: &str| RunEvent::TextDelta {
            step: 1,
            delta: d.into(),
        };
        let live = render(&[input.clone(), delta("echo:"), delta(" hi"), reply.clone()]);
        let replayed = render(&[input, reply]);
        assert_eq!(live, replayed);
        let numbers: Vec<u64> = live
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (0..live.len() as u64).collect::<Vec<_>>());
        let kinds: Vec<&str> = live.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"response.created"));
        assert_eq!(kinds.last(), Some(&"response.completed"));
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "response.output_text.delta")
                .count(),
            2
        );
        assert_eq!(
            live[2]["item"]["id"], "msg_2",
            "the id the reply's item gets"
        );
    }

    #[test]
    fn the_agents_calls_are_not_the_callers_functions() {
        let reply = item(
            2,
            ItemContent::AssistantMessage {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "memory_append".into(),
                    arguments: "{}".into(),
                }],
            },
            vec![],
        );
        let result = item(
            3,
            ItemContent::ToolResult {
                call_id: "c".into(),
                name: "memory_append".into(),
                output: "done".into(),
                is_error: false,
            },
            vec![],
        );
        let input = item(1, ItemContent::UserMessage { text: "hi".into() }, vec![]);
        let out = render(&[input, reply, result]);
        let done: Vec<&Value> = out
            .iter()
            .filter(|e| e["type"] == "response.output_item.done")
            .collect();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0]["item"]["type"], "mcp_call");
        assert_eq!(done[0]["item"]["output"], "done");
    }
}
