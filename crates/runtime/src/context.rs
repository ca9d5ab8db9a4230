//! Context assembly: instructions + pinned memory blocks + the session's
//! running summary + recalled memories and passages + as much recent
//! history (after the summary) as fits the token budget.
//!
//! Reads only the session's tail (at most [`MAX_CONTEXT_ITEMS`] items by
//! the `(session, seq)` index), so a turn costs the same in a session of ten
//! items and one of ten thousand.

use roster_core::item::{Item, ItemContent};
use roster_core::knowledge::Passage;
use roster_core::memory::MemoryBlock;
use roster_core::record::MemoryRecord;
use roster_core::tokens::estimate_tokens;
use roster_models::{ChatMessage, ToolSpec};
use roster_store::SessionSummary;
use std::collections::HashSet;

/// Upper bound on history items read per model call.
pub const MAX_CONTEXT_ITEMS: i64 = 200;

pub(crate) fn system_prompt(
    instructions: &str,
    blocks: &[MemoryBlock],
    recalled: &[MemoryRecord],
    passages: &[Passage],
    summary: Option<&SessionSummary>,
) -> String {
    let mut prompt = String::with_capacity(instructions.len() + 256);
    prompt.push_str(instructions);
    if let Some(summary) = summary {
        prompt.push_str(&format!(
            "\n\n<conversation_summary>\nSummary of this conversation up to item #{} (older messages are no longer shown; conversation_search finds them):\n{}\n</conversation_summary>",
            summary.through_seq, summary.text
        ));
    }
    if !blocks.is_empty() {
        prompt.push_str(
            "\n\n<memory_blocks>\nThese blocks are your pinned memory. Edit them with memory_append and memory_replace.\n",
        );
        for block in blocks {
            let used = block.value.chars().count();
            prompt.push_str(&format!(
                "<{label} chars=\"{used}/{limit}\">\n{value}\n</{label}>\n",
                label = block.label,
                limit = block.limit,
                value = block.value
            ));
        }
        prompt.push_str("</memory_blocks>");
    }
    if !recalled.is_empty() {
        let records: Vec<&MemoryRecord> = recalled.iter().collect();
        prompt.push_str(
            "\n\n<recalled_memories>\nLong-term memories that may be relevant to this request (memory_search finds more):\n",
        );
        prompt.push_str(&crate::runner::render_records(&records));
        prompt.push_str("\n</recalled_memories>");
    }
    if !passages.is_empty() {
        let passages: Vec<&Passage> = passages.iter().collect();
        prompt.push_str(
            "\n\n<knowledge>\nPassages from company documents that may answer this request. When you use one, cite it as given (source:path and location). knowledge_search finds more.\n",
        );
        prompt.push_str(&crate::runner::render_passages(&passages));
        prompt.push_str("\n</knowledge>");
    }
    prompt
}

/// Picks the newest items that fit `budget` tokens and turns them into chat
/// messages, keeping every tool call next to its result. The newest turn is
/// always sent, even when it alone is over the budget.
/// Tokens the system prompt and the tool specs take from the budget.
pub(crate) fn fixed_tokens(system: &str, tools: &[ToolSpec]) -> u32 {
    estimate_tokens(system).saturating_add(
        tools
            .iter()
            .map(|t| {
                estimate_tokens(&t.description)
                    .saturating_add(estimate_tokens(&t.parameters.to_string()))
            })
            .sum::<u32>(),
    )
}

