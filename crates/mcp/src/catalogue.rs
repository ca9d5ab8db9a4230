//! The operator's catalogue of stdio MCP servers: the only host commands a
//! tenant key can make Roster run. Each entry fixes the program and its
//! arguments; a tenant fills the entry's placeholders, each value checked
//! against its anchored pattern and put into exactly one argument (there
//! is no shell), and sets only the environment variables the entry names.

use crate::launch::{check_read_only, resolve_program, Launch};
use crate::McpError;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Longest placeholder value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;

/// One entry as the operator writes it (`[mcp.catalogue.NAME]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    /// What the server does, for tenants choosing one.
    #[serde(default)]
    pub description: String,
    /// A bare name found in the sandbox's PATH, or an absolute path under
    /// `/usr` or one of `read_only`.
    pub command: String,
    /// Arguments; `{NAME}` is a placeholder, `{{` and `}}` literal braces.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub placeholders: BTreeMap<String, Placeholder>,
    /// Environment variables a tenant may set (stored sealed).
    #[serde(default)]
    pub env: Vec<String>,
    /// Give the server the host's network (off by default).
    #[serde(default)]
    pub network: bool,
    /// Host paths shown to the server read-only.
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placeholder {
    /// A regular expression the whole value must match.
    pub pattern: String,
    /// Used when the tenant gives no value; without one the value is required.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: String,
}

/// A placeholder as tenants see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PlaceholderView {
    pub name: String,
    pub pattern: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    pub description: String,
}

/// An entry as tenants see it: what to fill, not the host's layout.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogueEntryView {
    pub name: String,
    pub description: String,
    pub placeholders: Vec<PlaceholderView>,
    /// Environment variables a tenant may set.
    pub env: Vec<String>,
    /// The server has the network.
    pub network: bool,
}

/// A piece of an argument template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(String),
}

#[derive(Clone, Debug)]
struct Checked {
    spec: CatalogueEntry,
    program: PathBuf,
    args: Vec<Vec<Piece>>,
    patterns: BTreeMap<String, Regex>,
}

/// The checked catalogue.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    entries: BTreeMap<String, Checked>,
}

fn bad(entry: &str, why: String) -> McpError {
    McpError::Invalid(format!("MCP catalogue entry `{entry}`: {why}"))
}

