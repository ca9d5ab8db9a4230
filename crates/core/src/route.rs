//! Model routes: `provider/model`, optionally followed by ordered fallbacks.

use crate::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One provider + model pair, written `provider/model`. The model part may
/// itself contain slashes (`openai/meta-llama/Llama-3-8B`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTarget {
    pub provider: String,
    pub model: String,
}

impl RouteTarget {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        let (provider, model) = raw.split_once('/').ok_or_else(|| {
            ValidationError::new(
                "model",
                format!("`{raw}` is not a route of the form provider/model"),
            )
        })?;
        let provider_ok = !provider.is_empty()
            && provider
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !provider_ok || model.trim().is_empty() {
            return Err(ValidationError::new(
                "model",
                format!("`{raw}` is not a route of the form provider/model"),
            ));
        }
        Ok(Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
        })
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// The primary target first, then fallbacks tried in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelRoute {
    pub targets: Vec<RouteTarget>,
}

impl ModelRoute {
    pub fn parse(primary: &str, fallbacks: &[String]) -> Result<Self, ValidationError> {
        let mut targets = vec![RouteTarget::parse(primary)?];
        for fallback in fallbacks {
            targets.push(RouteTarget::parse(fallback)?);
        }
        Ok(Self { targets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_provider_and_nested_model() {
        let t = RouteTarget::parse("openai/meta-llama/Llama-3").expect("valid");
        assert_eq!(t.provider, "openai");
        assert_eq!(t.model, "meta-llama/Llama-3");
        assert_eq!(t.to_string(), "openai/meta-llama/Llama-3");
    }

    #[test]
    fn rejects_malformed_routes() {
        for bad in ["gpt-4", "/gpt", "openai/", "op en/x", ""] {
            assert!(RouteTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
