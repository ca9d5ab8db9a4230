//! Deserialisation errors in words for the people and models who caused
//! them. serde names the Rust type it wanted ("expected struct
//! PostMessage", "expected u32"); those names mean nothing outside this
//! code base, so they are rewritten in terms of JSON.

/// Rust's names for what serde expected, and what they are in JSON.
const EXPECTATIONS: &[(&str, &str)] = &[
    ("struct variant ", "a JSON object"),
    ("tuple struct ", "a JSON list"),
    ("unit struct ", "null"),
    ("newtype struct ", "a value"),
    ("struct ", "a JSON object"),
    ("enum ", "one of the allowed values"),
    ("tuple variant ", "a JSON list"),
    ("newtype variant ", "a value"),
    ("unit variant ", "a name"),
    ("tuple of size ", "a JSON list of "),
    ("a tuple of size ", "a JSON list of "),
];

const NUMBERS: &[(&str, &str)] = &[
    ("u8", "a whole number from 0 to 255"),
    ("u16", "a whole number from 0 to 65535"),
    ("u32", "a whole number from 0 to 4294967295"),
    ("u64", "a non-negative whole number"),
    ("u128", "a non-negative whole number"),
    ("usize", "a non-negative whole number"),
    ("i8", "a whole number"),
    ("i16", "a whole number"),
    ("i32", "a whole number"),
    ("i64", "a whole number"),
    ("i128", "a whole number"),
    ("isize", "a whole number"),
    ("f32", "a number"),
    ("f64", "a number"),
    ("char", "a single character"),
];

/// `message` with Rust type names replaced by what they mean in JSON.
pub fn plain_serde_error(message: &str) -> String {
    let message = message
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(message);
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("expected ") {
        let (before, after) = rest.split_at(at + "expected ".len());
        out.push_str(before);
        rest = after;
        if let Some((prefix, meaning)) = EXPECTATIONS.iter().find(|(p, _)| rest.starts_with(p)) {
            out.push_str(meaning);
            let name = &rest[prefix.len()..];
            // A size is kept ("a JSON list of 2"); a type name is dropped.
            let end = name
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(name.len());
            if prefix.contains("tuple of size") {
                out.push_str(&name[..end]);
                out.push_str(" elements");
            }
            rest = &name[end..];
            continue;
        }
        let word_end = rest
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(rest.len());
        if let Some((_, meaning)) = NUMBERS.iter().find(|(n, _)| *n == &rest[..word_end]) {
            out.push_str(meaning);
            rest = &rest[word_end..];
        }
    }
    out.push_str(rest);
    out.replace("invalid type: map", "invalid type: object")
        .replace("invalid type: sequence", "invalid type: list")
        .replace("expected a sequence", "expected a list")
        .replace("expected a map", "expected a JSON object")
        .replace("expected unit", "expected null")
        .replace("untagged enum ", "allowed shape ")
}

#[cfg(test)]
mod tests {
    use super::plain_serde_error;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        count: u32,
        mode: Mode,
        pair: Option<(i64, String)>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
    }

    fn error(json: &str) -> String {
        let e = serde_json::from_str::<Body>(json).expect_err("bad input");
        plain_serde_error(&e.to_string())
    }

    #[test]
    fn no_rust_names_survive() {
        for (json, wanted) in [
            ("\"text\"", "expected a JSON object"),
            ("[1]", "expected a JSON object"),
            ("[[1]]", "invalid type: list"),
            (
                r#"{"count": -1, "mode": "fast"}"#,
                "expected a whole number from 0 to 4294967295",
            ),
            (
                r#"{"count": 1, "mode": "fast", "pair": [1]}"#,
                "a JSON list of 2 elements",
            ),
            (
                r#"{"count": 1, "mode": "fast", "pair": ["a", "b"]}"#,
                "expected a whole number",
            ),
        ] {
            let plain = error(json);
            assert!(plain.contains(wanted), "{json}: {plain}");
            for rust in [
                "struct", "Body", "Mode", "u32", "i64", "enum", "tuple", "::",
            ] {
                assert!(!plain.contains(rust), "{json}: `{rust}` in {plain}");
            }
        }
        assert_eq!(
            plain_serde_error("invalid type: integer `3`, expected enum Mode"),
            "invalid type: integer `3`, expected one of the allowed values"
        );
        assert_eq!(
            plain_serde_error("Failed to deserialize the JSON body into the target type: missing field `content` at line 1 column 2"),
            "missing field `content` at line 1 column 2"
        );
    }
}
