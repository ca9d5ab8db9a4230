//! Built-in long-term memory and knowledge tools: `memory_search {query,
//! namespace?, limit?}` finds records by hybrid search; `memory_write
//! {content, namespace?}` stores one; `knowledge_search {query, source?,
//! limit?}` finds passages of company documents with citations. All act
//! only on the store (and its derived index), so a write commits in the
//! same transaction as its result.

use roster_models::ToolSpec;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecallTool {
    Search,
    Write,
    Knowledge,
    Conversation,
}

/// Arguments of `memory_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to look for, in plain words.
    pub query: String,
    /// One of your memory namespaces; all of them when omitted.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Most records to return (1-20, default 5).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Arguments of `memory_write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// The fact to remember, as one self-contained sentence.
    pub content: String,
    /// One of your memory namespaces; your default one when omitted.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Arguments of `knowledge_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeArgs {
    /// What to look for, in plain words.
    pub query: String,
    /// One of your knowledge sources; all of them when omitted.
    #[serde(default)]
    pub source: Option<String>,
    /// Most passages to return (1-20, default 5).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Arguments of `conversation_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationArgs {
    /// Words to look for in this conversation's earlier messages.
    pub query: String,
    /// Most messages to return (1-20, default 5).
    #[serde(default)]
    pub limit: Option<u32>,
}

pub enum RecallCall {
    Search(SearchArgs),
    Write(WriteArgs),
    Knowledge(KnowledgeArgs),
    Conversation(ConversationArgs),
}

impl RecallTool {
    pub fn name(self) -> &'static str {
        match self {
            RecallTool::Search => "memory_search",
            RecallTool::Write => "memory_write",
            RecallTool::Knowledge => "knowledge_search",
            RecallTool::Conversation => "conversation_search",
        }
    }

    pub fn spec(self) -> ToolSpec {
        let (description, schema) = match self {
            RecallTool::Search => (
                "Search your long-term memory (facts and preferences remembered from earlier conversations). Returns the most relevant records with their ids.",
                schemars::schema_for!(SearchArgs),
            ),
            RecallTool::Write => (
                "Remember a fact in your long-term memory so you can find it in later conversations. Write one self-contained sentence; a fact you already remembered is not stored twice.",
                schemars::schema_for!(WriteArgs),
            ),
            RecallTool::Knowledge => (
                "Search the company documents you have access to. Returns passages, each with a citation (source:path and where in it); cite them when you answer from them.",
                schemars::schema_for!(KnowledgeArgs),
            ),
            RecallTool::Conversation => (
                "Search the earlier messages of this conversation, including those no longer in view (older history is summarised). Returns matching messages with their item numbers.",
                schemars::schema_for!(ConversationArgs),
            ),
        };
        super::tool_spec(self.name(), description, schema)
    }

    pub fn parse(self, arguments: serde_json::Value) -> Result<RecallCall, String> {
        match self {
            RecallTool::Search => serde_json::from_value(arguments).map(RecallCall::Search),
            RecallTool::Write => serde_json::from_value(arguments).map(RecallCall::Write),
            RecallTool::Knowledge => serde_json::from_value(arguments).map(RecallCall::Knowledge),
            RecallTool::Conversation => {
                serde_json::from_value(arguments).map(RecallCall::Conversation)
            }
        }
        .map_err(|e| {
            format!(
                "invalid arguments for {}: {}",
                self.name(),
                roster_core::plain::plain_serde_error(&e.to_string())
            )
        })
    }
}

/// Text compared to tell a repeated fact from a new one: case, spacing and
/// final punctuation do not make a fact new.
pub fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(['.', '!', ';'])
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_come_from_the_argument_types() {
        let spec = RecallTool::Search.spec();
        assert_eq!(spec.parameters["required"], json!(["query"]));
        assert_eq!(spec.parameters["additionalProperties"], json!(false));
        let spec = RecallTool::Write.spec();
        assert_eq!(spec.parameters["required"], json!(["content"]));
    }

    #[test]
    fn repeated_facts_normalise_alike() {
        assert_eq!(normalise("Ada  likes tea."), normalise("ada likes tea"));
        assert_ne!(normalise("Ada likes tea"), normalise("Ada likes coffee"));
    }

    #[test]
    fn bad_arguments_explain_themselves() {
        let err = RecallTool::Write
            .parse(json!({"text": "x"}))
            .err()
            .unwrap_or_default();
        assert!(err.contains("memory_write"), "{err}");
    }
}
