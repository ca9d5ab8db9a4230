//! Daily budgets and the ledger sums they are checked against.

use super::{Conn, Row};
use chrono::{DateTime, Utc};
use roster_core::{AgentId, TenantId};
use roster_store::{from_millis, millis};
use roster_store::{Budget, LedgerSum, LedgerSummaryQuery, Spent, GROUPS};
use roster_store::{NewAuditEvent, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) async fn set_budget(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    budget: Budget,
    audit: &NewAuditEvent,
) -> Result<Budget> {
    let now = millis(Utc::now());
    c.exec(
        crate::sql!(
            "INSERT INTO budgets (tenant_id, scope, tokens_per_day, cost_micros_per_day, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, scope) DO UPDATE SET tokens_per_day = EXCLUDED.tokens_per_day,
               cost_micros_per_day = EXCLUDED.cost_micros_per_day, updated_at = EXCLUDED.updated_at"
        ),
        crate::args![tenant, &budget.scope, budget.tokens_per_day, budget.cost_micros_per_day, now],
    )
    .await?;
    super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    Ok(Budget {
        updated_at: Some(from_millis(now)),
        ..budget
    })
}

pub(crate) async fn delete_budget(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    scope: &str,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let n = c
        .exec(
            crate::sql!("DELETE FROM budgets WHERE tenant_id = $1 AND scope = $2"),
            crate::args![tenant, scope],
        )
        .await?;
    if n > 0 {
        super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    }
    Ok(n > 0)
}

const SUMS: &str = "COUNT(*), CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT), CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT), CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT)";

const FILTER: &str = "FROM ledger WHERE tenant_id = $1 AND ($2 IS NULL OR agent_id = $2) AND ($3 IS NULL OR provider = $3)
   AND ($4 IS NULL OR model = $4) AND created_at >= $5 AND created_at <= $6
   AND ($7 IS NULL OR run_id = $7)";

/// The grouped columns, in [`GROUPS`] order: each is NULL unless its name is
/// in `$8`, so one cached statement serves every grouping (a column that is
/// NULL on every row groups and orders nothing).
const GROUPED: &str = "CASE WHEN 'agent' = ANY($8) THEN agent_id END,
   CASE WHEN 'provider' = ANY($8) THEN provider END,
   CASE WHEN 'model' = ANY($8) THEN model END,
   CASE WHEN 'outcome' = ANY($8) THEN outcome END";

/// The UTC date of `created_at` (Unix milliseconds).
const PG_DAY: &str = "to_char(to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
const SQLITE_DAY: &str = "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')";

pub(crate) async fn ledger_summary(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    query: &LedgerSummaryQuery,
) -> Result<Vec<LedgerSum>> {
    let filter = [
        tenant.into(),
        query.agent_id.as_ref().into(),
        query.provider.as_deref().into(),
        query.model.as_deref().into(),
        query.since.map_or(i64::MIN, millis).into(),
        query.until.map_or(i64::MAX, millis).into(),
        query.run_id.as_ref().into(),
    ];
    if !GROUPS.iter().any(|g| query.group_by.iter().any(|q| q == g)) {
        // Without a group, one row of totals (even over no ledger rows).
        let sql = crate::sql!(
            "SELECT CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), {SUMS} {FILTER}"
        );
        return Ok(c.all(sql, &filter, ledger_sum).await?);
    }
    let sql = crate::sql_pick!(
        postgres: format!(
            "SELECT CASE WHEN 'day' = ANY($8) THEN {PG_DAY} END, {GROUPED}, {SUMS} {FILTER}
             GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
        ),
        sqlite: format!(
            "SELECT CASE WHEN 'day' = ANY($8) THEN {SQLITE_DAY} END, {GROUPED}, {SUMS} {FILTER}
             GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
        ),
    );
    let mut args = filter.to_vec();
    args.push((&query.group_by).into());
    Ok(c.all(sql, &args, ledger_sum).await?)
}

fn ledger_sum(row: &Row<'_>) -> Result<LedgerSum> {
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
}

crate::store_impl! {
    impl crate::BudgetStore {
        read budgets(tenant: &TenantId) -> Vec<Budget> = |c| c.all(
            crate::sql!("SELECT scope, tokens_per_day, cost_micros_per_day, updated_at FROM budgets WHERE tenant_id = $1 ORDER BY scope"),
            crate::args![&tenant],
            |row| Ok(Budget { scope: row.get(0)?, tokens_per_day: row.get(1)?, cost_micros_per_day: row.get(2)?, updated_at: Some(row.time(3)?) }),
        ).await;
        write set_budget(tenant: &TenantId, budget: Budget, audit: NewAuditEvent) -> Budget = |c| set_budget(c, &tenant, budget, &audit).await;
        write delete_budget(tenant: &TenantId, scope: &str, audit: NewAuditEvent) -> bool = |c| delete_budget(c, &tenant, &scope, &audit).await;
        read ledger_summary(tenant: &TenantId, query: &LedgerSummaryQuery) -> Vec<LedgerSum> = |c| ledger_summary(c, &tenant, &query).await;
        read spent_since(tenant: &TenantId, agent: Option<&AgentId>, since: DateTime<Utc>) -> Spent = |c| c.one(
            crate::sql!("SELECT CAST(COALESCE(SUM(tokens_in + tokens_out), 0) AS BIGINT), CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM ledger
                         WHERE tenant_id = $1 AND created_at >= $2 AND ($3 IS NULL OR agent_id = $3)"),
            crate::args![&tenant, since, agent.as_ref()],
            |row| Ok(Spent { tokens: row.get(0)?, cost_micros: row.get(1)? }),
        ).await;
    }
}
