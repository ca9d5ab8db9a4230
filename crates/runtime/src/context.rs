//! Context assembly: instructions + pinned memory blocks + the session's
//! running summary + recalled memories and passages + as much recent
//! history (after the summary) as fits the token budget.
//!
//! Reads only the session's tail (at most [`MAX_CONTEXT_ITEMS`] items by
//! the `(session, seq)` index), so a turn costs the same in a session of ten
//! items and one of ten thousand.
//!
//! Nothing goes to a model whole if it does not fit: an item larger than
//! what the budget leaves is cut, with a note saying so (the item itself
//! stays stored whole). [`input_budget`] is what an input may take, checked
//! before a run is made.

use roster_core::agent::AgentConfig;
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
        prompt.push_str(&render_records(&records));
        prompt.push_str("\n</recalled_memories>");
    }
    if !passages.is_empty() {
        let passages: Vec<&Passage> = passages.iter().collect();
        prompt.push_str(
            "\n\n<knowledge>\nPassages from company documents that may answer this request. When you use one, cite it as given (source:path and location). knowledge_search finds more.\n",
        );
        prompt.push_str(&render_passages(&passages));
        prompt.push_str("\n</knowledge>");
    }
    prompt
}

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

/// What the context budget leaves for an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InputBudget {
    pub(crate) context_tokens: u32,
    /// Taken by the instructions and the pinned memory blocks as they are.
    pub(crate) pinned: u32,
    /// `context_tokens - pinned`: the largest input taken whole.
    pub(crate) available: u32,
}

/// The budget an input must fit: the agent's `context_tokens` minus its
/// instructions and pinned blocks, which every model call carries. Tool
/// definitions, recalled memories and passages, the summary and older
/// history are not counted: they give way (or, for tool definitions, the
/// input is cut to fit when they leave too little room).
pub(crate) fn input_budget(config: &AgentConfig, blocks: &[MemoryBlock]) -> InputBudget {
    let pinned = estimate_tokens(&system_prompt(&config.instructions, blocks, &[], &[], None));
    InputBudget {
        context_tokens: config.context_tokens,
        pinned,
        available: config.context_tokens.saturating_sub(pinned),
    }
}

/// Tokens a cut item's note takes, at most.
const NOTE_TOKENS: u32 = 48;
/// The least of an item shown when it is cut.
const MIN_SHOWN_TOKENS: u32 = 64;

