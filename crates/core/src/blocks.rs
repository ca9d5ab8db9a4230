//! Who a memory block's value belongs to. An agent version lists its blocks
//! with a scope: `agent` blocks are one value shared by every user of the
//! agent; `user` blocks keep one copy per user (e.g. `human`), `session`
//! blocks one per session, each copy starting from the agent's value (its
//! template) and versioned on its own. A session pins the copies of its own
//! user and of itself, never another's. `shared` blocks belong to the
//! tenant (a team's `project` block): created once, attached by label to
//! each agent that lists it, one value every session of every such agent
//! pins and edits.

use crate::memory::MemoryBlock;
use crate::record::validate_user_id;
use crate::{SessionId, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockScope {
    /// One value shared by every user and session of the agent.
    #[default]
    Agent,
    /// One copy per user of the agent. A session without a user keeps its
    /// own copy, as for `session`.
    User,
    /// One copy per session.
    Session,
    /// The tenant's block of this label, one value for every agent that
    /// attaches it.
    Shared,
}

/// The `agent_id` under which the tenant's shared blocks are stored (no
/// agent id looks like it: those are `agt_…`).
pub const SHARED_BLOCKS: &str = "shared";

impl BlockScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockScope::Agent => "agent",
            BlockScope::User => "user",
            BlockScope::Session => "session",
            BlockScope::Shared => "shared",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "agent" => Ok(BlockScope::Agent),
            "user" => Ok(BlockScope::User),
            "session" => Ok(BlockScope::Session),
            "shared" => Ok(BlockScope::Shared),
            other => Err(ValidationError::new(
                "scope",
                format!("unknown block scope `{other}`: use agent, user, session or shared"),
            )),
        }
    }
}

/// A block of one agent version: which label, and whose copy a session
/// pins. Values are state, kept outside the version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockDef {
    pub label: String,
    #[serde(default)]
    pub scope: BlockScope,
}

/// Whose value a block row holds: the agent's own (for `user` and `session`
/// blocks, the template copies start from), a user's or a session's copy.
/// Written as `agent`, `user:NAME` or `session:ses_…`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BlockOwner {
    Agent,
    User(String),
    Session(SessionId),
    /// The tenant's shared block (stored under [`SHARED_BLOCKS`]).
    Shared,
}

impl BlockOwner {
    /// The copy a session pins for a block of `scope`.
    pub fn for_session(scope: BlockScope, user: Option<&str>, session: &SessionId) -> Self {
        match (scope, user) {
            (BlockScope::Agent, _) => BlockOwner::Agent,
            (BlockScope::Shared, _) => BlockOwner::Shared,
            (BlockScope::User, Some(user)) => BlockOwner::User(user.to_owned()),
            (BlockScope::User | BlockScope::Session, _) => BlockOwner::Session(session.clone()),
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = || {
            ValidationError::new(
                "owner",
                format!("`{raw}` is not a block owner: use agent, user:NAME or session:ses_…"),
            )
        };
        if raw == "agent" {
            return Ok(BlockOwner::Agent);
        }
        if raw == "shared" {
            return Ok(BlockOwner::Shared);
        }
        match raw.split_once(':') {
            Some(("user", user)) => {
                validate_user_id(user).map_err(|_| bad())?;
                Ok(BlockOwner::User(user.to_owned()))
            }
            Some(("session", id)) => SessionId::parse(id)
                .map(BlockOwner::Session)
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }

    pub fn is_agent(&self) -> bool {
        matches!(self, BlockOwner::Agent)
    }
}

impl fmt::Display for BlockOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockOwner::Agent => f.write_str("agent"),
            BlockOwner::Shared => f.write_str("shared"),
            BlockOwner::User(user) => write!(f, "user:{user}"),
            BlockOwner::Session(session) => write!(f, "session:{session}"),
        }
    }
}

