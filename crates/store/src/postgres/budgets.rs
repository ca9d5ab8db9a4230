//! [`BudgetStore`] for [`PgStore`].

use super::{governance, rows, PgStore};
use crate::budgets::*;
use crate::types::{from_millis, millis};
use crate::{NewAuditEvent, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::{AgentId, TenantId};
use sqlx::Row;

const DAY: &str = "to_char(to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')";

#[async_trait]
impl BudgetStore for PgStore {
    async fn budgets(&self, tenant: &TenantId) -> StoreResult<Vec<Budget>> {
        let mut c = self.conn().await?;
        rows::collect(
            &mut c,
            sqlx::query(
                "SELECT scope, tokens_per_day, cost_micros_per_day, updated_at FROM budgets WHERE tenant_id = $1 ORDER BY scope",
            )
            .bind(tenant.as_str()),
            |row| {
                Ok(Budget {
                    scope: row.try_get(0)?,
                    tokens_per_day: row.try_get(1)?,
                    cost_micros_per_day: row.try_get(2)?,
                    updated_at: Some(from_millis(row.try_get(3)?)),
                })
            },
        )
        .await
    }

    async fn set_budget(
        &self,
        tenant: &TenantId,
        budget: Budget,
        audit: NewAuditEvent,
    ) -> StoreResult<Budget> {
        let now = millis(Utc::now());
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO budgets (tenant_id, scope, tokens_per_day, cost_micros_per_day, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, scope) DO UPDATE SET tokens_per_day = EXCLUDED.tokens_per_day,
               cost_micros_per_day = EXCLUDED.cost_micros_per_day, updated_at = EXCLUDED.updated_at",
        )
        .bind(tenant.as_str())
        .bind(&budget.scope)
        .bind(budget.tokens_per_day)
        .bind(budget.cost_micros_per_day)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        governance::append(&mut tx, tenant, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        Ok(Budget {
            updated_at: Some(from_millis(now)),
            ..budget
        })
    }

    async fn delete_budget(
        &self,
        tenant: &TenantId,
        scope: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM budgets WHERE tenant_id = $1 AND scope = $2")
            .bind(tenant.as_str())
            .bind(scope)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            governance::append(&mut tx, tenant, std::slice::from_ref(&audit)).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn spent_since(
        &self,
        tenant: &TenantId,
        agent: Option<&AgentId>,
        since: DateTime<Utc>,
    ) -> StoreResult<Spent> {
        let mut c = self.conn().await?;
        let row = sqlx::query(
            "SELECT COALESCE(SUM(tokens_in + tokens_out), 0)::BIGINT, COALESCE(SUM(cost_micros), 0)::BIGINT FROM ledger
             WHERE tenant_id = $1 AND created_at >= $2 AND ($3::TEXT IS NULL OR agent_id = $3)",
        )
        .bind(tenant.as_str())
        .bind(millis(since))
        .bind(agent.map(AgentId::as_str))
        .fetch_one(&mut *c)
        .await?;
        Ok(Spent {
            tokens: row.try_get(0)?,
            cost_micros: row.try_get(1)?,
        })
    }

    async fn ledger_summary(
        &self,
        tenant: &TenantId,
        query: &LedgerSummaryQuery,
    ) -> StoreResult<Vec<LedgerSum>> {
        let mut c = self.conn().await?;
        let sql = summary_sql(query, DAY, &|i| match i {
            2..=4 | 7 => format!("${i}::TEXT"),
            _ => format!("${i}"),
        })
        .replace(
            "COALESCE(SUM(tokens_in), 0)",
            "COALESCE(SUM(tokens_in), 0)::BIGINT",
        )
        .replace(
            "COALESCE(SUM(tokens_out), 0)",
            "COALESCE(SUM(tokens_out), 0)::BIGINT",
        )
        .replace(
            "COALESCE(SUM(cost_micros), 0)",
            "COALESCE(SUM(cost_micros), 0)::BIGINT",
        )
        .replace("SELECT NULL", "SELECT NULL::TEXT")
        .replace(", NULL,", ", NULL::TEXT,");
        let found = sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(query.agent_id.as_ref().map(AgentId::as_str))
            .bind(query.provider.as_deref())
            .bind(query.model.as_deref())
            .bind(query.since.map_or(i64::MIN, millis))
            .bind(query.until.map_or(i64::MAX, millis))
            .bind(query.run_id.as_ref().map(roster_core::RunId::as_str))
            .fetch_all(&mut *c)
            .await?;
        found
            .iter()
            .map(|row| {
                Ok(LedgerSum {
                    day: row.try_get(0)?,
                    agent_id: row.try_get(1)?,
                    provider: row.try_get(2)?,
                    model: row.try_get(3)?,
                    outcome: row.try_get(4)?,
                    calls: row.try_get(5)?,
                    tokens_in: row.try_get(6)?,
                    tokens_out: row.try_get(7)?,
                    cost_micros: row.try_get(8)?,
                })
            })
            .collect::<Result<_, StoreError>>()
    }
}
