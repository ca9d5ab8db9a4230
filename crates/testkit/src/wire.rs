//! Protocol-neutral pieces shared by the two renderers: what a rendered answer
//! looks like before it becomes an HTTP response, the facts read from the
//! request, and the helpers that split text into stream chunks.

use serde_json::Value;

use crate::reply::Reply;

/// The body of a rendered answer.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// One whole body with its content type.
    Whole {
        content_type: String,
        bytes: Vec<u8>,
    },
    /// Server-sent events, each already formatted and ending in a blank line.
    Events(Vec<String>),
}

/// An answer rendered in one protocol's format, not yet sent.
#[derive(Clone, Debug)]
pub(crate) struct Rendered {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Rendered {
    /// A JSON body with this status.
    pub fn json(status: u16, value: &Value) -> Rendered {
        Rendered {
            status,
            headers: Vec::new(),
            body: Body::Whole {
                content_type: "application/json".to_owned(),
                bytes: value.to_string().into_bytes(),
            },
        }
    }

    /// A server-sent-event stream with status 200.
    pub fn events(events: Vec<String>) -> Rendered {
        Rendered {
            status: 200,
            headers: Vec::new(),
            body: Body::Events(events),
        }
    }
}

/// Token usage to report, taken from the reply.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    pub input: u32,
    pub output: u32,
}

impl Usage {
    pub fn of(reply: &Reply) -> Usage {
        Usage {
            input: reply.input_tokens,
            output: reply.output_tokens,
        }
    }
}

/// What the renderers need to know about the request being answered.
#[derive(Clone, Debug)]
pub(crate) struct RequestInfo {
    /// The request's `model`, echoed back.
    pub model: String,
    /// `stream: true` was asked for.
    pub stream: bool,
    /// OpenAI `stream_options.include_usage: true` was asked for.
    pub include_usage: bool,
    /// A number unique to this request within the server, for ids.
    pub seq: u64,
}

impl RequestInfo {
    pub fn from_body(body: &Value, seq: u64) -> RequestInfo {
        RequestInfo {
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("fake-model")
                .to_owned(),
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            include_usage: body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            seq,
        }
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Splits text into stream chunks by words, each chunk keeping the whitespace
/// that precedes its word, so the chunks concatenate back to the text. Text
/// with a single word is split in two at a character boundary when possible.
pub(crate) fn split_words(text: &str) -> Vec<String> {
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if !c.is_whitespace() && !in_word && current.chars().any(|x| !x.is_whitespace()) {
            chunks.push(std::mem::take(&mut current));
        }
        in_word = !c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    if chunks.len() < 2 {
        return split_pieces(text, 2);
    }
    chunks
}

/// Splits a string into `n` pieces of roughly equal size at character
/// boundaries (fewer when it has fewer than `n` characters; one empty piece
/// for the empty string). The pieces concatenate back to the string.
pub(crate) fn split_pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let n = n.clamp(1, chars.len());
    let size = chars.len().div_ceil(n);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::{split_pieces, split_words};

    #[test]
    fn words_concatenate_back() {
        for text in [
            "Hello brave new world",
            "  lead and trail  ",
            "one",
            "a",
            "",
        ] {
            let chunks = split_words(text);
            assert_eq!(chunks.concat(), text);
        }
        assert_eq!(split_words("Hello brave world").len(), 3);
        assert_eq!(split_words("single").len(), 2);
    }

    #[test]
    fn pieces_concatenate_back() {
        assert_eq!(split_pieces(r#"{"a":1}"#, 3).len(), 3);
        assert_eq!(split_pieces("é€x", 2).concat(), "é€x");
        assert_eq!(split_pieces("", 3), vec![String::new()]);
    }
}
