//! Roster's tool-call protocol for local models, which mostly ship chat
//! templates without tools (SmolLM2's has none).
//!
//! The model is told the tools in its system message and calls them by
//! writing `<tool_call>[{"name": …, "arguments": {…}}]</tool_call>` — the
//! shape SmolLM2 was tuned on. It may write prose freely; once it writes
//! `<tool_call>` the rest of its turn is held to a grammar (see
//! `constrain`), so every call names an offered tool and its arguments
//! match that tool's schema.

use serde_json::{json, Value};

/// What the model writes to begin its calls.
pub const CALL_START: &str = "<tool_call>";
/// What ends them.
pub const CALL_END: &str = "</tool_call>";

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments (an object).
    pub parameters: Value,
}

/// The tools a generation may call, and whether it must call one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offer<'a> {
    pub tools: &'a [ToolSpec],
    /// The answer is a call (the turn starts with the call marker), as
    /// OpenAI's `tool_choice: "required"`.
    pub required: bool,
}

impl<'a> Offer<'a> {
    /// The model may call `tools` or answer in prose.
    pub fn auto(tools: &'a [ToolSpec]) -> Self {
        Self {
            tools,
            required: false,
        }
    }
}

/// A call the model made; `arguments` always matches the tool's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// The paragraph added to the system message when tools are offered.
pub fn instructions(tools: &[ToolSpec]) -> String {
    let listed: Vec<Value> = tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
        .collect();
    let listed = serde_json::to_string(&listed).unwrap_or_else(|_| "[]".into());
    let example = tools.first().map_or("tool_name", |t| t.name.as_str());
    format!(
        "You compose function calls. Given a question and a set of functions, decide whether one or more \
         function calls answer it. If none of the functions fits, say so in plain text.\n\n\
         The functions you can call:\n<tools>{listed}</tools>\n\n\
         To call functions, reply with exactly this format and no other text, giving each argument the type its parameter asks for:\n\
         {CALL_START}[{{\"name\": \"{example}\", \"arguments\": {{\"argument\": \"value\"}}}}]{CALL_END}"
    )
}

/// How calls the model already made are written back into the
/// conversation, in the layout the grammar makes it write (`name` first,
/// one space after `,` and `:`).
pub fn render_calls(calls: &[ToolCall]) -> String {
    let listed: Vec<String> = calls
        .iter()
        .map(|c| {
            format!(
                "{{\"name\": {}, \"arguments\": {}}}",
                spaced(&Value::String(c.name.clone())),
                spaced(&c.arguments)
            )
        })
        .collect();
    format!("{CALL_START}[{}]{CALL_END}", listed.join(", "))
}

fn separate<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

/// JSON with one space after `,` and `:`, as the grammar lays it out.
fn spaced(value: &Value) -> String {
    struct Spaced;
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            separate(writer, first)
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            separate(writer, first)
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
        ) -> std::io::Result<()> {
            writer.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Spaced);
    match serde::Serialize::serialize(value, &mut serializer) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => "{}".to_owned(),
    }
}

/// JSON output settings for the grammar: one space after `,` and `:` and
/// no other whitespace, so a small model cannot wander off into spaces.
fn layout() -> Value {
    json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": ", "lenient": false})
}

/// The schema of one call of `tool`.
fn call_schema(tool: &ToolSpec, lenient: bool) -> Value {
    let arguments = if tool.parameters.is_object() {
        tool.parameters.clone()
    } else {
        json!({"type": "object"})
    };
    let mut layout = layout();
    layout["lenient"] = Value::Bool(lenient);
    json!({
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": false,
        "x-guidance": layout,
    })
}

/// The grammar of everything after [`CALL_START`]: a list of calls (or one
/// bare call, the shape Qwen models write), then [`CALL_END`]. `lenient`
/// lets schema keywords the engine does not support be ignored instead of
/// refusing the grammar.
pub(crate) fn grammar(tools: &[ToolSpec], lenient: bool) -> String {
    let calls: Vec<Value> = tools.iter().map(|t| call_schema(t, lenient)).collect();
    let mut layout = layout();
    layout["lenient"] = Value::Bool(lenient);
    let list = json!({
        "type": "array",
        "items": {"anyOf": calls},
        "minItems": 1,
        "x-guidance": layout,
    });
    let single = json!({"anyOf": calls, "x-guidance": layout});
    format!(
        "start: GAP? calls GAP? \"{CALL_END}\"\n\
         calls: list | single\n\
         list: %json {list}\n\
         single: %json {single}\n\
         GAP: /[ \\n]{{1,2}}/\n"
    )
}

/// The calls in the text the grammar accepted (without the markers).
pub(crate) fn parse(body: &str) -> Result<Vec<ToolCall>, String> {
    let body = body.trim();
    let body = body.strip_suffix(CALL_END).unwrap_or(body).trim();
    let value: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let items = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    items
        .into_iter()
        .map(|item| {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .ok_or("a call without a name")?
                .to_owned();
            let arguments = item.get("arguments").cloned().unwrap_or(json!({}));
            Ok(ToolCall { name, arguments })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> ToolSpec {
        ToolSpec {
            name: "get_weather".into(),
            description: "Weather in a city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }
    }

    #[test]
    fn the_instructions_list_every_tool_and_the_format() {
        let text = instructions(&[weather()]);
        assert!(text.contains("\"name\":\"get_weather\""));
        assert!(text.contains("\"required\":[\"city\"]"));
        assert!(text.contains("<tool_call>[{\"name\": \"get_weather\""));
    }

    #[test]
    fn lists_and_single_calls_parse() {
        let calls = parse(
            r#"[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]</tool_call>"#,
        );
        assert_eq!(
            calls,
            Ok(vec![
                ToolCall {
                    name: "a".into(),
                    arguments: json!({"x": 1})
                },
                ToolCall {
                    name: "b".into(),
                    arguments: json!({})
                },
            ])
        );
        let single = parse("\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>");
        assert_eq!(single.map(|c| c.len()), Ok(1));
        assert!(parse("[{\"arguments\": {}}]").is_err());
    }

    #[test]
    fn calls_render_back_in_the_asked_shape() {
        let text = render_calls(&[ToolCall {
            name: "a".into(),
            arguments: json!({"x": 1}),
        }]);
        assert_eq!(
            text,
            r#"<tool_call>[{"name": "a", "arguments": {"x": 1}}]</tool_call>"#
        );
    }
}