impl Serialize for BlockOwner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlockOwner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        BlockOwner::parse(&raw).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// The value `owner` sees of block `label`: its own copy among `rows`, or
/// else the agent's row as a copy not yet made (version 0).
pub fn effective_block(
    rows: &[MemoryBlock],
    label: &str,
    owner: &BlockOwner,
) -> Option<MemoryBlock> {
    let own = rows.iter().find(|b| b.label == label && b.owner == *owner);
    if let Some(own) = own {
        return Some(own.clone());
    }
    if *owner == BlockOwner::Shared {
        // A shared block has no template: it exists or it does not.
        return None;
    }
    rows.iter()
        .find(|b| b.label == label && b.owner.is_agent())
        .map(|template| MemoryBlock {
            owner: owner.clone(),
            version: if owner.is_agent() {
                template.version
            } else {
                0
            },
            ..template.clone()
        })
}

/// The blocks a session's context pins, by label: for each block of the
/// version, the copy of the session's user or of the session, read from
/// `rows` (the agent's rows and that user's and session's copies).
pub fn pinned_blocks(
    defs: &[BlockDef],
    rows: &[MemoryBlock],
    user: Option<&str>,
    session: &SessionId,
) -> Vec<MemoryBlock> {
    let mut pinned: Vec<MemoryBlock> = defs
        .iter()
        .filter_map(|def| {
            effective_block(
                rows,
                &def.label,
                &BlockOwner::for_session(def.scope, user, session),
            )
        })
        .collect();
    pinned.sort_by(|a, b| a.label.cmp(&b.label));
    pinned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, owner: BlockOwner, value: &str, version: i64) -> MemoryBlock {
        MemoryBlock {
            label: label.into(),
            owner,
            value: value.into(),
            limit: 100,
            version,
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn owners_round_trip_and_refuse_junk() {
        let session = SessionId::generate();
        for owner in [
            BlockOwner::Shared,
            BlockOwner::Agent,
            BlockOwner::User("ada@example.com".into()),
            BlockOwner::Session(session),
        ] {
            assert_eq!(BlockOwner::parse(&owner.to_string()), Ok(owner.clone()));
            let json = serde_json::to_value(&owner).unwrap_or_default();
            assert_eq!(json, serde_json::json!(owner.to_string()));
        }
        for bad in ["", "user:", "user:a/b", "session:xyz", "group:x", "Agent"] {
            assert!(BlockOwner::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_user_pins_its_own_copy_or_the_template() {
        let s1 = SessionId::generate();
        let s2 = SessionId::generate();
        let defs = vec![
            BlockDef {
                label: "persona".into(),
                scope: BlockScope::Agent,
            },
            BlockDef {
                label: "human".into(),
                scope: BlockScope::User,
            },
            BlockDef {
                label: "scratch".into(),
                scope: BlockScope::Session,
            },
        ];
        let rows = vec![
            row("persona", BlockOwner::Agent, "I help.", 3),
            row("human", BlockOwner::Agent, "Name: ?", 1),
            row("human", BlockOwner::User("ada".into()), "Name: Ada", 2),
            row("scratch", BlockOwner::Agent, "", 1),
            row("scratch", BlockOwner::Session(s1.clone()), "step 2", 4),
        ];
        let ada = pinned_blocks(&defs, &rows, Some("ada"), &s1);
        let values: Vec<(&str, &str, i64)> = ada
            .iter()
            .map(|b| (b.label.as_str(), b.value.as_str(), b.version))
            .collect();
        assert_eq!(
            values,
            [
                ("human", "Name: Ada", 2),
                ("persona", "I help.", 3),
                ("scratch", "step 2", 4)
            ]
        );
        let bob = pinned_blocks(&defs, &rows, Some("bob"), &s2);
        assert_eq!(bob[0].value, "Name: ?");
        assert_eq!(bob[0].version, 0, "a copy not yet made");
        assert_eq!(bob[0].owner, BlockOwner::User("bob".into()));
        assert_eq!(bob[2].owner, BlockOwner::Session(s2.clone()));
        // Without a user, a `user` block is the session's own.
        let nobody = pinned_blocks(&defs, &rows, None, &s2);
        assert_eq!(nobody[0].owner, BlockOwner::Session(s2));
    }
}
