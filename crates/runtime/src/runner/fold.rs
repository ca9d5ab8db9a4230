//! Folding old history into the session's running summary.
//!
//! When the history that is not yet summarised outgrows the context budget
//! (or has fallen out of the bounded tail the runner reads), its oldest part
//! is merged into the running summary by a model call, journaled as a
//! `summary` step together with the summary's new version. The window then
//! starts after the summary, so the context holds the instructions, the
//! summary, and recent history that fits. Nothing is ever deleted: the full
//! history stays stored and searchable (`conversation_search`).
//!
//! A fold never splits a tool call from its results, never takes the
//! current run's own items, and reads a bounded number of items, so its cost
//! does not grow with the session. No item goes to the summariser whole if
//! it is larger than a quarter of the context budget (a huge input or tool
//! result is cut, with a note), so the summary call fits the model too. A failed fold is recorded in the ledger
//! and the run goes on with the oldest items simply left out.

use super::RunState;
use crate::context::cut;
use crate::error::RuntimeError;
use crate::model_call::Admission;
use roster_core::item::{Item, ItemContent};
use roster_core::machine::{StepOutput, SummaryOutput};
use roster_core::run::StepKind;
use roster_core::tokens::estimate_tokens;
use roster_models::{ChatMessage, ChatRequest};
use roster_store::{NewSummary, SessionSummary, StepWrite};
use serde_json::json;

/// Most items one fold reads from beyond the tail.
const BACKLOG_ITEMS: i64 = 100;
/// Most of a tool result or call arguments quoted to the summariser.
const QUOTE_TOKENS: u32 = 500;

const INSTRUCTIONS: &str = "You maintain the running summary of a long conversation between a user and an AI assistant. Merge the new part of the conversation into the summary. Keep every fact, decision, name, number, date, preference, open task and promise that may matter later; drop greetings and repetition. Write compact third-person notes. Reply with the updated summary only.";

