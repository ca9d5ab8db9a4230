//! The configuration of an embedder as it appears in Roster's config file,
//! and [`build`], which turns it into a ready embedder.
//!
//! Owns defaults and validation of the configuration and where the API key
//! comes from. Must never print a key: `Debug` is written by hand for that.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::EmbedError;
use crate::local::{LocalEmbedder, LocalOptions};
use crate::openai::{OpenAiEmbedder, OpenAiOptions, DEFAULT_BASE_URL};
use crate::DynEmbedder;

/// Which embedder to use, tagged by `kind`:
///
/// ```toml
/// [embedder]
/// kind = "openai"
/// model = "text-embedding-3-small"
/// dimensions = 256
/// ```
#[derive(serde::Deserialize, Clone)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EmbedderConfig {
    /// Any server speaking OpenAI's `POST {base_url}/embeddings`.
    Openai {
        model: String,
        /// Default `https://api.openai.com/v1`.
        base_url: Option<String>,
        /// The key itself; prefer `api_key_env`.
        api_key: Option<String>,
        /// Environment variable holding the key; default `OPENAI_API_KEY`.
        api_key_env: Option<String>,
        /// Header carrying the bare key (e.g. `api-key` for Azure); default
        /// `Authorization: Bearer <key>`.
        auth_header: Option<String>,
        /// Ask the model for shorter vectors (text-embedding-3 models).
        dimensions: Option<usize>,
        /// Per HTTP request; default 30.
        timeout_secs: Option<u64>,
        /// Inputs per HTTP request; default 128.
        max_batch: Option<usize>,
    },
    /// A BERT sentence encoder run in-process.
    Local {
        /// Directory holding config.json, tokenizer.json, model.safetensors.
        path: PathBuf,
        /// Texts per forward pass; default 32.
        max_batch: Option<usize>,
        /// CPU threads for the model; default: all cores.
        threads: Option<usize>,
    },
}

impl fmt::Debug for EmbedderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmbedderConfig::Openai {
                model,
                base_url,
                api_key,
                api_key_env,
                auth_header,
                dimensions,
                timeout_secs,
                max_batch,
            } => f
                .debug_struct("Openai")
                .field("model", model)
                .field("base_url", base_url)
                .field("api_key", &api_key.as_ref().map(|_| "<redacted>"))
                .field("api_key_env", api_key_env)
                .field("auth_header", auth_header)
                .field("dimensions", dimensions)
                .field("timeout_secs", timeout_secs)
                .field("max_batch", max_batch)
                .finish(),
            EmbedderConfig::Local {
                path,
                max_batch,
                threads,
            } => f
                .debug_struct("Local")
                .field("path", path)
                .field("max_batch", max_batch)
                .field("threads", threads)
                .finish(),
        }
    }
}

/// Builds the configured embedder: loads a local model (on a blocking
/// thread), or checks an OpenAI configuration and learns its dimensions
/// (from the request, a known model, or one probe call).
///
/// `env` reads environment variables (pass `|k| std::env::var(k).ok()`); it
/// is only called before this returns, so the returned future is `Send` and
/// `'static` even though `env` is neither.
pub fn build(
    config: &EmbedderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> impl Future<Output = Result<DynEmbedder, EmbedError>> + Send + 'static {
    let plan = plan(config, env);
    async move {
        match plan? {
            Plan::Openai(options) => {
                let embedder = OpenAiEmbedder::connect(options).await?;
                Ok(Arc::new(embedder) as DynEmbedder)
            }
            Plan::Local(options) => {
                let embedder = tokio::task::spawn_blocking(move || LocalEmbedder::load(&options))
                    .await
                    .map_err(|e| EmbedError::Model(format!("model loading task failed: {e}")))??;
                Ok(Arc::new(embedder) as DynEmbedder)
            }
        }
    }
}

enum Plan {
    Openai(OpenAiOptions),
    Local(LocalOptions),
}

fn positive<T: PartialEq + Default + Copy>(
    value: Option<T>,
    name: &str,
) -> Result<Option<T>, EmbedError> {
    match value {
        Some(v) if v == T::default() => Err(EmbedError::Config(format!(
            "`{name}` must be greater than zero"
        ))),
        other => Ok(other),
    }
}

