//! A tool result as the model reads it: the text parts in order, other
//! content named rather than dumped (an image is not text), the structured
//! result when there is no text, and the error flag kept.
//!
//! Works on the JSON form of the result, so content types a newer server
//! sends still come through as what they are.

use roster_tool::ToolOutput;
use serde_json::Value;

pub(crate) fn result(result: &rmcp::model::CallToolResult) -> ToolOutput {
    let value = serde_json::to_value(result).unwrap_or(Value::Null);
    let is_error = value
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut parts: Vec<String> = value
        .get("content")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(content).collect())
        .unwrap_or_default();
    if parts.iter().all(|p| p.trim().is_empty()) {
        if let Some(structured) = value.get("structuredContent").filter(|v| !v.is_null()) {
            parts = vec![structured.to_string()];
        }
    }
    let text = parts.join("\n");
    ToolOutput { text, is_error }
}

fn content(item: &Value) -> String {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let field = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or_default();
    match kind {
        "text" => field("text").to_owned(),
        "image" | "audio" => format!(
            "[{kind}: {}, {} bytes base64]",
            field("mimeType"),
            field("data").len()
        ),
        "resource" => {
            let resource = item.get("resource").cloned().unwrap_or(Value::Null);
            let uri = resource
                .get("uri")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match resource.get("text").and_then(Value::as_str) {
                Some(text) => format!("[resource {uri}]\n{text}"),
                None => format!("[resource {uri}: binary]"),
            }
        }
        "resource_link" => format!("[resource link: {} {}]", field("name"), field("uri")),
        other => format!("[{other} content]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> rmcp::model::CallToolResult {
        serde_json::from_value(value).expect("result")
    }

    #[test]
    fn text_parts_come_in_order_and_errors_stay_errors() {
        let out = result(&parse(serde_json::json!({
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "isError": true
        })));
        assert_eq!(out.text, "a\nb");
        assert!(out.is_error);
    }

    #[test]
    fn images_are_named_not_dumped() {
        let out = result(&parse(serde_json::json!({
            "content": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}]
        })));
        assert_eq!(out.text, "[image: image/png, 4 bytes base64]");
        assert!(!out.is_error);
    }

    #[test]
    fn structured_content_stands_in_for_missing_text() {
        let out = result(&parse(serde_json::json!({
            "content": [],
            "structuredContent": {"sum": 3}
        })));
        assert_eq!(out.text, r#"{"sum":3}"#);
    }
}
