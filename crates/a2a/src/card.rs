//! The agent card: where it is (`/.well-known/agent-card.json` under the
//! URL given, or that URL when it names a `.json` file), and what Roster
//! keeps of it — name, description, skills, and the one JSON-RPC endpoint
//! it will call with the protocol version that endpoint speaks.
//!
//! Cards are read leniently, like the a2a-python client does
//! (`card_resolver.py`): unknown fields are ignored, and a 0.3-style card
//! (`url`, `preferredTransport`, `protocolVersion`, `additionalInterfaces`)
//! is read as the `supportedInterfaces` it stands for.

use crate::A2aError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where A2A puts an agent's card (spec §8.2).
pub const WELL_KNOWN_PATH: &str = ".well-known/agent-card.json";

/// Longest text Roster keeps of a card's own fields: the card is the
/// remote's text, and parts of it reach every model prompt that offers the
/// tool.
const MAX_TEXT_CHARS: usize = 2_000;
/// Most skills kept of a card.
const MAX_SKILLS: usize = 32;
/// Most examples kept per skill.
const MAX_EXAMPLES: usize = 5;

/// Which JSON-RPC dialect the endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Protocol {
    /// A2A 1.x: `SendMessage`, ProtoJSON enums, header `A2A-Version: 1.0`.
    #[serde(rename = "1.0")]
    V1,
    /// A2A 0.x: `message/send`, `kind` discriminators, lower-case enums.
    #[serde(rename = "0.3")]
    V0,
}

/// What Roster keeps of a remote's card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Card {
    pub name: String,
    pub description: String,
    /// The agent's own version string.
    #[serde(default)]
    pub version: String,
    /// The JSON-RPC endpoint calls go to.
    pub endpoint: String,
    /// The protocol version the endpoint declares (`1.0`, `0.3.0`, …).
    #[serde(default)]
    pub protocol_version: String,
    /// The dialect Roster speaks with it.
    pub protocol: Protocol,
    /// The interface's tenant, sent with every 1.0 request when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub skills: Vec<Skill>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Skill {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub examples: Vec<String>,
}

/// The card's URL for what a tenant gave: a URL whose path names a `.json`
/// file is the card itself; any other is the agent's base URL, under which
/// the card is at `.well-known/agent-card.json` (as `A2ACardResolver` joins
/// them: the base without its trailing `/`, then the path).
pub fn card_url(given: &url::Url) -> url::Url {
    if given.path().ends_with(".json") {
        return given.clone();
    }
    let mut card = given.clone();
    card.set_query(None);
    card.set_fragment(None);
    let base = card.path().trim_end_matches('/').to_owned();
    card.set_path(&format!("{base}/{WELL_KNOWN_PATH}"));
    card
}

/// One entry of `supportedInterfaces`, as both eras write it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Interface {
    #[serde(default)]
    url: String,
    #[serde(default, alias = "transport")]
    protocol_binding: String,
    #[serde(default)]
    protocol_version: String,
    #[serde(default)]
    tenant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSkill {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<Value>,
    #[serde(default)]
    examples: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCard {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    supported_interfaces: Option<Vec<Interface>>,
    // 0.3: the main interface, and the others.
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    preferred_transport: Option<String>,
    #[serde(default)]
    protocol_version: Option<String>,
    #[serde(default)]
    additional_interfaces: Option<Vec<Interface>>,
    #[serde(default)]
    skills: Vec<WireSkill>,
}

/// `major.minor` of a version string, if it has them.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// The interfaces the card offers; a 0.3-style card's `url` and
/// `additionalInterfaces` are read as 1.0's list, all with the card's
/// `protocolVersion` (0.3.0 when it names none, as a2a-python assumes).
fn interfaces(card: WireCard) -> (Vec<Interface>, WireCardText) {
    let text = WireCardText {
        name: card.name,
        description: card.description,
        version: card.version,
        skills: card.skills,
    };
    if let Some(list) = card.supported_interfaces {
        return (list, text);
    }
    let Some(url) = card.url else {
        return (Vec::new(), text);
    };
    let version = card.protocol_version.unwrap_or_else(|| "0.3.0".to_owned());
    let mut list = vec![Interface {
        url,
        protocol_binding: card
            .preferred_transport
            .unwrap_or_else(|| "JSONRPC".to_owned()),
        protocol_version: version.clone(),
        tenant: None,
    }];
    for mut other in card.additional_interfaces.unwrap_or_default() {
        other.protocol_version = version.clone();
        list.push(other);
    }
    (list, text)
}

struct WireCardText {
    name: String,
    description: String,
    version: String,
    skills: Vec<WireSkill>,
}

/// The JSON-RPC interface to use, preferring 1.0 as a2a-python's
/// `ClientFactory` does: exactly 1.0, else the first later one, else the
/// first 0.3 or later, else the first without a version.
fn best_jsonrpc(list: Vec<Interface>) -> Option<Interface> {
    let mut candidates: Vec<Interface> = list
        .into_iter()
        .filter(|i| i.protocol_binding.eq_ignore_ascii_case("JSONRPC") && !i.url.is_empty())
        .collect();
    let rank = |i: &Interface| match major_minor(&i.protocol_version) {
        Some((1, 0)) => 0,
        Some(v) if v > (1, 0) => 1,
        Some(v) if v >= (0, 3) => 2,
        _ if i.protocol_version.trim().is_empty() => 3,
        // Older or unreadable versions: a last resort.
        _ => 4,
    };
    // A stable sort keeps the card's order within a rank.
    candidates.sort_by_key(rank);
    candidates.into_iter().next()
}

/// A value cut to `max` characters, with a mark where it was cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn strings(values: Vec<Value>, max: usize) -> Vec<String> {
    values
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(clip(&s, 200)),
            _ => None,
        })
        .take(max)
        .collect()
}

