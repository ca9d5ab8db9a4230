//! Memory blocks: small labelled texts pinned into every context of an agent.

use crate::blocks::{BlockDef, BlockOwner, BlockScope};
use crate::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const DEFAULT_BLOCK_LIMIT: u32 = 5_000;
pub const MAX_BLOCK_LIMIT: u32 = 100_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryBlockSpec {
    pub label: String,
    #[serde(default)]
    pub value: String,
    /// Maximum length of the value in characters.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
    /// Whose copy a session pins: `agent` (default; shared by all users),
    /// `user` (one copy per user, starting from `value`), `session`, or
    /// `shared` (the tenant's block of this label, one value for every
    /// agent that attaches it; `value` and `limit` make it when the first
    /// agent attaches it and are not used after).
    #[serde(default)]
    pub scope: BlockScope,
}

impl MemoryBlockSpec {
    /// What an agent version records of this block.
    pub fn def(&self) -> BlockDef {
        BlockDef {
            label: self.label.clone(),
            scope: self.scope,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_BLOCK_LIMIT)
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_label(&self.label)?;
        let limit = self.limit();
        if limit == 0 || limit > MAX_BLOCK_LIMIT {
            return Err(ValidationError::new(
                "memory_blocks.limit",
                format!("must be between 1 and {MAX_BLOCK_LIMIT}"),
            ));
        }
        check_fits(&self.label, &self.value, limit)
    }
}

pub fn validate_label(label: &str) -> Result<(), ValidationError> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "label",
            "must be 1-64 characters of letters, digits, '-' or '_'",
        ))
    }
}

pub fn check_fits(label: &str, value: &str, limit: u32) -> Result<(), ValidationError> {
    let chars = value.chars().count();
    if chars > limit as usize {
        return Err(ValidationError::new(
            "value",
            format!("block `{label}` would hold {chars} characters; its limit is {limit}"),
        ));
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryBlock {
    pub label: String,
    /// `agent` (the agent's own value; for `user` and `session` blocks, the
    /// template), `user:NAME` or `session:ses_…` (a copy).
    #[schema(value_type = String, example = "user:ada")]
    pub owner: BlockOwner,
    pub value: String,
    pub limit: u32,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// One entry of a block's history: the value after the change, and who made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryBlockVersion {
    pub label: String,
    pub version: i64,
    pub value: String,
    /// `create`, `append`, `replace`.
    pub operation: String,
    pub run_id: Option<String>,
    pub principal: String,
    pub created_at: DateTime<Utc>,
}

/// An edit an agent asks for through a memory tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BlockEdit {
    Append {
        label: String,
        content: String,
    },
    Replace {
        label: String,
        old: String,
        new: String,
    },
}

impl BlockEdit {
    pub fn label(&self) -> &str {
        match self {
            BlockEdit::Append { label, .. } | BlockEdit::Replace { label, .. } => label,
        }
    }

    pub fn operation(&self) -> &'static str {
        match self {
            BlockEdit::Append { .. } => "append",
            BlockEdit::Replace { .. } => "replace",
        }
    }

    /// The new value, or a message the model can act on.
    pub fn apply(&self, current: &str, limit: u32) -> Result<String, String> {
        let next = match self {
            BlockEdit::Append { content, .. } => {
                if current.is_empty() {
                    content.clone()
                } else {
                    format!("{current}\n{content}")
                }
            }
            BlockEdit::Replace { old, new, .. } => {
                if old.is_empty() {
                    return Err("`old` must not be empty".to_owned());
                }
                match current.matches(old.as_str()).count() {
                    0 => {
                        return Err(format!(
                            "`{old}` does not occur in block `{}`",
                            self.label()
                        ))
                    }
                    1 => current.replacen(old.as_str(), new, 1),
                    n => {
                        return Err(format!(
                            "`{old}` occurs {n} times in block `{}`; give a longer, unique `old`",
                            self.label()
                        ))
                    }
                }
            }
        };
        check_fits(self.label(), &next, limit).map_err(|e| e.message)?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_and_replace() {
        let a = BlockEdit::Append {
            label: "n".into(),
            content: "b".into(),
        };
        assert_eq!(a.apply("a", 10).as_deref(), Ok("a\nb"));
        assert!(a.apply("123456789", 10).is_err());
        let r = BlockEdit::Replace {
            label: "n".into(),
            old: "x".into(),
            new: "y".into(),
        };
        assert_eq!(r.apply("axb", 10).as_deref(), Ok("ayb"));
        assert!(r.apply("ab", 10).is_err());
        assert!(r.apply("xx", 10).is_err());
    }
}
