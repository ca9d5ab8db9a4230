//! [`GovernanceStore`] for [`SqliteStore`].

use super::governance as g;
use super::SqliteStore;
use crate::governance::*;
use crate::StoreResult;
use async_trait::async_trait;
use roster_core::{KeyId, TenantId};

#[async_trait]
impl GovernanceStore for SqliteStore {
    async fn create_tenant(
        &self,
        id: &TenantId,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<TenantRecord> {
        let (id, name) = (id.clone(), name.to_owned());
        self.write(move |c| g::create_tenant(c, &id, &name, &audit))
            .await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        self.read(g::list_tenants).await
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<TenantRecord>> {
        let id = id.clone();
        self.read(move |c| g::get_tenant(c, &id)).await
    }

    async fn find_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        let name = name.to_owned();
        self.read(move |c| g::tenant_by_name(c, &name)).await
    }

    async fn create_key(
        &self,
        tenant: &TenantId,
        key: NewKey,
        audit: NewAuditEvent,
    ) -> StoreResult<KeyInfo> {
        let tenant = tenant.clone();
        self.write(move |c| g::create_key(c, &tenant, &key, &audit))
            .await
    }

    async fn list_keys(&self, tenant: &TenantId) -> StoreResult<Vec<KeyInfo>> {
        let tenant = tenant.clone();
        self.read(move |c| g::list_keys(c, &tenant)).await
    }

    async fn key_info(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<Option<KeyInfo>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |c| g::key_info(c, &tenant, &id)).await
    }

    async fn find_key(&self, id: &KeyId) -> StoreResult<Option<KeyInfo>> {
        let id = id.clone();
        self.read(move |c| g::find_key(c, &id)).await
    }

    async fn key_by_hash(&self, key_hash: &str) -> StoreResult<Option<KeyInfo>> {
        let hash = key_hash.to_owned();
        self.read(move |c| g::key_by_hash(c, &hash)).await
    }

    async fn revoke_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        audit: NewAuditEvent,
    ) -> StoreResult<KeyInfo> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write(move |c| g::revoke_key(c, &tenant, &id, &audit))
            .await
    }

    async fn policies(&self, tenant: &TenantId) -> StoreResult<PolicySnapshot> {
        let tenant = tenant.clone();
        self.read(move |c| g::policies(c, &tenant)).await
    }

    async fn policy_revision(&self, tenant: &TenantId) -> StoreResult<i64> {
        let tenant = tenant.clone();
        self.read(move |c| g::revision(c, &tenant)).await
    }

    async fn put_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        text: &str,
        expected: i64,
        audit: NewAuditEvent,
    ) -> StoreResult<PolicyDocument> {
        let (tenant, name, text) = (tenant.clone(), name.to_owned(), text.to_owned());
        self.write(move |c| g::put_policy(c, &tenant, &name, &text, expected, &audit))
            .await
    }

    async fn delete_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.write(move |c| g::delete_policy(c, &tenant, &name, &audit))
            .await
    }

    async fn append_audit(&self, tenant: &TenantId, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let tenant = tenant.clone();
        self.write(move |c| g::append(c, &tenant, &events)).await
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        query: &AuditQuery,
    ) -> StoreResult<Vec<AuditEvent>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.read(move |c| g::list_audit(c, &tenant, &query)).await
    }
}
