//! Building the provider registry from config tables and the conventional
//! environment variables, with the environment passed in as a closure.

use crate::common;

use common::{ignore, request};
use roster_models::{ConfigError, ProviderConfig, ProviderKind, ProviderRegistry};
use roster_testkit::{FakeModelServer, Reply};
use std::collections::{BTreeMap, HashMap};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[tokio::test]
async fn env_vars_make_openai_and_anthropic() {
    let server = FakeModelServer::start().await;
    server.push_all([Reply::text("from openai"), Reply::text("from anthropic")]);
    let base = server.openai_base_url();
    let anthropic_base = server.anthropic_base_url();
    let lookup = env(&[
        ("OPENAI_API_KEY", "sk-env"),
        ("OPENAI_BASE_URL", &base),
        ("ANTHROPIC_API_KEY", "ant-env"),
        ("ANTHROPIC_BASE_URL", &anthropic_base),
    ]);
    let registry = ProviderRegistry::from_config(Vec::new(), &lookup).expect("builds");
    assert_eq!(registry.names(), ["anthropic", "openai"]);
    let openai = registry.get("openai").expect("openai");
    assert_eq!(openai.name(), "openai");
    assert_eq!(
        openai
            .chat(&request(false), &ignore)
            .await
            .expect("ok")
            .text,
        "from openai"
    );
    let anthropic = registry.get("anthropic").expect("anthropic");
    assert_eq!(
        anthropic
            .chat(&request(false), &ignore)
            .await
            .expect("ok")
            .text,
        "from anthropic"
    );
    let sent = server.requests();
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(sent[0].header("authorization"), Some("Bearer sk-env"));
    assert_eq!(sent[1].header("x-api-key"), Some("ant-env"));
}

#[test]
fn no_keys_no_providers() {
    let registry = ProviderRegistry::from_config(Vec::new(), &|_| None).expect("builds");
    assert!(registry.names().is_empty());
    let blank = env(&[("OPENAI_API_KEY", "  ")]);
    assert!(ProviderRegistry::from_config(Vec::new(), &blank)
        .expect("builds")
        .names()
        .is_empty());
}

#[tokio::test]
async fn config_table_named_openai_wins_over_env() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("configured"));
    let mut config = ProviderConfig::new("openai", ProviderKind::Openai, server.openai_base_url());
    config.api_key_env = Some("MY_OPENAI_KEY".into());
    let lookup = env(&[
        ("OPENAI_API_KEY", "sk-env"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:1/v1"),
        ("MY_OPENAI_KEY", "sk-config"),
    ]);
    let registry = ProviderRegistry::from_config(vec![config], &lookup).expect("builds");
    assert_eq!(registry.names(), ["openai"]);
    let provider = registry.get("openai").expect("openai");
    assert_eq!(
        provider
            .chat(&request(false), &ignore)
            .await
            .expect("ok")
            .text,
        "configured"
    );
    let sent = server.last_request().expect("recorded");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-config"));
}

#[test]
fn config_errors() {
    let missing = {
        let mut c = ProviderConfig::new("local", ProviderKind::Openai, "http://127.0.0.1:1/v1");
        c.api_key_env = Some("NOT_SET".into());
        c
    };
    assert!(matches!(
        ProviderRegistry::from_config(vec![missing], &|_| None),
        Err(ConfigError::MissingEnv { .. })
    ));
    let twice = ProviderConfig::new("x", ProviderKind::Openai, "http://127.0.0.1:1/v1");
    assert!(matches!(
        ProviderRegistry::from_config(vec![twice.clone(), twice], &|_| None),
        Err(ConfigError::Duplicate { .. })
    ));
    let bad_url = ProviderConfig::new("x", ProviderKind::Anthropic, "not a url");
    assert!(matches!(
        ProviderRegistry::from_config(vec![bad_url], &|_| None),
        Err(ConfigError::InvalidBaseUrl { .. })
    ));
    let mut bad_header = ProviderConfig::new("x", ProviderKind::Openai, "http://h/v1");
    bad_header.headers.insert("bad header".into(), "v".into());
    assert!(matches!(
        ProviderRegistry::from_config(vec![bad_header], &|_| None),
        Err(ConfigError::InvalidHeader { .. })
    ));
    let unnamed = ProviderConfig::new("", ProviderKind::Openai, "http://h/v1");
    assert_eq!(
        ProviderRegistry::from_config(vec![unnamed], &|_| None).err(),
        Some(ConfigError::EmptyName)
    );
}

#[test]
fn deserialises_provider_tables_from_toml() {
    let text = r#"
        [azure]
        kind = "openai"
        base_url = "https://example.openai.azure.com/openai/deployments/gpt4o"
        api_key_env = "AZURE_KEY"
        auth_header = "api-key"
        query = { api-version = "2024-06-01" }
        timeout_secs = 30

        [claude]
        kind = "anthropic"
        api_key = "sk-ant-secret"
        headers = { anthropic-beta = "x" }
        stream = false
    "#;
    let tables: BTreeMap<String, ProviderConfig> = toml::from_str(text).expect("parses");
    let configs: Vec<ProviderConfig> = tables
        .into_iter()
        .map(|(name, mut c)| {
            c.name = name;
            c
        })
        .collect();
    let azure = &configs[0];
    assert_eq!(
        (azure.kind, azure.timeout_secs, azure.connect_timeout_secs),
        (ProviderKind::Openai, 30, 10)
    );
    assert_eq!(azure.max_retries, None, "unset: the router policy decides");
    assert_eq!(
        azure.query.get("api-version").map(String::as_str),
        Some("2024-06-01")
    );
    let claude = &configs[1];
    assert_eq!(
        (claude.kind, claude.stream, claude.max_tokens),
        (ProviderKind::Anthropic, Some(false), None)
    );
    assert!(!format!("{claude:?}").contains("sk-ant-secret"));

    let lookup = env(&[("AZURE_KEY", "k")]);
    let registry = ProviderRegistry::from_config(configs, &lookup).expect("builds");
    assert_eq!(registry.names(), ["azure", "claude"]);

    let typo = "kind = \"openai\"\napi_key_evn = \"X\"\n";
    assert!(
        toml::from_str::<ProviderConfig>(typo).is_err(),
        "unknown fields are rejected"
    );
}
