//! Typed identifiers. Each is a short prefix plus a UUIDv7, so ids sort by
//! creation time and a stray id in a log says what it names.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! typed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(
            Clone,
            Debug,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Accepts only well-formed ids of this kind, so a malformed id is
            /// answered as "not found" without touching the store.
            pub fn parse(raw: &str) -> Option<Self> {
                let rest = raw.strip_prefix($prefix)?.strip_prefix('_')?;
                (rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| Self(raw.to_owned()))
            }

            /// Wraps a value read back from the store, which only ever holds ids
            /// this type generated.
            pub fn from_stored(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(TenantId, "ten");
typed_id!(AgentId, "agt");
typed_id!(SessionId, "ses");
typed_id!(RunId, "run");
typed_id!(KeyId, "key");
typed_id!(MemoryId, "mem");
typed_id!(SourceId, "src");
typed_id!(DocumentId, "doc");
typed_id!(ScheduleId, "sch");
typed_id!(TriggerId, "trg");
typed_id!(WebhookId, "whk");
typed_id!(NotificationId, "ntf");

impl TenantId {
    /// The tenant the bootstrap admin key belongs to.
    pub fn default_tenant() -> Self {
        Self("ten_default".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_foreign_ones_do_not() {
        let id = RunId::generate();
        assert_eq!(RunId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(SessionId::parse(id.as_str()), None);
        assert_eq!(RunId::parse("run_xyz"), None);
        assert_eq!(RunId::parse(""), None);
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = AgentId::generate();
        let b = AgentId::generate();
        assert!(a < b);
    }
}