/// Reads a fetched card; `Err(InvalidCard)` says what makes it unusable.
pub fn parse_card(value: Value) -> Result<Card, A2aError> {
    if !value.is_object() {
        return Err(A2aError::InvalidCard(
            "the agent card is not a JSON object".into(),
        ));
    }
    let card: WireCard = serde_json::from_value(value)
        .map_err(|e| A2aError::InvalidCard(format!("the agent card cannot be read: {e}")))?;
    let (list, text) = interfaces(card);
    if text.name.trim().is_empty() {
        return Err(A2aError::InvalidCard("the agent card has no name".into()));
    }
    let offered: Vec<String> = list
        .iter()
        .map(|i| i.protocol_binding.clone())
        .filter(|b| !b.is_empty())
        .collect();
    let Some(interface) = best_jsonrpc(list) else {
        return Err(A2aError::InvalidCard(if offered.is_empty() {
            "the agent card offers no interface (neither `supportedInterfaces` nor `url`)".into()
        } else {
            format!(
                "the agent card offers no JSON-RPC interface (only {}); Roster calls A2A agents over JSON-RPC",
                offered.join(", ")
            )
        }));
    };
    let endpoint = url::Url::parse(&interface.url).map_err(|e| {
        A2aError::InvalidCard(format!(
            "the card's JSON-RPC endpoint `{}` is not a URL: {e}",
            interface.url
        ))
    })?;
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host().is_none() {
        return Err(A2aError::InvalidCard(format!(
            "the card's JSON-RPC endpoint `{endpoint}` is not an http(s) URL"
        )));
    }
    // Every 0.x dialect sends `message/send`; 1.0 and anything later or
    // unversioned is spoken as 1.0.
    let protocol = match major_minor(&interface.protocol_version) {
        Some((0, _)) => Protocol::V0,
        _ => Protocol::V1,
    };
    let skills = text
        .skills
        .into_iter()
        .filter(|s| !s.id.trim().is_empty() || !s.name.trim().is_empty())
        .take(MAX_SKILLS)
        .map(|s| Skill {
            name: clip(
                if s.name.trim().is_empty() {
                    &s.id
                } else {
                    &s.name
                },
                200,
            ),
            id: clip(&s.id, 200),
            description: clip(&s.description, MAX_TEXT_CHARS),
            tags: strings(s.tags, 16),
            examples: strings(s.examples, MAX_EXAMPLES),
        })
        .collect();
    Ok(Card {
        name: clip(&text.name, 200),
        description: clip(&text.description, MAX_TEXT_CHARS),
        version: clip(&text.version, 100),
        endpoint: endpoint.to_string(),
        protocol_version: clip(&interface.protocol_version, 20),
        protocol,
        tenant: interface.tenant.filter(|t| !t.is_empty()),
        skills,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("url")
    }

    #[test]
    fn a_base_url_finds_its_card_under_well_known_and_a_json_url_is_the_card() {
        assert_eq!(
            card_url(&url("http://h:9/")).as_str(),
            "http://h:9/.well-known/agent-card.json"
        );
        assert_eq!(
            card_url(&url("https://h/agents/x/")).as_str(),
            "https://h/agents/x/.well-known/agent-card.json"
        );
        assert_eq!(
            card_url(&url("https://h/agents/x?y=1")).as_str(),
            "https://h/agents/x/.well-known/agent-card.json"
        );
        assert_eq!(
            card_url(&url("https://h/cards/billing.json")).as_str(),
            "https://h/cards/billing.json"
        );
    }

    /// The card the a2a-sdk 1.3 server serves (`agent_card_to_dict`).
    #[test]
    fn a_1_0_card_gives_its_json_rpc_interface() {
        let card = parse_card(json!({
            "name": "Echo Agent",
            "description": "Echoes.",
            "supportedInterfaces": [
                {"url": "http://h/grpc", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
                {"url": "http://h/old", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
                {"url": "http://h/rpc", "protocolBinding": "JSONRPC", "protocolVersion": "1.0", "tenant": "t1"}
            ],
            "version": "1.0.0",
            "capabilities": {"streaming": false},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "skills": [
                {"id": "echo", "name": "Echo", "description": "Repeats.", "tags": ["test"], "examples": ["hello", 3]},
                {"id": "", "name": ""}
            ],
            "somethingNew": {"ignored": true}
        }))
        .expect("card");
        assert_eq!(card.name, "Echo Agent");
        assert_eq!(card.endpoint, "http://h/rpc");
        assert_eq!(card.protocol, Protocol::V1);
        assert_eq!(card.tenant.as_deref(), Some("t1"));
        assert_eq!(
            card.skills,
            [Skill {
                id: "echo".into(),
                name: "Echo".into(),
                description: "Repeats.".into(),
                tags: vec!["test".into()],
                examples: vec!["hello".into()],
            }]
        );
    }

    #[test]
    fn a_0_3_card_is_read_as_the_interface_it_stands_for() {
        let card = parse_card(json!({
            "name": "Old Agent",
            "description": "From before 1.0.",
            "url": "https://h/a2a",
            "preferredTransport": "JSONRPC",
            "protocolVersion": "0.3.0",
            "version": "2",
            "capabilities": {},
            "skills": []
        }))
        .expect("card");
        assert_eq!(card.endpoint, "https://h/a2a");
        assert_eq!(card.protocol, Protocol::V0);
        assert_eq!(card.protocol_version, "0.3.0");
        // No preferredTransport or protocolVersion: JSON-RPC 0.3, as
        // a2a-python assumes.
        let bare = parse_card(json!({"name": "Bare", "url": "http://h/"})).expect("card");
        assert_eq!(bare.protocol, Protocol::V0);
        assert_eq!(bare.description, "");
        // A 0.3 card whose main interface is gRPC, with JSON-RPC among the others.
        let more = parse_card(json!({
            "name": "More", "url": "http://h/grpc", "preferredTransport": "GRPC",
            "protocolVersion": "0.3.0",
            "additionalInterfaces": [{"url": "http://h/jsonrpc", "transport": "JSONRPC"}]
        }))
        .expect("card");
        assert_eq!(more.endpoint, "http://h/jsonrpc");
        assert_eq!(more.protocol, Protocol::V0);
    }

    #[test]
    fn a_card_without_a_usable_json_rpc_interface_is_refused_saying_why() {
        let refused = |value: Value| match parse_card(value) {
            Err(A2aError::InvalidCard(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refused(json!([1])).contains("not a JSON object"));
        assert!(refused(json!({"name": "x"})).contains("offers no interface"));
        assert!(refused(json!({"url": "http://h/"})).contains("no name"));
        let why = refused(json!({
            "name": "x",
            "supportedInterfaces": [{"url": "http://h/", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}]
        }));
        assert!(
            why.contains("no JSON-RPC interface (only HTTP+JSON)"),
            "{why}"
        );
        assert!(refused(json!({"name": "x", "url": "ftp://h/"})).contains("not an http(s) URL"));
        assert!(refused(json!({"name": "x", "url": "not a url"})).contains("is not a URL"));
        assert!(refused(json!({"name": 5, "url": "http://h/"})).contains("cannot be read"));
    }

    #[test]
    fn versions_rank_like_the_python_client() {
        let pick = |versions: &[&str]| {
            let list = versions
                .iter()
                .enumerate()
                .map(|(n, v)| Interface {
                    url: format!("http://h/{n}"),
                    protocol_binding: "JSONRPC".into(),
                    protocol_version: (*v).into(),
                    tenant: None,
                })
                .collect();
            best_jsonrpc(list).map(|i| i.url)
        };
        assert_eq!(
            pick(&["0.3.0", "1.0.0", "1.1"]).as_deref(),
            Some("http://h/1")
        );
        assert_eq!(pick(&["0.3.0", "1.1"]).as_deref(), Some("http://h/1"));
        assert_eq!(pick(&["", "0.3"]).as_deref(), Some("http://h/1"));
        assert_eq!(pick(&["0.2.5", ""]).as_deref(), Some("http://h/1"));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn long_card_text_is_clipped() {
        let card = parse_card(json!({
            "name": "x", "url": "http://h/", "description": "d".repeat(5_000)
        }))
        .expect("card");
        assert_eq!(card.description.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(card.description.ends_with('…'));
        assert_eq!(clip("  héllo  ", 3), "hél…");
        assert_eq!(clip("hé", 3), "hé");
    }
}