/// Everything that needs `env` or can be checked without I/O.
fn plan(config: &EmbedderConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Plan, EmbedError> {
    match config {
        EmbedderConfig::Openai {
            model,
            base_url,
            api_key,
            api_key_env,
            auth_header,
            dimensions,
            timeout_secs,
            max_batch,
        } => {
            let base_url = base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
            let api_key = resolve_key(api_key, api_key_env.as_deref(), &base_url, env)?;
            let mut options = OpenAiOptions::new(model.clone());
            options.base_url = base_url;
            options.api_key = api_key;
            options.auth_header = auth_header.clone();
            options.dimensions = positive(*dimensions, "dimensions")?;
            if let Some(secs) = positive(*timeout_secs, "timeout_secs")? {
                options.timeout = Duration::from_secs(secs);
            }
            if let Some(n) = positive(*max_batch, "max_batch")? {
                options.max_batch = n;
            }
            Ok(Plan::Openai(options))
        }
        EmbedderConfig::Local {
            path,
            max_batch,
            threads,
        } => {
            let mut options = LocalOptions::new(path.clone());
            if let Some(n) = positive(*max_batch, "max_batch")? {
                options.max_batch = n;
            }
            options.threads = positive(*threads, "threads")?;
            Ok(Plan::Local(options))
        }
    }
}

/// The key from the config, else from the environment. A missing key is an
/// error only when it must exist: an explicitly named variable, or OpenAI's
/// own endpoint. Local servers (Ollama, vLLM...) usually want none.
fn resolve_key(
    api_key: &Option<String>,
    api_key_env: Option<&str>,
    base_url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, EmbedError> {
    if let Some(key) = api_key.as_ref().filter(|k| !k.is_empty()) {
        return Ok(Some(key.clone()));
    }
    let var = api_key_env.unwrap_or("OPENAI_API_KEY");
    match env(var).filter(|k| !k.is_empty()) {
        Some(key) => Ok(Some(key)),
        None if api_key_env.is_some() => Err(EmbedError::Config(format!(
            "environment variable {var} (api_key_env) is not set"
        ))),
        None if base_url.trim_end_matches('/') == DEFAULT_BASE_URL => Err(EmbedError::Config(
            format!("no API key for {DEFAULT_BASE_URL}: set {var} or api_key"),
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EmbedderConfig, serde_json::Error> {
        serde_json::from_str(text)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_both_kinds_and_rejects_unknown_fields() {
        let c = parse(r#"{"kind":"openai","model":"m","dimensions":256}"#).expect("openai");
        assert!(matches!(
            c,
            EmbedderConfig::Openai {
                dimensions: Some(256),
                ..
            }
        ));
        let c = parse(r#"{"kind":"local","path":"/models/minilm","threads":2}"#).expect("local");
        assert!(matches!(
            c,
            EmbedderConfig::Local {
                threads: Some(2),
                ..
            }
        ));
        assert!(parse(r#"{"kind":"local","path":"/m","thread":2}"#).is_err());
        assert!(parse(r#"{"kind":"cohere","model":"m"}"#).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = parse(r#"{"kind":"openai","model":"m","api_key":"sk-secret"}"#).expect("config");
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn openai_needs_a_key_only_where_it_must_exist() {
        let official = parse(r#"{"kind":"openai","model":"m"}"#).expect("config");
        let err = plan(&official, &no_env).err().expect("missing key");
        assert_eq!(err.code(), "embedder_config");

        let with_env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-env".to_owned());
        let Ok(Plan::Openai(o)) = plan(&official, &with_env) else {
            panic!("expected an openai plan");
        };
        assert_eq!(o.api_key.as_deref(), Some("sk-env"));

        let local = parse(r#"{"kind":"openai","model":"m","base_url":"http://127.0.0.1:1/v1"}"#)
            .expect("config");
        let Ok(Plan::Openai(o)) = plan(&local, &no_env) else {
            panic!("expected an openai plan");
        };
        assert_eq!(o.api_key, None);

        let named = parse(
            r#"{"kind":"openai","model":"m","base_url":"http://127.0.0.1:1/v1","api_key_env":"EMB_KEY"}"#,
        )
        .expect("config");
        let err = plan(&named, &no_env).err().expect("named variable missing");
        assert!(err.to_string().contains("EMB_KEY"));
    }

    #[test]
    fn zero_limits_are_refused() {
        for text in [
            r#"{"kind":"openai","model":"m","api_key":"k","max_batch":0}"#,
            r#"{"kind":"openai","model":"m","api_key":"k","dimensions":0}"#,
            r#"{"kind":"openai","model":"m","api_key":"k","timeout_secs":0}"#,
            r#"{"kind":"local","path":"/m","threads":0}"#,
        ] {
            let err = plan(&parse(text).expect("config"), &no_env)
                .err()
                .expect("zero refused");
            assert_eq!(err.code(), "embedder_config", "{text}");
        }
    }

    #[tokio::test]
    async fn a_missing_model_directory_is_a_load_error() {
        let c = parse(r#"{"kind":"local","path":"/nonexistent/roster-embed-model"}"#).expect("c");
        // Spawned: the future must be Send + 'static although `env` is not.
        let err = tokio::spawn(build(&c, &no_env))
            .await
            .expect("task")
            .err()
            .expect("no model there");
        assert_eq!(err.code(), "embedder_load");
    }
}
