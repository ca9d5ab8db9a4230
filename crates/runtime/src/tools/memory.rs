//! Built-in memory tools: `memory_append {label, content}` and
//! `memory_replace {label, old, new}` edit the agent's pinned blocks.

use roster_core::memory::BlockEdit;
use roster_models::ToolSpec;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryTool {
    Append,
    Replace,
}

/// Arguments of `memory_append`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendArgs {
    /// Label of the memory block to append to.
    pub label: String,
    /// Text to add on a new line at the end of the block.
    pub content: String,
}

/// Arguments of `memory_replace`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceArgs {
    /// Label of the memory block to edit.
    pub label: String,
    /// Exact text currently in the block; must occur exactly once.
    pub old: String,
    /// Text to put in its place (may be empty to delete).
    pub new: String,
}

/// `spec` with its `label` limited to `labels` (unchanged when the agent
/// has no blocks: the tool then answers that there are none).
pub fn with_labels(spec: &ToolSpec, labels: &[&str]) -> ToolSpec {
    let mut spec = spec.clone();
    if !labels.is_empty() {
        if let Some(label) = spec.parameters.pointer_mut("/properties/label") {
            label["enum"] = serde_json::json!(labels);
        }
    }
    spec
}

impl MemoryTool {
    pub fn name(self) -> &'static str {
        match self {
            MemoryTool::Append => "memory_append",
            MemoryTool::Replace => "memory_replace",
        }
    }

    pub fn spec(self) -> ToolSpec {
        let (description, schema) = match self {
            MemoryTool::Append => (
                "Append text to one of your pinned memory blocks. Use it to remember facts that should stay in every future conversation.",
                schemars::schema_for!(AppendArgs),
            ),
            MemoryTool::Replace => (
                "Replace text in one of your pinned memory blocks; `old` must match exactly once.",
                schemars::schema_for!(ReplaceArgs),
            ),
        };
        super::tool_spec(self.name(), description, schema)
    }

    /// Parses the model's arguments into an edit, or says what is wrong.
    pub fn parse(self, arguments: serde_json::Value) -> Result<BlockEdit, String> {
        match self {
            MemoryTool::Append => {
                serde_json::from_value::<AppendArgs>(arguments).map(|a| BlockEdit::Append {
                    label: a.label,
                    content: a.content,
                })
            }
            MemoryTool::Replace => {
                serde_json::from_value::<ReplaceArgs>(arguments).map(|a| BlockEdit::Replace {
                    label: a.label,
                    old: a.old,
                    new: a.new,
                })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_are_derived_from_the_argument_types() {
        let spec = MemoryTool::Append.spec();
        assert_eq!(spec.parameters["type"], "object");
        assert_eq!(spec.parameters["required"], json!(["label", "content"]));
        assert_eq!(spec.parameters["additionalProperties"], json!(false));
        let spec = MemoryTool::Replace.spec();
        assert_eq!(spec.parameters["required"], json!(["label", "old", "new"]));
    }

    #[test]
    fn the_label_lists_the_agents_blocks() {
        let spec = with_labels(&MemoryTool::Append.spec(), &["notes", "persona"]);
        assert_eq!(
            spec.parameters["properties"]["label"]["enum"],
            json!(["notes", "persona"])
        );
        let none = with_labels(&MemoryTool::Append.spec(), &[]);
        assert!(none.parameters["properties"]["label"].get("enum").is_none());
    }

    #[test]
    fn bad_arguments_explain_themselves() {
        let err = MemoryTool::Append
            .parse(json!({"label": "x"}))
            .expect_err("missing content");
        assert!(err.contains("content"), "{err}");
        assert!(MemoryTool::Replace
            .parse(json!({"label": "x", "old": "a", "new": "b"}))
            .is_ok());
    }
}