impl RunState<'_> {
    /// The session's running summary, read once per run and kept current.
    pub(super) async fn summary(&mut self) -> Result<Option<SessionSummary>, RuntimeError> {
        if let Some(summary) = &self.summary {
            return Ok(summary.clone());
        }
        let summary = self
            .services
            .store
            .latest_summary(self.tenant, &self.session.id)
            .await?;
        self.summary = Some(summary.clone());
        Ok(summary)
    }

    /// Folds the oldest unsummarised history into the summary when it does
    /// not fit `history_budget` or lies outside `tail`; does nothing when
    /// summaries are off or a fold already failed in this run.
    pub(super) async fn fold_if_needed(
        &mut self,
        tail: &[Item],
        history_budget: u32,
    ) -> Result<(), RuntimeError> {
        if !self.agent.config.context.summarize || self.fold_failed {
            return Ok(());
        }
        let through = self.summary().await?.map_or(0, |s| s.through_seq);
        let unsummarised: Vec<&Item> = tail.iter().filter(|i| i.seq > through).collect();
        let backlog = tail.len() >= super::window_limit()
            && tail.first().is_some_and(|first| first.seq > through + 1);
        let tokens: u64 = unsummarised.iter().map(|i| u64::from(i.tokens)).sum();
        if !backlog && tokens <= u64::from(history_budget) {
            return Ok(());
        }
        let candidates: Vec<Item> = if backlog {
            // Items left the tail unsummarised: fold the oldest batch, into
            // the tail too, so the next fold is a batch later rather than
            // on every turn.
            self.services
                .store
                .history_after(self.tenant, &self.session.id, through, BACKLOG_ITEMS)
                .await?
        } else {
            // Keep the newest half of the budget; fold what is older.
            let keep = u64::from(history_budget / 2);
            let mut kept = 0u64;
            let mut cut = unsummarised.len();
            for (index, item) in unsummarised.iter().enumerate().rev() {
                if kept + u64::from(item.tokens) > keep {
                    break;
                }
                kept += u64::from(item.tokens);
                cut = index;
            }
            unsummarised[..cut].iter().map(|i| (*i).clone()).collect()
        };
        let limit = u64::from(self.agent.config.context_tokens) * 3 / 4;
        let fold = fold_range(
            &candidates,
            &self.run.id,
            tail,
            limit,
            item_cap(self.agent.config.context_tokens),
        );
        if fold.is_empty() {
            return Ok(());
        }
        self.fold(fold).await
    }

    async fn fold(&mut self, items: Vec<Item>) -> Result<(), RuntimeError> {
        let Some(last) = items.last().map(|i| i.seq) else {
            return Ok(());
        };
        let first = items.first().map_or(last, |i| i.seq);
        let previous = self.summary().await?.map(|s| s.text);
        let route = match self.agent.config.context.summary_route(&self.agent.config) {
            Ok(route) => route,
            Err(e) => {
                tracing::warn!(run = %self.run.id, error = %e, "no summary route; history is trimmed instead");
                self.fold_failed = true;
                return Ok(());
            }
        };
        let budget = self.agent.config.context_tokens;
        let request = ChatRequest {
            tool_choice: Default::default(),
            model: String::new(),
            system: INSTRUCTIONS.to_owned(),
            messages: vec![ChatMessage::User {
                text: format!(
                    "Summary so far:\n{}\n\nConversation to merge (items #{first} to #{last}):\n{}",
                    previous.as_deref().unwrap_or("(none yet)"),
                    transcript(&items, item_cap(budget))
                ),
            }],
            tools: Vec::new(),
            max_tokens: Some((budget / 4).clamp(256, 2_048)),
            stream: false,
        };
        let n = self.next_step;
        let (actor, user) = self.actor_and_user();
        let chain = format!("{actor} > agent:{}", self.agent.name);
        let admission = {
            let call = self.call_for(&user, &chain, n);
            self.model_call().admit(&route, &call).await?
        };
        let admitted = match admission {
            Admission::Admitted(admitted) => admitted,
            Admission::Refused {
                code,
                message,
                ledger,
            } => {
                tracing::warn!(run = %self.run.id, code, %message, "no summary call allowed; history is trimmed instead");
                self.pending_ledger.extend(ledger);
                self.fold_failed = true;
                return Ok(());
            }
        };
        self.route_decisions.extend(admitted.decisions.clone());
        let sent = {
            let call = self.call_for(&user, &chain, n);
            self.model_call()
                .send(admitted, request, &call, &self.cancel)
                .await
        };
        let (outcome, ledger) = (sent.answer, sent.ledger);
        let (response, target) = match outcome {
            Some(Ok(answer)) => answer,
            Some(Err(e)) => {
                tracing::warn!(run = %self.run.id, error = %e, "summarising the session failed; history is trimmed instead");
                self.pending_ledger.extend(ledger);
                self.fold_failed = true;
                return Ok(());
            }
            None => {
                self.pending_ledger.extend(ledger);
                return Ok(());
            }
        };
        // A summary may not crowd out the conversation it stands for.
        let text = cut_to_tokens(response.text.trim(), budget / 4);
        if text.is_empty() {
            tracing::warn!(run = %self.run.id, "the summariser answered with no text; history is trimmed instead");
            self.pending_ledger.extend(ledger);
            self.fold_failed = true;
            return Ok(());
        }
        let output = SummaryOutput {
            text: text.clone(),
            through_seq: last,
        };
        let mut write = self.journal();
        write.steps.push(StepWrite::Completed {
            n,
            kind: StepKind::Summary,
            input: json!({
                "route": target.to_string(),
                "from_seq": first,
                "through_seq": last,
                "items": items.len(),
            }),
            output: serde_json::to_value(StepOutput::Summary(output))
                .map_err(|e| RuntimeError::Invalid(e.to_string()))?,
        });
        write.summary = Some(NewSummary {
            through_seq: last,
            text: text.clone(),
            step: n,
        });
        write.ledger = ledger;
        self.commit(write).await?;
        self.next_step = n + 1;
        let version = self
            .summary
            .as_ref()
            .and_then(|s| s.as_ref().map(|s| s.version))
            .unwrap_or(0);
        self.summary = Some(Some(SessionSummary {
            version: version + 1,
            through_seq: last,
            text,
            run_id: Some(self.run.id.clone()),
            created_at: chrono::Utc::now(),
        }));
        Ok(())
    }
}

/// The most of one item a summary or extraction call is shown: a quarter
/// of the context budget.
pub(crate) fn item_cap(context_tokens: u32) -> u32 {
    (context_tokens / 4).max(64)
}

/// The prefix of `candidates` a fold may take: within `max_tokens` (each
/// item counted as the transcript shows it, at most `item_tokens`), none of
/// the current run's items, and never ending between a tool call and its
/// results (the first item left out must not be a result).
fn fold_range(
    candidates: &[Item],
    run: &roster_core::RunId,
    tail: &[Item],
    max_tokens: u64,
    item_tokens: u32,
) -> Vec<Item> {
    let mut end = candidates
        .iter()
        .position(|i| i.run_id.as_ref() == Some(run))
        .unwrap_or(candidates.len());
    let mut tokens = 0u64;
    for (index, item) in candidates[..end].iter().enumerate() {
        tokens += u64::from(item.tokens.min(item_tokens));
        if tokens > max_tokens && index > 0 {
            end = index;
            break;
        }
    }
    let is_result = |i: &Item| matches!(i.content, ItemContent::ToolResult { .. });
    // The item after the fold: the next candidate, or the tail's next item.
    let next_after = |end: usize| -> Option<&Item> {
        candidates.get(end).or_else(|| {
            let last = candidates.get(end.checked_sub(1)?)?.seq;
            tail.iter().find(|i| i.seq > last)
        })
    };
    // Pull results into the fold with their call, or drop the call.
    while end > 0 && next_after(end).is_some_and(is_result) {
        if end < candidates.len() && candidates[end].run_id.as_ref() != Some(run) {
            end += 1;
        } else {
            // The results lie beyond what may be folded: stop before the call.
            while end > 0 && is_result(&candidates[end - 1]) {
                end -= 1;
            }
            end = end.saturating_sub(1);
        }
    }
    candidates[..end].to_vec()
}

