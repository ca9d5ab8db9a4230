//! What changed between two versions of an agent's configuration, field by
//! field, for the answer to an update and the CLI line that reports it.
//!
//! Computed on the serialised form so fields added to [`AgentConfig`] later
//! are reported without touching this file: lists of names as added and
//! removed entries, everything else as the old and the new value.

use crate::agent::AgentConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigChange {
    /// The field, e.g. `tools` or `context.summarize`.
    pub field: String,
    /// Entries a list gained (lists of names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Entries a list lost (lists of names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// The old value (other fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub from: Option<Value>,
    /// The new value (other fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub to: Option<Value>,
}

impl ConfigChange {
    /// One line for people: `tools: +mcp:files -sql:shop`,
    /// `model: openai/a -> openai/b`.
    pub fn describe(&self) -> String {
        if self.from.is_none() && self.to.is_none() {
            let mut parts: Vec<String> = self.added.iter().map(|a| format!("+{a}")).collect();
            parts.extend(self.removed.iter().map(|r| format!("-{r}")));
            return format!("{}: {}", self.field, parts.join(" "));
        }
        let show = |v: &Option<Value>| match v {
            Some(Value::String(s)) if s.len() > 60 => format!("{:?}…", &s[..floor(s, 60)]),
            Some(Value::String(s)) => format!("{s:?}"),
            Some(other) => other.to_string(),
            None => "(none)".to_owned(),
        };
        format!("{}: {} -> {}", self.field, show(&self.from), show(&self.to))
    }
}

fn floor(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The fields of `after` that differ from `before`, by field name.
pub fn diff(before: &AgentConfig, after: &AgentConfig) -> Vec<ConfigChange> {
    let (Ok(before), Ok(after)) = (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    compare("", &before, &after, &mut out);
    // serde_json keeps fields in declaration order in some builds
    // (`preserve_order`) and sorted in others: sort, so answers are stable.
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn compare(path: &str, before: &Value, after: &Value, out: &mut Vec<ConfigChange>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            let mut keys: Vec<&String> = new.keys().collect();
            keys.extend(old.keys().filter(|k| !new.contains_key(*k)));
            for key in keys {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                compare(
                    &field,
                    old.get(key).unwrap_or(&Value::Null),
                    new.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(old), Value::Array(new)) if membership(old, new).is_some() => {
            let (added, removed) = membership(old, new).unwrap_or_default();
            out.push(ConfigChange {
                field: path.to_owned(),
                added,
                removed,
                from: None,
                to: None,
            });
        }
        _ => out.push(ConfigChange {
            field: path.to_owned(),
            added: Vec::new(),
            removed: Vec::new(),
            from: Some(before.clone()),
            to: Some(after.clone()),
        }),
    }
}

/// Entries a list of names gained and lost, when that is the whole change;
/// `None` when the lists are not of names, or also changed otherwise (an
/// entry's settings, the order), which is then shown as old and new value.
fn membership(old: &[Value], new: &[Value]) -> Option<(Vec<String>, Vec<String>)> {
    let (old_names, new_names) = (names(old)?, names(new)?);
    let added: Vec<String> = new_names
        .iter()
        .filter(|n| !old_names.contains(n))
        .cloned()
        .collect();
    let removed: Vec<String> = old_names
        .iter()
        .filter(|n| !new_names.contains(n))
        .cloned()
        .collect();
    // What stays must stay as it was and in its order.
    let kept = |list: &[Value], names: &[String], other: &[String]| -> Vec<Value> {
        list.iter()
            .zip(names)
            .filter(|(_, n)| other.contains(n))
            .map(|(v, _)| v.clone())
            .collect()
    };
    let unchanged = kept(old, &old_names, &new_names) == kept(new, &new_names, &old_names);
    (unchanged && !(added.is_empty() && removed.is_empty())).then_some((added, removed))
}

/// The entries of a list of strings, or of objects named by a `label`
/// (memory blocks); `None` for any other list.
fn names(list: &[Value]) -> Option<Vec<String>> {
    list.iter()
        .map(|v| {
            v.as_str()
                .or_else(|| v.get("label").and_then(Value::as_str))
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AgentConfig {
        serde_json::from_value(serde_json::json!({
            "instructions": "Be brief.", "model": "openai/a",
            "tools": ["memory_append", "sql:shop"], "knowledge": ["handbook"],
        }))
        .expect("config")
    }

    #[test]
    fn lists_report_entries_and_values_report_both_ends() {
        let before = config();
        let mut after = config();
        after.tools = vec!["sql:shop".into(), "mcp:files".into()];
        after.model = "openai/b".into();
        after.context.summarize = false;
        let changes = diff(&before, &after);
        let lines: Vec<String> = changes.iter().map(ConfigChange::describe).collect();
        assert_eq!(
            lines,
            vec![
                "context.summarize: true -> false".to_owned(),
                "model: \"openai/a\" -> \"openai/b\"".to_owned(),
                "tools: +mcp:files -memory_append".to_owned(),
            ]
        );
    }

    #[test]
    fn reordering_a_list_shows_both_lists_and_equal_configs_have_no_change() {
        assert!(diff(&config(), &config()).is_empty());
        let mut after = config();
        after.tools.reverse();
        let changes = diff(&config(), &after);
        assert_eq!(
            changes[0].describe(),
            r#"tools: ["memory_append","sql:shop"] -> ["sql:shop","memory_append"]"#
        );
    }

    #[test]
    fn labelled_entries_are_named_by_their_label() {
        let before: Value = serde_json::from_str(
            r#"[{"label": "human", "scope": "user"}, {"label": "notes", "scope": "agent"}]"#,
        )
        .expect("json");
        let after: Value = serde_json::from_str(
            r#"[{"label": "human", "scope": "user"}, {"label": "tone", "scope": "agent"}]"#,
        )
        .expect("json");
        let mut out = Vec::new();
        compare("memory_blocks", &before, &after, &mut out);
        assert_eq!(out[0].describe(), "memory_blocks: +tone -notes");
        let mut rescoped = before.clone();
        rescoped[0]["scope"] = "agent".into();
        let mut out = Vec::new();
        compare("memory_blocks", &before, &rescoped, &mut out);
        assert!(out[0].from.is_some(), "a changed entry shows both lists");
    }
}
