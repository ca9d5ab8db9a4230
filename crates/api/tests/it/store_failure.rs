//! When the store fails: `internal_error` (500) without its details, and a
//! health check that says the service is unavailable (503).
#![allow(clippy::unwrap_used)]

use crate::common;

use async_trait::async_trait;
use common::TestApp;
use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::event::SequencedEvent;
use roster_core::item::Item;
use roster_core::ledger::LedgerEntry;
use roster_core::memory::{MemoryBlock, MemoryBlockVersion};
use roster_core::run::{Run, Step};
use roster_core::{AgentId, KeyId, RunId, SessionId, TenantId};
use roster_store::*;
use serde_json::json;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const WORKING: u8 = 0;
/// Every call fails except the key lookup, so requests authenticate.
const FAILING_AFTER_AUTH: u8 = 1;
const FAILING: u8 = 2;
const SECRET: &str = "/var/secret/roster.db: disk I/O error";

struct FlakyStore {
    inner: DynStore,
    mode: Arc<AtomicU8>,
}

impl FlakyStore {
    fn check(&self) -> StoreResult<()> {
        match self.mode.load(Ordering::SeqCst) {
            WORKING => Ok(()),
            _ => Err(StoreError::Database(SECRET.to_owned())),
        }
    }
}

roster_store::forward_record_traits!(FlakyStore, inner);

#[async_trait]
#[rustfmt::skip]
impl Store for FlakyStore {
    fn backend(&self) -> &'static str { self.inner.backend() }
    async fn ensure_tenant(&self, t: &TenantId, n: &str) -> StoreResult<()> { self.check()?; self.inner.ensure_tenant(t, n).await }
    async fn insert_api_key(&self, t: &TenantId, k: NewApiKey) -> StoreResult<ApiKeyRecord> { self.check()?; self.inner.insert_api_key(t, k).await }
    async fn find_api_key(&self, h: &str) -> StoreResult<Option<ApiKeyRecord>> {
        if self.mode.load(Ordering::SeqCst) == FAILING { self.check()?; }
        self.inner.find_api_key(h).await
    }
    async fn count_admin_keys(&self, t: &TenantId) -> StoreResult<i64> { self.check()?; self.inner.count_admin_keys(t).await }
    async fn revoke_admin_keys(&self, t: &TenantId) -> StoreResult<()> { self.check()?; self.inner.revoke_admin_keys(t).await }
    async fn set_admin_key(&self, t: &TenantId, k: NewApiKey) -> StoreResult<ApiKeyRecord> { self.check()?; self.inner.set_admin_key(t, k).await }
    async fn get_key(&self, t: &TenantId, id: &KeyId) -> StoreResult<Option<ApiKeyRecord>> { self.check()?; self.inner.get_key(t, id).await }
    async fn create_agent(&self, t: &TenantId, a: NewAgent, p: &str) -> StoreResult<Agent> { self.check()?; self.inner.create_agent(t, a, p).await }
    async fn list_agents(&self, t: &TenantId) -> StoreResult<Vec<Agent>> { self.check()?; self.inner.list_agents(t).await }
    async fn get_agent(&self, t: &TenantId, a: &AgentRef) -> StoreResult<Option<Agent>> { self.check()?; self.inner.get_agent(t, a).await }
    async fn get_agent_version(&self, t: &TenantId, a: &AgentId, v: i64) -> StoreResult<Option<Agent>> { self.check()?; self.inner.get_agent_version(t, a, v).await }
    async fn update_agent(&self, t: &TenantId, a: &AgentId, c: AgentConfig, p: &str) -> StoreResult<Agent> { self.check()?; self.inner.update_agent(t, a, c, p).await }
    async fn delete_agent(&self, t: &TenantId, a: &AgentId, p: &str) -> StoreResult<bool> { self.check()?; self.inner.delete_agent(t, a, p).await }
    async fn list_memory_blocks(&self, t: &TenantId, a: &AgentId) -> StoreResult<Vec<MemoryBlock>> { self.check()?; self.inner.list_memory_blocks(t, a).await }
    async fn memory_block_history(&self, t: &TenantId, a: &AgentId) -> StoreResult<Vec<MemoryBlockVersion>> { self.check()?; self.inner.memory_block_history(t, a).await }
    async fn create_session_for(&self, t: &TenantId, a: &AgentId, v: i64, u: Option<&str>) -> StoreResult<Session> { self.check()?; self.inner.create_session_for(t, a, v, u).await }
    async fn get_session(&self, t: &TenantId, s: &SessionId) -> StoreResult<Option<Session>> { self.check()?; self.inner.get_session(t, s).await }
    async fn list_sessions(&self, t: &TenantId, q: &SessionQuery) -> StoreResult<Vec<Session>> { self.check()?; self.inner.list_sessions(t, q).await }
    async fn list_items(&self, t: &TenantId, s: &SessionId, a: i64, l: i64) -> StoreResult<Vec<Item>> { self.check()?; self.inner.list_items(t, s, a, l).await }
    async fn tail_items(&self, t: &TenantId, s: &SessionId, l: i64) -> StoreResult<Vec<Item>> { self.check()?; self.inner.tail_items(t, s, l).await }
    async fn create_run(&self, t: &TenantId, r: NewRun) -> StoreResult<CreatedRun> { self.check()?; self.inner.create_run(t, r).await }
    async fn get_run(&self, t: &TenantId, r: &RunId) -> StoreResult<Option<Run>> { self.check()?; self.inner.get_run(t, r).await }
    async fn list_runs(&self, t: &TenantId, s: &SessionId) -> StoreResult<Vec<Run>> { self.check()?; self.inner.list_runs(t, s).await }
    async fn list_steps(&self, t: &TenantId, r: &RunId) -> StoreResult<Vec<Step>> { self.check()?; self.inner.list_steps(t, r).await }
    async fn next_queued_run(&self, t: &TenantId, s: &SessionId) -> StoreResult<Option<Run>> { self.check()?; self.inner.next_queued_run(t, s).await }
    async fn commit(&self, t: &TenantId, w: JournalWrite) -> StoreResult<Committed> { self.check()?; self.inner.commit(t, w).await }
    async fn list_events(&self, t: &TenantId, r: &RunId, a: i64, l: i64) -> StoreResult<Vec<SequencedEvent>> { self.check()?; self.inner.list_events(t, r, a, l).await }
    async fn list_ledger(&self, t: &TenantId, q: &LedgerQuery) -> StoreResult<Vec<LedgerEntry>> { self.check()?; self.inner.list_ledger(t, q).await }
    async fn unfinished_runs(&self) -> StoreResult<Vec<(TenantId, Run)>> { self.check()?; self.inner.unfinished_runs().await }
}