/// The items as a summariser or extractor reads them, each cut to at most
/// about `item_tokens` (tool results and arguments to less), with a note.
pub(crate) fn transcript(items: &[Item], item_tokens: u32) -> String {
    let quote_tokens = QUOTE_TOKENS.min(item_tokens);
    let whole = |text: &str, what: &str| cut(text, item_tokens, what);
    let quote = |text: &str, what: &str| cut(text, quote_tokens, what);
    let mut out = String::new();
    for item in items {
        let line = match &item.content {
            ItemContent::UserMessage { text } => {
                format!("#{} user: {}", item.seq, whole(text, "message"))
            }
            ItemContent::SystemNote { text } => {
                format!("#{} note: {}", item.seq, whole(text, "note"))
            }
            ItemContent::AssistantMessage { text, tool_calls } => {
                let calls: Vec<String> = tool_calls
                    .iter()
                    .map(|c| format!("{}({})", c.name, quote(&c.arguments, "argument list")))
                    .collect();
                let text = whole(text, "reply");
                if calls.is_empty() {
                    format!("#{} assistant: {text}", item.seq)
                } else {
                    format!(
                        "#{} assistant: {text} [calls {}]",
                        item.seq,
                        calls.join(", ")
                    )
                }
            }
            ItemContent::ToolResult {
                name,
                output,
                is_error,
                ..
            } => format!(
                "#{} {name} {}: {}",
                item.seq,
                if *is_error { "failed" } else { "returned" },
                quote(output, "tool result")
            ),
            // Not read by Roster, nor by the model.
            ItemContent::Opaque { .. } => continue,
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// At most about `tokens` tokens of `text`, cut on a character boundary.
fn cut_to_tokens(text: &str, tokens: u32) -> String {
    if estimate_tokens(text) <= tokens {
        return text.to_owned();
    }
    let mut end = (tokens as usize).saturating_mul(4).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::item::ToolCall;
    use roster_core::RunId;

    fn item(seq: i64, content: ItemContent, run: &RunId) -> Item {
        Item {
            seq,
            run_id: Some(run.clone()),
            tokens: content.token_estimate(),
            content,
            created_at: chrono::Utc::now(),
        }
    }

    fn user(seq: i64, run: &RunId) -> Item {
        item(seq, ItemContent::UserMessage { text: "q".into() }, run)
    }

    fn call(seq: i64, run: &RunId) -> Item {
        item(
            seq,
            ItemContent::AssistantMessage {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: format!("c{seq}"),
                    name: "t".into(),
                    arguments: "{}".into(),
                }],
            },
            run,
        )
    }

    fn result(seq: i64, run: &RunId) -> Item {
        item(
            seq,
            ItemContent::ToolResult {
                call_id: format!("c{}", seq - 1),
                name: "t".into(),
                output: "r".into(),
                is_error: false,
            },
            run,
        )
    }

    #[test]
    fn a_fold_takes_results_with_their_call_and_spares_the_current_run() {
        let old = RunId::generate();
        let now = RunId::generate();
        // Candidates end on a call whose result is the next candidate.
        let items = vec![user(1, &old), call(2, &old), result(3, &old), user(4, &old)];
        let seqs = |v: Vec<Item>| v.iter().map(|i| i.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(fold_range(&items[..2], &now, &items, u64::MAX, u32::MAX)),
            [1]
        );
        assert_eq!(
            seqs(fold_range(&items, &now, &items, u64::MAX, u32::MAX)),
            [1, 2, 3, 4]
        );
        // The current run's items are never folded.
        let mixed = vec![user(1, &old), user(2, &now), user(3, &now)];
        assert_eq!(
            seqs(fold_range(&mixed, &now, &mixed, u64::MAX, u32::MAX)),
            [1]
        );
        // A token limit that would cut between call and result pulls the
        // result in (the limit is a target, the pairing is a rule).
        let limited = fold_range(&items, &now, &items, 5, u32::MAX);
        assert!(!matches!(
            items.get(limited.len()).map(|i| &i.content),
            Some(ItemContent::ToolResult { .. })
        ));
    }

    #[test]
    fn long_summaries_are_cut() {
        assert_eq!(cut_to_tokens("short", 100), "short");
        assert!(cut_to_tokens(&"x".repeat(10_000), 100).len() <= 400);
    }
}