pub(crate) fn history(
    items: &[Item],
    budget: u32,
    system: &str,
    tools: &[ToolSpec],
) -> Vec<ChatMessage> {
    let mut remaining = budget.saturating_sub(fixed_tokens(system, tools));
    let mut start = items.len();
    for (index, item) in items.iter().enumerate().rev() {
        if item.tokens > remaining {
            break;
        }
        remaining -= item.tokens;
        start = index;
    }
    let is_result = |i: &Item| matches!(i.content, ItemContent::ToolResult { .. });
    // The window must not open on results whose call fell outside it.
    let mut start = items[start..]
        .iter()
        .position(|i| !is_result(i))
        .map_or(items.len(), |p| start + p);
    if start == items.len() {
        // Not even the newest turn fits: send it anyway (from its input or
        // its call, with the results after it) and let the provider judge
        // its size. An empty conversation would hide the input from the model.
        start = items
            .iter()
            .rposition(|i| !is_result(i))
            .unwrap_or(items.len());
    }
    let window = &items[start..];

    let answered: HashSet<&str> = window
        .iter()
        .filter_map(|i| match &i.content {
            ItemContent::ToolResult { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut messages = Vec::with_capacity(window.len());
    for item in window {
        match &item.content {
            ItemContent::UserMessage { text } => {
                messages.push(ChatMessage::User { text: text.clone() })
            }
            ItemContent::SystemNote { text } => messages.push(ChatMessage::User {
                text: format!("[system note] {text}"),
            }),
            ItemContent::ToolResult {
                call_id,
                name,
                output,
                is_error,
            } => messages.push(ChatMessage::ToolResult {
                call_id: call_id.clone(),
                name: name.clone(),
                output: output.clone(),
                is_error: *is_error,
            }),
            ItemContent::AssistantMessage { text, tool_calls } => {
                messages.push(ChatMessage::Assistant {
                    text: text.clone(),
                    tool_calls: tool_calls.clone(),
                });
                // Defensive: providers reject a call with no result. The
                // journal never leaves one, but old or imported data might.
                for call in tool_calls
                    .iter()
                    .filter(|c| !answered.contains(c.id.as_str()))
                {
                    messages.push(ChatMessage::ToolResult {
                        call_id: call.id.clone(),
                        name: call.name.clone(),
                        output: "no result was recorded for this call".into(),
                        is_error: true,
                    });
                }
            }
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::item::ToolCall;

    fn item(seq: i64, content: ItemContent) -> Item {
        Item {
            seq,
            run_id: None,
            tokens: content.token_estimate(),
            content,
            created_at: chrono::Utc::now(),
        }
    }

    fn conversation() -> Vec<Item> {
        let call = ToolCall {
            id: "c1".into(),
            name: "t".into(),
            arguments: "{}".into(),
        };
        vec![
            item(
                1,
                ItemContent::UserMessage {
                    text: "a".repeat(400),
                },
            ),
            item(
                2,
                ItemContent::AssistantMessage {
                    text: String::new(),
                    tool_calls: vec![call],
                },
            ),
            item(
                3,
                ItemContent::ToolResult {
                    call_id: "c1".into(),
                    name: "t".into(),
                    output: "r".repeat(400),
                    is_error: false,
                },
            ),
            item(
                4,
                ItemContent::AssistantMessage {
                    text: "done".into(),
                    tool_calls: vec![],
                },
            ),
            item(
                5,
                ItemContent::UserMessage {
                    text: "next".into(),
                },
            ),
        ]
    }

    #[test]
    fn everything_fits_a_large_budget() {
        assert_eq!(history(&conversation(), 10_000, "", &[]).len(), 5);
    }

    #[test]
    fn a_window_never_opens_on_an_orphan_result() {
        // Budget fits items 3..5 but not the call at 2: the result goes too.
        let messages = history(&conversation(), 120, "", &[]);
        assert_eq!(messages.len(), 2);
        assert!(matches!(messages[0], ChatMessage::Assistant { .. }));
    }

    #[test]
    fn the_newest_turn_is_sent_even_over_budget() {
        let messages = history(&conversation(), 1, "", &[]);
        assert_eq!(
            messages,
            vec![ChatMessage::User {
                text: "next".into()
            }]
        );
        // Ending on a result too large for the budget: its call comes along.
        let items = &conversation()[..3];
        let messages = history(items, 1, "", &[]);
        assert_eq!(messages.len(), 2);
        assert!(matches!(messages[0], ChatMessage::Assistant { .. }));
        assert!(matches!(messages[1], ChatMessage::ToolResult { .. }));
        assert!(history(&[], 1, "", &[]).is_empty());
    }

    #[test]
    fn unanswered_calls_get_a_placeholder_result() {
        let mut items = conversation();
        items.remove(2);
        let messages = history(&items, 10_000, "", &[]);
        assert!(matches!(
            &messages[2],
            ChatMessage::ToolResult { is_error: true, .. }
        ));
    }

    #[test]
    fn blocks_are_pinned_in_the_system_prompt() {
        let block = MemoryBlock {
            label: "human".into(),
            owner: roster_core::blocks::BlockOwner::Agent,
            value: "Likes tea".into(),
            limit: 50,
            version: 1,
            updated_at: chrono::Utc::now(),
        };
        let prompt = system_prompt("Be brief.", &[block], &[], &[], None);
        assert!(prompt.starts_with("Be brief."));
        assert!(prompt.contains("<human chars=\"9/50\">\nLikes tea\n</human>"));
    }
}