async fn flaky_app() -> (TestApp, Arc<AtomicU8>) {
    let mode = Arc::new(AtomicU8::new(WORKING));
    let handle = mode.clone();
    let app = TestApp::start_with(move |inner| {
        Arc::new(FlakyStore {
            inner,
            mode: handle,
        })
    })
    .await;
    (app, mode)
}

#[tokio::test]
async fn store_failures_are_internal_errors_without_details() {
    let (app, mode) = flaky_app().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    for failing in [FAILING_AFTER_AUTH, FAILING] {
        mode.store(failing, Ordering::SeqCst);
        let responses = [
            admin.get("/v1/agents").await,
            admin.get("/v1/agents/bot").await,
            admin
                .post("/v1/agents", json!({"name": "x", "model": "openai/m"}))
                .await,
            admin.get(&format!("/v1/sessions/{session}/items")).await,
            admin.message(&session, json!({"content": "hi"})).await,
            admin.get("/v1/ledger").await,
        ];
        for resp in responses {
            resp.err(500, "internal_error");
            assert!(
                !resp.text.contains("secret"),
                "details leaked: {}",
                resp.text
            );
        }
    }
    mode.store(WORKING, Ordering::SeqCst);
    assert_eq!(admin.get("/v1/agents").await.status, 200);
    assert!(
        admin.items(&session).await.is_empty(),
        "no run was accepted"
    );
}

#[tokio::test]
async fn health_check_reports_an_unavailable_store() {
    let (app, mode) = flaky_app().await;
    assert_eq!(app.anon().get("/healthz").await.status, 200);
    mode.store(FAILING, Ordering::SeqCst);
    let resp = app.anon().get("/healthz").await;
    resp.err(503, "unavailable");
    assert!(!resp.text.contains("secret"), "{}", resp.text);
    mode.store(WORKING, Ordering::SeqCst);
    assert_eq!(app.anon().get("/healthz").await.status, 200);
}