/// Picks the newest items that fit `budget` tokens and turns them into chat
/// messages, keeping every tool call next to its result. The newest turn's
/// input is always sent: when the turn does not fit whole, the input (cut
/// if it must be) comes first and the newest of the rest fills what is
/// left, its largest items cut when not even the newest call fits.
pub(crate) fn history(
    items: &[Item],
    budget: u32,
    system: &str,
    tools: &[ToolSpec],
) -> Vec<ChatMessage> {
    let room = budget.saturating_sub(fixed_tokens(system, tools));
    let picked = pick(items, room);
    let answered: HashSet<&str> = picked
        .iter()
        .filter_map(|(i, _)| match &items[*i].content {
            ItemContent::ToolResult { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut messages = Vec::with_capacity(picked.len());
    for (index, cap) in picked {
        let fit = |text: &str, what: &str| match cap {
            Some(cap) => cut(text, cap, what),
            None => text.to_owned(),
        };
        match &items[index].content {
            ItemContent::UserMessage { text } => messages.push(ChatMessage::User {
                text: fit(text, "message"),
            }),
            ItemContent::SystemNote { text } => messages.push(ChatMessage::User {
                text: format!("[system note] {}", fit(text, "note")),
            }),
            ItemContent::ToolResult {
                call_id,
                name,
                output,
                is_error,
            } => messages.push(ChatMessage::ToolResult {
                call_id: call_id.clone(),
                name: name.clone(),
                output: fit(output, "tool result"),
                is_error: *is_error,
            }),
            // Kept for the surface that sent it; no model reads it.
            ItemContent::Opaque { .. } => {}
            ItemContent::AssistantMessage { text, tool_calls } => {
                messages.push(ChatMessage::Assistant {
                    text: fit(text, "reply"),
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

fn is_result(item: &Item) -> bool {
    matches!(item.content, ItemContent::ToolResult { .. })
}

/// The items to send, in order, each with the tokens it may show (`None`:
/// whole), within `room`.
fn pick(items: &[Item], room: u32) -> Vec<(usize, Option<u32>)> {
    let whole = newest_that_fit(items, 0, room);
    let input = items
        .iter()
        .rposition(|i| matches!(i.content, ItemContent::UserMessage { .. }));
    let Some(input) = input.filter(|input| whole > *input) else {
        if whole < items.len() {
            return (whole..items.len()).map(|i| (i, None)).collect();
        }
        return squeezed(items, 0, room);
    };
    // The newest turn does not fit whole. What follows its input may take
    // up to half the room; the input takes what that leaves.
    let after: u64 = items[input + 1..].iter().map(|i| u64::from(i.tokens)).sum();
    let after_room = u32::try_from(after.min(u64::from(room / 2))).unwrap_or(room / 2);
    let input_room = room - after_room;
    let (input_cap, used) = if items[input].tokens <= input_room {
        (None, items[input].tokens)
    } else {
        let cap = input_room.saturating_sub(NOTE_TOKENS).max(MIN_SHOWN_TOKENS);
        (Some(cap), input_room)
    };
    let rest = room.saturating_sub(used);
    let mut picked = vec![(input, input_cap)];
    let start = newest_that_fit(items, input + 1, rest);
    if start < items.len() {
        picked.extend((start..items.len()).map(|i| (i, None)));
    } else {
        picked.extend(squeezed(items, input + 1, rest));
    }
    picked
}

/// Where the newest run of `items[from..]` that fits `room` whole starts,
/// never on a result whose call is left out (`items.len()`: none fits).
fn newest_that_fit(items: &[Item], from: usize, room: u32) -> usize {
    let mut remaining = room;
    let mut start = items.len();
    for index in (from..items.len()).rev() {
        if items[index].tokens > remaining {
            break;
        }
        remaining -= items[index].tokens;
        start = index;
    }
    items[start..]
        .iter()
        .position(|i| !is_result(i))
        .map_or(items.len(), |p| start + p)
}

/// The newest call (or other non-result item) of `items[from..]` with the
/// results after it, its largest items cut so the whole fits `room`.
fn squeezed(items: &[Item], from: usize, room: u32) -> Vec<(usize, Option<u32>)> {
    let Some(start) = items[from..].iter().rposition(|i| !is_result(i)) else {
        return Vec::new();
    };
    let start = from + start;
    (start..items.len())
        .zip(caps_to_fit(&items[start..], room))
        .collect()
}

/// Per item of `window`, the tokens it may show (`None`: whole) so that
/// the window fits `room`: the largest items are cut to one cap, the
/// smaller ones kept whole (each cut item's note is reserved for).
fn caps_to_fit(window: &[Item], room: u32) -> Vec<Option<u32>> {
    let total: u64 = window.iter().map(|i| u64::from(i.tokens)).sum();
    if total <= u64::from(room) {
        return vec![None; window.len()];
    }
    let mut sizes: Vec<u32> = window.iter().map(|i| i.tokens).collect();
    sizes.sort_unstable();
    let mut cap = MIN_SHOWN_TOKENS;
    let mut kept_whole = 0u64;
    for (i, size) in sizes.iter().enumerate() {
        let left = u32::try_from(sizes.len() - i).unwrap_or(u32::MAX);
        let available = u64::from(room).saturating_sub(kept_whole + u64::from(NOTE_TOKENS * left));
        let per_item = u32::try_from(available / u64::from(left)).unwrap_or(u32::MAX);
        if *size > per_item {
            cap = per_item.max(MIN_SHOWN_TOKENS);
            break;
        }
        kept_whole += u64::from(*size);
    }
    window
        .iter()
        .map(|i| (i.tokens > cap).then_some(cap))
        .collect()
}

/// The first `tokens` (about) of `text`, with a note that the rest of this
/// `what` is stored but not shown.
pub(crate) fn cut(text: &str, tokens: u32, what: &str) -> String {
    let whole = estimate_tokens(text);
    if whole <= tokens {
        return text.to_owned();
    }
    let mut end = usize::try_from(tokens.saturating_mul(4))
        .unwrap_or(usize::MAX)
        .min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n\n[Roster: this {what} is about {whole} tokens, more than fits in the context; only its first {tokens} tokens are shown. It is stored whole in the session.]",
        &text[..end]
    )
}

/// Passages as the model reads them: numbered, each with its citation.
pub(crate) fn render_passages(passages: &[&Passage]) -> String {
    passages
        .iter()
        .enumerate()
        .map(|(i, p)| format!("[{}] {}\n{}", i + 1, p.citation, p.text.trim()))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Records as the model reads them: id, namespace, date and text.
pub(crate) fn render_records(records: &[&MemoryRecord]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "- [{}] ({}, {}) {}",
                r.id,
                r.namespace,
                r.updated_at.format("%Y-%m-%d"),
                r.content
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
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
        // Ending on a result too large for the budget: the turn comes
        // along from its input, cut to fit.
        let items = &conversation()[..3];
        let messages = history(items, 1, "", &[]);
        assert_eq!(messages.len(), 3);
        assert!(matches!(messages[0], ChatMessage::User { .. }));
        assert!(matches!(messages[1], ChatMessage::Assistant { .. }));
        assert!(matches!(messages[2], ChatMessage::ToolResult { .. }));
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

    /// A call (at `seq`) and its result (at `seq + 1`).
    fn round(seq: i64, id: &str, output: String) -> [Item; 2] {
        [
            item(
                seq,
                ItemContent::AssistantMessage {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: id.into(),
                        name: "t".into(),
                        arguments: "{}".into(),
                    }],
                },
            ),
            item(
                seq + 1,
                ItemContent::ToolResult {
                    call_id: id.into(),
                    name: "t".into(),
                    output,
                    is_error: false,
                },
            ),
        ]
    }

    fn tokens_of(messages: &[ChatMessage]) -> u32 {
        messages
            .iter()
            .map(|m| match m {
                ChatMessage::User { text } => estimate_tokens(text),
                ChatMessage::Assistant { text, tool_calls } => {
                    tool_calls
                        .iter()
                        .map(|c| estimate_tokens(&c.arguments) + estimate_tokens(&c.name))
                        .sum::<u32>()
                        + estimate_tokens(text)
                }
                ChatMessage::ToolResult { output, .. } => estimate_tokens(output),
            })
            .sum()
    }

    #[test]
    fn an_input_over_the_budget_is_cut_with_a_note() {
        let big = "word ".repeat(4_000); // about 5,000 tokens
        let mut items = conversation();
        items.push(item(6, ItemContent::UserMessage { text: big.clone() }));
        let messages = history(&items, 1_000, "Be brief.", &[]);
        assert_eq!(messages.len(), 1, "older turns give way");
        let ChatMessage::User { text } = &messages[0] else {
            panic!("{messages:?}");
        };
        assert!(text.starts_with("word word"));
        assert!(text.len() < big.len());
        assert!(
            text.contains(
                "[Roster: this message is about 5004 tokens, more than fits in the context"
            ),
            "{text}"
        );
        assert!(tokens_of(&messages) + fixed_tokens("Be brief.", &[]) <= 1_000);
    }

    #[test]
    fn a_result_over_the_budget_is_cut_and_the_input_stays() {
        let mut items = vec![item(
            1,
            ItemContent::UserMessage {
                text: "what is on the page?".into(),
            },
        )];
        items.extend(round(2, "c9", "page ".repeat(20_000)));
        let messages = history(&items, 2_000, "", &[]);
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[0],
            ChatMessage::User {
                text: "what is on the page?".into()
            },
            "the question is kept whole"
        );
        let ChatMessage::ToolResult { output, .. } = &messages[2] else {
            panic!("{messages:?}");
        };
        assert!(output.contains("[Roster: this tool result is about 25004 tokens"));
        assert!(tokens_of(&messages) <= 2_000, "{}", tokens_of(&messages));
    }

    #[test]
    fn a_long_turn_keeps_its_input_and_its_newest_steps() {
        // The input, then ten rounds of call and result: only the input and
        // the newest rounds fit, whole.
        let mut items = vec![item(
            1,
            ItemContent::UserMessage {
                text: "q ".repeat(400),
            },
        )];
        for k in 0..10 {
            items.extend(round(2 + 2 * k, &format!("c{k}"), "r".repeat(800)));
        }
        let messages = history(&items, 1_000, "", &[]);
        assert!(matches!(&messages[0], ChatMessage::User { text } if !text.contains("[Roster")));
        assert!(matches!(messages[1], ChatMessage::Assistant { .. }));
        assert!(
            matches!(messages.last(), Some(ChatMessage::ToolResult { call_id, .. }) if call_id == "c9")
        );
        assert!(messages.len() < items.len());
        assert!(tokens_of(&messages) <= 1_000);
    }

    #[test]
    fn the_input_budget_is_the_context_less_instructions_and_blocks() {
        let mut config = AgentConfig {
            max_running: Default::default(),
            notify: Default::default(),
            description: Default::default(),
            if_busy: Default::default(),
            tool_choice: Default::default(),
            instructions: "x".repeat(4_000),
            model: "p/m".into(),
            fallbacks: vec![],
            tools: vec![],
            max_steps: 4,
            context_tokens: 3_000,
            memory: Default::default(),
            knowledge: vec![],
            knowledge_recall: 0,
            context: Default::default(),
            memory_blocks: vec![],
        };
        let block = MemoryBlock {
            label: "human".into(),
            owner: roster_core::blocks::BlockOwner::Agent,
            value: "y".repeat(2_000),
            limit: 5_000,
            version: 1,
            updated_at: chrono::Utc::now(),
        };
        let budget = input_budget(&config, &[block]);
        assert_eq!(budget.context_tokens, 3_000);
        assert!(budget.pinned > 1_500 && budget.pinned < 1_600, "{budget:?}");
        assert_eq!(budget.available, 3_000 - budget.pinned);
        config.context_tokens = 1_000;
        assert_eq!(input_budget(&config, &[]).available, 0);
    }
}
