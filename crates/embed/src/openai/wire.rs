//! The OpenAI `/v1/embeddings` wire format: the request body, reading a
//! success body into vectors in input order, and the message of an error
//! body.
//!
//! Owns parsing and checking; must never perform I/O, and never copy a body
//! (or an input text) into an error message: only counts and shapes.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::EmbedError;
use crate::vector::l2_normalize;

/// The JSON body of one embeddings request. `encoding_format` is explicit
/// because some compatible servers default to base64.
pub(crate) fn request_body(model: &str, inputs: &[String], dimensions: Option<usize>) -> Vec<u8> {
    let mut body = json!({
        "model": model,
        "input": inputs,
        "encoding_format": "float",
    });
    if let Some(d) = dimensions {
        body["dimensions"] = json!(d);
    }
    body.to_string().into_bytes()
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

/// The vectors of a success body, normalised and in input order. `inputs`
/// is how many were sent; `dimensions`, when known, is checked.
pub(crate) fn parse_vectors(
    body: &[u8],
    inputs: usize,
    dimensions: Option<usize>,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let invalid = EmbedError::InvalidResponse;
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("not an embeddings body ({e})")))?;
    if response.data.len() != inputs {
        return Err(invalid(format!(
            "{} embeddings for {inputs} inputs",
            response.data.len()
        )));
    }
    let expected = dimensions.or_else(|| response.data.first().map(|i| i.embedding.len()));
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for item in response.data {
        let Item {
            index,
            mut embedding,
        } = item;
        let slot = slots
            .get_mut(index)
            .ok_or_else(|| invalid(format!("index {index} out of range for {inputs} inputs")))?;
        if slot.is_some() {
            return Err(invalid(format!("index {index} appears twice")));
        }
        if Some(embedding.len()) != expected || embedding.is_empty() {
            return Err(invalid(format!(
                "embedding {index} has {} dimensions, expected {}",
                embedding.len(),
                expected.unwrap_or(0)
            )));
        }
        // Normalising here: OpenAI's vectors are already unit length, but
        // compatible servers' are not always, and callers rely on it.
        if !l2_normalize(&mut embedding) {
            return Err(invalid(format!("embedding {index} is all zeros")));
        }
        *slot = Some(embedding);
    }
    // Every slot is filled: as many items as slots and no index twice.
    Ok(slots.into_iter().flatten().collect())
}

/// `error.message` of an OpenAI-style error body, if it has one.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let message = match error {
        Value::String(s) => s.as_str(),
        other => other.get("message")?.as_str()?,
    };
    Some(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_carries_dimensions_only_when_asked() {
        let texts = vec!["a".to_owned()];
        let body: Value = serde_json::from_slice(&request_body("m", &texts, None)).expect("json");
        assert_eq!(body["input"], json!(["a"]));
        assert_eq!(body["encoding_format"], "float");
        assert!(body.get("dimensions").is_none());
        let body: Value =
            serde_json::from_slice(&request_body("m", &texts, Some(8))).expect("json");
        assert_eq!(body["dimensions"], 8);
    }

    #[test]
    fn vectors_come_back_in_input_order_and_normalised() {
        let body = br#"{"data":[{"index":1,"embedding":[0,2]},{"index":0,"embedding":[3,4]}]}"#;
        let v = parse_vectors(body, 2, Some(2)).expect("valid");
        assert_eq!(v, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
    }

    #[test]
    fn malformed_answers_are_invalid() {
        let cases: [(&[u8], usize, Option<usize>); 6] = [
            (b"not json", 1, None),
            (br#"{"data":[]}"#, 1, None),
            (br#"{"data":[{"index":3,"embedding":[1]}]}"#, 1, None),
            (
                br#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[1]}]}"#,
                2,
                None,
            ),
            (br#"{"data":[{"index":0,"embedding":[1,0]}]}"#, 1, Some(3)),
            (br#"{"data":[{"index":0,"embedding":[0,0]}]}"#, 1, None),
        ];
        for (body, n, dims) in cases {
            let err = parse_vectors(body, n, dims).expect_err("invalid");
            assert_eq!(err.code(), "embedder_invalid_response");
        }
    }

    #[test]
    fn reads_error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad input","type":"x"}}"#).as_deref(),
            Some("bad input")
        );
        assert_eq!(
            error_message(br#"{"error":"plain"}"#).as_deref(),
            Some("plain")
        );
        assert_eq!(error_message(b"<html>"), None);
    }
}