fn template(entry: &str, arg: &str) -> Result<Vec<Piece>, McpError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(bad(
                                entry,
                                format!("argument `{arg}` has an unclosed `{{`"),
                            ))
                        }
                    }
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Slot(name));
            }
            '}' => {
                return Err(bad(
                    entry,
                    format!("argument `{arg}` has a stray `}}` (write `}}}}`)"),
                ))
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether the pattern itself asks for a leading `-` (only then may a value
/// start with one, e.g. `--(read|write)`).
fn wants_dash(pattern: &str) -> bool {
    let p = pattern.trim_start_matches('^');
    let p = p
        .strip_prefix("(?:")
        .or_else(|| p.strip_prefix('('))
        .unwrap_or(p);
    p.starts_with('-') || p.starts_with("\\-")
}

/// Checks one value against its placeholder.
fn check_value(
    name: &str,
    value: &str,
    placeholder: &Placeholder,
    pattern: &Regex,
) -> Result<(), McpError> {
    let refuse = |why: &str| McpError::Invalid(format!("value of `{name}` refused: {why}"));
    if value.len() > MAX_VALUE_BYTES {
        return Err(refuse(&format!("longer than {MAX_VALUE_BYTES} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(refuse("it holds a control character (NUL, line break, …)"));
    }
    if value.starts_with('-') && !wants_dash(&placeholder.pattern) {
        return Err(refuse(
            "it starts with `-`, which a program would read as an option",
        ));
    }
    if !pattern.is_match(value) {
        return Err(refuse(&format!(
            "it does not match `{}`",
            placeholder.pattern
        )));
    }
    Ok(())
}

impl Catalogue {
    /// Checks the operator's entries: names, templates against their
    /// placeholders, patterns and defaults, environment names, read-only
    /// paths, and that each program exists where the sandbox shows it.
    /// `private` are paths no entry may show (the data directory).
    pub fn new(
        entries: BTreeMap<String, CatalogueEntry>,
        private: &[PathBuf],
    ) -> Result<Self, McpError> {
        let mut checked = BTreeMap::new();
        for (name, spec) in entries {
            roster_tool::check_integration_name(&name).map_err(|e| bad(&name, e))?;
            check_read_only(&spec.read_only, private).map_err(|e| bad(&name, e.to_string()))?;
            let program = resolve_program(&spec.command, &spec.read_only)
                .map_err(|e| bad(&name, e.to_string()))?;
            let args = spec
                .args
                .iter()
                .map(|arg| template(&name, arg))
                .collect::<Result<Vec<_>, _>>()?;
            let mut patterns = BTreeMap::new();
            for (key, placeholder) in &spec.placeholders {
                if key.is_empty()
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(bad(
                        &name,
                        format!("placeholder `{key}`: use a-z, 0-9 and `_`"),
                    ));
                }
                let pattern = Regex::new(&format!("^(?:{})$", placeholder.pattern))
                    .map_err(|e| bad(&name, format!("pattern of `{key}`: {e}")))?;
                if let Some(default) = &placeholder.default {
                    check_value(key, default, placeholder, &pattern)
                        .map_err(|e| bad(&name, format!("default: {e}")))?;
                }
                patterns.insert(key.clone(), pattern);
            }
            let used: Vec<&String> = args
                .iter()
                .flatten()
                .filter_map(|p| match p {
                    Piece::Slot(s) => Some(s),
                    Piece::Text(_) => None,
                })
                .collect();
            if let Some(unknown) = used.iter().find(|s| !patterns.contains_key(s.as_str())) {
                return Err(bad(
                    &name,
                    format!("`{{{unknown}}}` is not a declared placeholder"),
                ));
            }
            if let Some(unused) = patterns.keys().find(|k| !used.contains(k)) {
                return Err(bad(
                    &name,
                    format!("placeholder `{unused}` is not used in args"),
                ));
            }
            for key in &spec.env {
                if !valid_env_name(key) {
                    return Err(bad(&name, format!("invalid environment name `{key}`")));
                }
                if matches!(key.as_str(), "PATH" | "HOME" | "TMPDIR" | "LANG")
                    || key.starts_with("LD_")
                {
                    return Err(bad(&name, format!("tenants may not set `{key}`")));
                }
            }
            checked.insert(
                name,
                Checked {
                    spec,
                    program,
                    args,
                    patterns,
                },
            );
        }
        Ok(Self { entries: checked })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What tenants may enable.
    pub fn views(&self) -> Vec<CatalogueEntryView> {
        self.entries
            .iter()
            .map(|(name, entry)| CatalogueEntryView {
                name: name.clone(),
                description: entry.spec.description.clone(),
                placeholders: entry
                    .spec
                    .placeholders
                    .iter()
                    .map(|(key, p)| PlaceholderView {
                        name: key.clone(),
                        pattern: p.pattern.clone(),
                        required: p.default.is_none(),
                        default: p.default.clone(),
                        description: p.description.clone(),
                    })
                    .collect(),
                env: entry.spec.env.clone(),
                network: entry.spec.network,
            })
            .collect()
    }

    fn entry(&self, name: &str) -> Result<&Checked, McpError> {
        self.entries.get(name).ok_or_else(|| {
            let offered: Vec<&str> = self.entries.keys().map(String::as_str).collect();
            McpError::Invalid(if offered.is_empty() {
                format!("the operator's MCP catalogue offers no `{name}`; it is empty")
            } else {
                format!(
                    "the operator's MCP catalogue offers no `{name}`; it offers: {}",
                    offered.join(", ")
                )
            })
        })
    }

    /// A tenant's values for `entry`, checked, with defaults filled in; the
    /// environment names must be ones the entry lets tenants set.
    pub fn settle(
        &self,
        entry: &str,
        given: &BTreeMap<String, String>,
        env: &[String],
    ) -> Result<BTreeMap<String, String>, McpError> {
        let checked = self.entry(entry)?;
        if let Some(unknown) = given
            .keys()
            .find(|k| !checked.patterns.contains_key(k.as_str()))
        {
            let known: Vec<&str> = checked.patterns.keys().map(String::as_str).collect();
            return Err(McpError::Invalid(format!(
                "catalogue entry `{entry}` has no placeholder `{unknown}`; it has: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        if let Some(key) = env.iter().find(|k| !checked.spec.env.contains(k)) {
            return Err(McpError::Invalid(format!(
                "catalogue entry `{entry}` does not let tenants set `{key}`; it lets them set: {}",
                if checked.spec.env.is_empty() {
                    "nothing".to_owned()
                } else {
                    checked.spec.env.join(", ")
                }
            )));
        }
        let mut values = BTreeMap::new();
        for (key, placeholder) in &checked.spec.placeholders {
            let value = match (given.get(key), &placeholder.default) {
                (Some(value), _) => value.clone(),
                (None, Some(default)) => default.clone(),
                (None, None) => {
                    return Err(McpError::Invalid(format!(
                        "catalogue entry `{entry}` needs a value for `{key}` ({})",
                        if placeholder.description.is_empty() {
                            &placeholder.pattern
                        } else {
                            &placeholder.description
                        }
                    )))
                }
            };
            check_value(key, &value, placeholder, &checked.patterns[key])?;
            values.insert(key.clone(), value);
        }
        Ok(values)
    }

    /// The command line of an enabled entry. Values are checked again: the
    /// operator may have tightened a pattern since they were stored.
    pub(crate) fn launch(
        &self,
        entry: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<Launch, McpError> {
        let values = self.settle(entry, values, &[])?;
        let checked = self.entry(entry)?;
        let args = checked
            .args
            .iter()
            .map(|pieces| {
                let mut arg = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => arg.push_str(text),
                        Piece::Slot(key) => arg.push_str(&values[key]),
                    }
                }
                arg.into()
            })
            .collect();
        Ok(Launch {
            program: checked.program.clone(),
            args,
            network: checked.spec.network,
            read_only: checked.spec.read_only.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(toml_like: serde_json::Value) -> Result<Catalogue, McpError> {
        let entries: BTreeMap<String, CatalogueEntry> =
            serde_json::from_value(toml_like).expect("shape");
        Catalogue::new(entries, &[])
    }

    fn files() -> Catalogue {
        checked(serde_json::json!({
            "files": {
                "description": "Files of one shared folder",
                "command": "sh",
                "args": ["-c", "exec ls -- \"$0\"", "/srv/shared/{folder}", "--mode={mode}"],
                "placeholders": {
                    "folder": {"pattern": "[a-z0-9_-]+( [a-z0-9_-]+)*", "description": "a folder"},
                    "mode": {"pattern": "read|list", "default": "read"}
                },
                "env": ["FILES_TOKEN"]
            },
            "flags": {
                "command": "sh",
                "args": ["{flag}"],
                "placeholders": {"flag": {"pattern": "--(verbose|quiet)"}}
            }
        }))
        .expect("valid catalogue")
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_go_into_exactly_one_argument_each() {
        let launch = files()
            .launch("files", &values(&[("folder", "q3 reports")]))
            .expect("launch");
        assert_eq!(launch.program, PathBuf::from("/usr/bin/sh"));
        assert_eq!(
            launch.args,
            [
                "-c",
                "exec ls -- \"$0\"",
                "/srv/shared/q3 reports",
                "--mode=read"
            ]
            .map(std::ffi::OsString::from)
        );
        assert!(!launch.network);
    }

    #[test]
    fn injected_arguments_are_refused() {
        let catalogue = files();
        for evil in [
            "--evil",
            "-rf",
            "; sh",
            "a; rm -rf /",
            "$(id)",
            "`id`",
            "x\nsecond-argument",
            "x\0y",
            "../../etc",
            "a b\tc",
            "",
            &"a".repeat(MAX_VALUE_BYTES + 1),
        ] {
            let err = catalogue
                .settle("files", &values(&[("folder", evil)]), &[])
                .expect_err(evil);
            assert_eq!(err.code(), "invalid_request", "{evil:?}");
            assert!(err.to_string().contains("`folder`"), "{err}");
        }
        // A value that tries to be an option of its own is refused even when
        // the pattern would match it…
        let loose = checked(serde_json::json!({
            "x": {"command": "sh", "args": ["{v}"], "placeholders": {"v": {"pattern": ".+"}}}
        }))
        .expect("valid");
        let err = loose
            .settle("x", &values(&[("v", "-c")]), &[])
            .expect_err("dash");
        assert!(err.to_string().contains("starts with `-`"), "{err}");
        // …unless the pattern itself asks for the dash.
        assert!(catalogue
            .settle("flags", &values(&[("flag", "--quiet")]), &[])
            .is_ok());
        assert!(catalogue
            .settle("flags", &values(&[("flag", "--evil")]), &[])
            .is_err());
    }

    #[test]
    fn tenants_fill_only_what_the_entry_declares() {
        let catalogue = files();
        let err = catalogue
            .settle("files", &values(&[]), &[])
            .expect_err("required");
        assert!(
            err.to_string().contains("needs a value for `folder`"),
            "{err}"
        );
        let err = catalogue
            .settle("files", &values(&[("folder", "a"), ("command", "sh")]), &[])
            .expect_err("unknown placeholder");
        assert!(
            err.to_string().contains("no placeholder `command`"),
            "{err}"
        );
        let err = catalogue
            .settle("files", &values(&[("folder", "a")]), &["LD_PRELOAD".into()])
            .expect_err("env");
        assert!(err.to_string().contains("FILES_TOKEN"), "{err}");
        assert!(catalogue
            .settle(
                "files",
                &values(&[("folder", "a")]),
                &["FILES_TOKEN".into()]
            )
            .is_ok());
        let err = catalogue
            .settle("nope", &values(&[]), &[])
            .expect_err("entry");
        assert!(err.to_string().contains("offers: files, flags"), "{err}");
        let views = catalogue.views();
        assert_eq!(views.len(), 2);
        assert!(views[0]
            .placeholders
            .iter()
            .any(|p| p.name == "folder" && p.required));
    }

    #[test]
    fn operator_mistakes_are_refused_at_start() {
        for entry in [
            serde_json::json!({"Bad": {"command": "sh"}}),
            serde_json::json!({"x": {"command": "no-such-program-anywhere"}}),
            serde_json::json!({"x": {"command": "sh", "args": ["{missing}"]}}),
            serde_json::json!({"x": {"command": "sh", "args": ["{v"], "placeholders": {"v": {"pattern": "a"}}}}),
            serde_json::json!({"x": {"command": "sh", "args": ["v}"]}}),
            serde_json::json!({"x": {"command": "sh", "placeholders": {"v": {"pattern": "a"}}}}),
            serde_json::json!({"x": {"command": "sh", "args": ["{v}"], "placeholders": {"v": {"pattern": "("}}}}),
            serde_json::json!({"x": {"command": "sh", "args": ["{v}"], "placeholders": {"v": {"pattern": "[a-z]+", "default": "-x"}}}}),
            serde_json::json!({"x": {"command": "sh", "env": ["LD_PRELOAD"]}}),
            serde_json::json!({"x": {"command": "sh", "env": ["BAD NAME"]}}),
            serde_json::json!({"x": {"command": "sh", "read_only": ["/proc"]}}),
        ] {
            assert!(checked(entry.clone()).is_err(), "{entry}");
        }
        let braces = checked(serde_json::json!({"x": {"command": "sh", "args": ["{{literal}}"]}}))
            .expect("escaped braces");
        assert_eq!(
            braces.launch("x", &values(&[])).expect("launch").args,
            [std::ffi::OsString::from("{literal}")]
        );
    }
}
