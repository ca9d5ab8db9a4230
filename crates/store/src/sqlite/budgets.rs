//! [`BudgetStore`] for [`SqliteStore`].

use super::{governance, rows, SqliteStore};
use crate::budgets::*;
use crate::types::{from_millis, millis};
use crate::{NewAuditEvent, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::{AgentId, TenantId};
use rusqlite::params;

const DAY: &str = "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')";

#[async_trait]
impl BudgetStore for SqliteStore {
    async fn budgets(&self, tenant: &TenantId) -> StoreResult<Vec<Budget>> {
        let tenant = tenant.clone();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT scope, tokens_per_day, cost_micros_per_day, updated_at FROM budgets WHERE tenant_id = ?1 ORDER BY scope",
            )?;
            rows::collect(&mut stmt, params![tenant.as_str()], |row| {
                Ok(Budget {
                    scope: row.get(0)?,
                    tokens_per_day: row.get(1)?,
                    cost_micros_per_day: row.get(2)?,
                    updated_at: Some(from_millis(row.get(3)?)),
                })
            })
        })
        .await
    }

    async fn set_budget(
        &self,
        tenant: &TenantId,
        budget: Budget,
        audit: NewAuditEvent,
    ) -> StoreResult<Budget> {
        let tenant = tenant.clone();
        self.write(move |c| {
            let now = Utc::now();
            rows::exec(
                c,
                "INSERT INTO budgets (tenant_id, scope, tokens_per_day, cost_micros_per_day, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant_id, scope) DO UPDATE SET tokens_per_day = excluded.tokens_per_day,
                   cost_micros_per_day = excluded.cost_micros_per_day, updated_at = excluded.updated_at",
                params![tenant.as_str(), budget.scope, budget.tokens_per_day, budget.cost_micros_per_day, millis(now)],
            )?;
            governance::append(c, &tenant, std::slice::from_ref(&audit))?;
            Ok(Budget {
                updated_at: Some(from_millis(millis(now))),
                ..budget
            })
        })
        .await
    }

    async fn delete_budget(
        &self,
        tenant: &TenantId,
        scope: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let (tenant, scope) = (tenant.clone(), scope.to_owned());
        self.write(move |c| {
            let n = rows::exec(
                c,
                "DELETE FROM budgets WHERE tenant_id = ?1 AND scope = ?2",
                params![tenant.as_str(), scope],
            )?;
            if n > 0 {
                governance::append(c, &tenant, std::slice::from_ref(&audit))?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn spent_since(
        &self,
        tenant: &TenantId,
        agent: Option<&AgentId>,
        since: DateTime<Utc>,
    ) -> StoreResult<Spent> {
        let (tenant, agent) = (tenant.clone(), agent.map(|a| a.as_str().to_owned()));
        self.read(move |c| {
            Ok(rows::row(
                c,
                "SELECT COALESCE(SUM(tokens_in + tokens_out), 0), COALESCE(SUM(cost_micros), 0) FROM ledger
                 WHERE tenant_id = ?1 AND created_at >= ?2 AND (?3 IS NULL OR agent_id = ?3)",
                params![tenant.as_str(), millis(since), agent],
                |r| {
                    Ok(Spent {
                        tokens: r.get(0)?,
                        cost_micros: r.get(1)?,
                    })
                },
            )?)
        })
        .await
    }

    async fn ledger_summary(
        &self,
        tenant: &TenantId,
        query: &LedgerSummaryQuery,
    ) -> StoreResult<Vec<LedgerSum>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.read(move |c| {
            let sql = summary_sql(&query, DAY, &|i| format!("?{i}"));
            let mut stmt = c.prepare(&sql)?;
            rows::collect(
                &mut stmt,
                params![
                    tenant.as_str(),
                    query.agent_id.as_ref().map(|a| a.as_str().to_owned()),
                    query.provider,
                    query.model,
                    query.since.map_or(i64::MIN, millis),
                    query.until.map_or(i64::MAX, millis),
                    query.run_id.as_ref().map(|r| r.as_str().to_owned()),
                ],
                |row| {
                    Ok(LedgerSum {
                        day: row.get(0)?,
                        agent_id: row.get(1)?,
                        provider: row.get(2)?,
                        model: row.get(3)?,
                        outcome: row.get(4)?,
                        calls: row.get(5)?,
                        tokens_in: row.get(6)?,
                        tokens_out: row.get(7)?,
                        cost_micros: row.get(8)?,
                    })
                },
            )
        })
        .await
    }
}
