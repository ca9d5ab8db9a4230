//! The integrations as `roster serve` wires them, with the walls a test
//! needs: the egress policy opens the test's loopback (where its fake
//! services listen) but keeps the app's own listener closed; SQLite
//! sources may read the temporary directories tests make, never the
//! app's data directory; stdio MCP servers run confined when bubblewrap
//! works here.

use roster_api::Integrations;
use roster_store::DynStore;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The operator's settings a test may choose.
pub struct Walls {
    pub catalogue: roster_mcp::Catalogue,
    /// `[egress] allow`; by default the test's loopback address.
    pub egress_allow: Vec<String>,
}

impl Default for Walls {
    fn default() -> Self {
        Self {
            catalogue: roster_mcp::Catalogue::default(),
            egress_allow: vec!["127.0.0.1".into()],
        }
    }
}

pub async fn build(
    store: &DynStore,
    data_dir: &Path,
    listener: SocketAddr,
    walls: Walls,
) -> Integrations {
    let secrets = roster_secrets::SecretBox::load(None, data_dir).unwrap();
    let mut egress = roster_egress::EgressPolicy::new(&walls.egress_allow).unwrap();
    egress.protect_listener(listener);
    let egress = Arc::new(egress);
    let jail = roster_sandbox::Jail::open("bwrap".into(), &data_dir.join(".probe"))
        .await
        .ok()
        .map(Arc::new);
    let mut mcp = roster_mcp::McpOptions::new(data_dir.join("mcp"));
    mcp.egress = egress.clone();
    mcp.catalogue = walls.catalogue;
    mcp.jail = jail;
    mcp.private = vec![data_dir.to_path_buf()];
    let sql = roster_sql::SqlPolicy {
        egress: egress.clone(),
        sqlite_dirs: vec![std::env::temp_dir()],
        private: vec![data_dir.to_path_buf()],
    };
    Integrations {
        mcp: roster_mcp::McpManager::new(store.clone(), secrets.clone(), mcp),
        sql: roster_sql::SqlSources::new(store.clone(), secrets.clone(), sql),
        http: roster_openapi::HttpServices::new(store.clone(), secrets.clone(), egress.clone()),
        a2a: roster_a2a::Remotes::new(store.clone(), secrets.clone(), egress.clone()),
        secrets,
        egress,
    }
}
