//! [`GovernanceStore`] for [`PgStore`].

use super::governance as g;
use super::PgStore;
use crate::governance::*;
use crate::StoreResult;
use async_trait::async_trait;
use roster_core::{KeyId, TenantId};

#[async_trait]
impl GovernanceStore for PgStore {
    async fn create_tenant(
        &self,
        id: &TenantId,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<TenantRecord> {
        let mut tx = self.begin().await?;
        let out = g::create_tenant(&mut tx, id, name, &audit).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        let mut c = self.conn().await?;
        g::list_tenants(&mut c).await
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<TenantRecord>> {
        let mut c = self.conn().await?;
        g::get_tenant(&mut c, id).await
    }

    async fn find_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        let mut c = self.conn().await?;
        g::tenant_by_name(&mut c, name).await
    }

    async fn create_key(
        &self,
        tenant: &TenantId,
        key: NewKey,
        audit: NewAuditEvent,
    ) -> StoreResult<KeyInfo> {
        let mut tx = self.begin().await?;
        let out = g::create_key(&mut tx, tenant, &key, &audit).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_keys(&self, tenant: &TenantId) -> StoreResult<Vec<KeyInfo>> {
        let mut c = self.conn().await?;
        g::list_keys(&mut c, tenant).await
    }

    async fn key_info(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<Option<KeyInfo>> {
        let mut c = self.conn().await?;
        g::key_info(&mut c, tenant, id).await
    }

    async fn find_key(&self, id: &KeyId) -> StoreResult<Option<KeyInfo>> {
        let mut c = self.conn().await?;
        g::find_key(&mut c, id).await
    }

    async fn key_by_hash(&self, key_hash: &str) -> StoreResult<Option<KeyInfo>> {
        let mut c = self.conn().await?;
        g::key_by_hash(&mut c, key_hash).await
    }

    async fn revoke_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        audit: NewAuditEvent,
    ) -> StoreResult<KeyInfo> {
        let mut tx = self.begin().await?;
        let out = g::revoke_key(&mut tx, tenant, id, &audit).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn policies(&self, tenant: &TenantId) -> StoreResult<PolicySnapshot> {
        // One snapshot: the revision and the documents must agree.
        let mut tx = self.begin().await?;
        let out = g::policies(&mut tx, tenant).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn policy_revision(&self, tenant: &TenantId) -> StoreResult<i64> {
        let mut c = self.conn().await?;
        g::revision(&mut c, tenant).await
    }

    async fn put_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        text: &str,
        expected: i64,
        audit: NewAuditEvent,
    ) -> StoreResult<PolicyDocument> {
        let mut tx = self.begin().await?;
        let out = g::put_policy(&mut tx, tenant, name, text, expected, &audit).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn delete_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let out = g::delete_policy(&mut tx, tenant, name, &audit).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn append_audit(&self, tenant: &TenantId, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        g::append(&mut tx, tenant, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        query: &AuditQuery,
    ) -> StoreResult<Vec<AuditEvent>> {
        let mut c = self.conn().await?;
        g::list_audit(&mut c, tenant, query).await
    }
}
