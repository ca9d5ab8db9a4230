//! The chat template a GGUF file ships (Jinja, as Hugging Face renders it),
//! turning messages into the one prompt string the model was trained on.

use crate::LocalError;
use serde::Serialize;

/// One message of the conversation, as chat templates read it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_owned(),
            content: content.into(),
        }
    }
}

/// ChatML, for files without a template of their own.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Renders `messages` with `template` (or ChatML), ending with the prompt
/// for the assistant's turn.
pub(crate) fn render(
    template: Option<&str>,
    messages: &[Message],
    bos_token: Option<&str>,
    eos_token: Option<&str>,
) -> Result<String, LocalError> {
    let mut env = minijinja::Environment::new();
    // Templates written for Python's Jinja call string methods
    // (`.strip()`, `.startswith()`); pycompat answers them.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        },
    );
    let source = template.unwrap_or(CHATML);
    env.add_template("chat", source)
        .map_err(|e| LocalError::Template(e.to_string()))?;
    let chat = env
        .get_template("chat")
        .map_err(|e| LocalError::Template(e.to_string()))?;
    chat.render(minijinja::context! {
        messages => messages,
        add_generation_prompt => true,
        bos_token => bos_token.unwrap_or_default(),
        eos_token => eos_token.unwrap_or_default(),
    })
    .map_err(|e| LocalError::Template(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, as its GGUF file ships it.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn the_files_template_renders_a_conversation() {
        let messages = [
            Message::new("user", "Hi"),
            Message::new("assistant", "Hello!"),
            Message::new("user", "2+2?"),
        ];
        let prompt = render(Some(SMOLLM2), &messages, None, None).unwrap_or_default();
        assert_eq!(
            prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n\
             <|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_system_message_replaces_the_default_one() {
        let messages = [
            Message::new("system", "Be brief."),
            Message::new("user", "Hi"),
        ];
        let prompt = render(Some(SMOLLM2), &messages, None, None).unwrap_or_default();
        assert_eq!(
            prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let template = "{% if messages[0]['role'] == 'bad' %}{{ raise_exception('no bad roles') }}{% endif %}{% for m in messages %}{{ m['content'].strip() }}{% endfor %}";
        let ok = render(
            Some(template),
            &[Message::new("user", "  hi  ")],
            None,
            None,
        );
        assert_eq!(ok.ok().as_deref(), Some("hi"));
        let refused = render(Some(template), &[Message::new("bad", "x")], None, None);
        assert!(matches!(refused, Err(LocalError::Template(m)) if m.contains("no bad roles")));
    }

    #[test]
    fn files_without_a_template_get_chatml() {
        let prompt = render(None, &[Message::new("user", "Hi")], None, None).unwrap_or_default();
        assert_eq!(
            prompt,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
