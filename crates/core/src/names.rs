//! Names people give things (agents, knowledge sources): plain text that
//! is also a path segment and a CLI argument, and never mistaken for an id.

use crate::error::ValidationError;

/// 1-64 letters, digits, `-`, `_` or `.`, starting with a letter or digit,
/// and not starting like an id of the same kind (`reserved`).
pub(crate) fn validate_plain_name(name: &str, reserved: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && !name.starts_with(reserved);
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            format!("must be 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit (and not `{reserved}`)"),
        ))
    }
}

/// Source names are path segments and CLI arguments: keep them plain.
pub fn validate_source_name(name: &str) -> Result<(), ValidationError> {
    validate_plain_name(name, "src_")
}
