//! Tenants, keys, policies and the audit log on both backends: names and
//! revisions conflict where they must, keys keep their state, each change
//! lands with its audit event, and the audit log cannot be rewritten.

use crate::common;

use chrono::{Duration, Utc};
use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::run::RunStatus;
use roster_core::{KeyId, TenantId};
use roster_store::{
    approval_id, ApprovalDecision, AuditQuery, BusyPolicy, DynStore, JournalWrite, NewApproval,
    NewAuditEvent, NewKey, NewRun, RunTransition, StoreError,
};
use serde_json::json;

fn event(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "key:key_test > agent:helper".into(),
        action: action.into(),
        resource: "thing:1".into(),
        decision: None,
        detail: json!({"n": 1}),
    }
}

fn key(name: &str, hash: &str) -> NewKey {
    NewKey {
        id: KeyId::generate(),
        name: name.into(),
        kind: "service".into(),
        key_hash: hash.into(),
        scopes: Some(vec!["agents:read".into()]),
        user: None,
        act_for: Some(vec!["ada".into()]),
        expires_at: Some(Utc::now() + Duration::hours(1)),
    }
}

async fn story(store: DynStore) {
    let acme = TenantId::generate();
    let created = store
        .create_tenant(&acme, "acme", event("tenant.create"))
        .await
        .expect("tenant");
    assert_eq!(created.name, "acme");
    let err = store
        .create_tenant(&TenantId::generate(), "acme", event("tenant.create"))
        .await
        .expect_err("same name");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        store
            .find_tenant_by_name("acme")
            .await
            .expect("find")
            .map(|t| t.id),
        Some(acme.clone())
    );

    let k = key("robot", "hash-1");
    let info = store
        .create_key(&acme, k.clone(), event("key.create"))
        .await
        .expect("key");
    assert_eq!(info.kind, "service");
    assert_eq!(info.scopes, Some(vec!["agents:read".to_owned()]));
    assert_eq!(info.act_for, Some(vec!["ada".to_owned()]));
    assert_eq!(info.user, None);
    assert!(info.expires_at.is_some() && info.revoked_at.is_none());
    let by_hash = store
        .key_by_hash("hash-1")
        .await
        .expect("hash")
        .expect("found");
    assert_eq!(by_hash.id, k.id);
    let other = TenantId::generate();
    // A key bound to a user, in a tenant of its own.
    let home = TenantId::generate();
    store.ensure_tenant(&home, "home").await.expect("tenant");
    let bound = store
        .create_key(
            &home,
            NewKey {
                kind: "user".into(),
                user: Some("ada".into()),
                act_for: None,
                ..key("ada's laptop", "hash-ada")
            },
            event("key.create"),
        )
        .await
        .expect("user key");
    assert_eq!(bound.user.as_deref(), Some("ada"));
    assert_eq!(
        store
            .key_by_hash("hash-ada")
            .await
            .expect("hash")
            .map(|k| (k.user, k.act_for)),
        Some((Some("ada".to_owned()), None))
    );
    assert!(store.key_info(&other, &k.id).await.expect("info").is_none());
    let err = store
        .revoke_key(&other, &k.id, event("key.revoke"))
        .await
        .expect_err("other tenant");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let revoked = store
        .revoke_key(&acme, &k.id, event("key.revoke"))
        .await
        .expect("revoke");
    assert!(revoked.revoked_at.is_some());
    let err = store
        .revoke_key(&acme, &k.id, event("key.revoke"))
        .await
        .expect_err("twice");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // Revoked keys are still found, so authentication can say so.
    assert!(store
        .key_by_hash("hash-1")
        .await
        .expect("hash")
        .is_some_and(|k| k.revoked_at.is_some()));
    assert_eq!(store.list_keys(&acme).await.expect("list").len(), 1);
    assert!(store.find_key(&k.id).await.expect("find").is_some());

    // Policies: each change bumps the revision; a write against a stale
    // revision is refused and changes nothing.
    assert_eq!(store.policy_revision(&acme).await.expect("rev"), 0);
    store
        .put_policy(
            &acme,
            "p1",
            "permit(principal, action, resource);",
            0,
            event("policy.put"),
        )
        .await
        .expect("put");
    let err = store
        .put_policy(
            &acme,
            "p2",
            "forbid(principal, action, resource);",
            0,
            event("policy.put"),
        )
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let snapshot = store.policies(&acme).await.expect("policies");
    assert_eq!(snapshot.revision, 1);
    assert_eq!(snapshot.documents.len(), 1);
    store
        .put_policy(
            &acme,
            "p1",
            "forbid(principal, action, resource);",
            1,
            event("policy.put"),
        )
        .await
        .expect("replace");
    assert!(!store
        .delete_policy(&acme, "nope", event("policy.delete"))
        .await
        .expect("delete none"));
    assert!(store
        .delete_policy(&acme, "p1", event("policy.delete"))
        .await
        .expect("delete"));
    assert_eq!(store.policy_revision(&acme).await.expect("rev"), 3);
    assert!(store
        .policies(&other)
        .await
        .expect("other")
        .documents
        .is_empty());

    // The audit log: every change above, in order, filterable, per tenant.
    let all = store
        .list_audit(
            &acme,
            &AuditQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("audit");
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "key.create",
            "key.revoke",
            "policy.put",
            "policy.put",
            "policy.delete"
        ]
    );
    let policy_only = store
        .list_audit(
            &acme,
            &AuditQuery {
                action: Some("policy".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("filtered");
    assert_eq!(policy_only.len(), 3);
    let page = store
        .list_audit(
            &acme,
            &AuditQuery {
                after: Some(all[1].seq),
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .expect("page");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].seq, all[2].seq);
    let by_actor = store
        .list_audit(
            &acme,
            &AuditQuery {
                actor: Some("agent:helper".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("actor");
    assert_eq!(by_actor.len(), 6);
    let future = store
        .list_audit(
            &acme,
            &AuditQuery {
                since: Some(Utc::now() + Duration::hours(1)),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("since");
    assert!(future.is_empty());
    assert!(store
        .list_audit(
            &other,
            &AuditQuery {
                limit: 100,
                ..Default::default()
            }
        )
        .await
        .expect("other")
        .is_empty());
}

/// Runs keep who started them.
async fn run_actor(store: DynStore) {
    let (tenant, _, session) = agent_session(&store).await;
    let created = store
        .create_run(&tenant, new_run(&session, Some("key:key_abc")))
        .await
        .expect("run");
    let run = store
        .get_run(&tenant, &created.run().id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(run.actor.as_deref(), Some("key:key_abc"));

    // Agent changes land with their audit events.
    let agent = store.list_agents(&tenant).await.expect("agents").remove(0);
    store
        .update_agent(&tenant, &agent.id, new_agent().config, "key:editor")
        .await
        .expect("update");
    assert!(store
        .delete_agent(&tenant, &agent.id, "key:editor")
        .await
        .expect("delete"));
    assert!(!store
        .delete_agent(&tenant, &agent.id, "key:editor")
        .await
        .expect("again"));
    let trail: Vec<(String, String, String)> = store
        .list_audit(
            &tenant,
            &AuditQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.action, e.actor, e.resource))
        .collect();
    let expect = |a: &str, who: &str| (a.to_owned(), who.to_owned(), "agent:helper".to_owned());
    assert_eq!(
        trail,
        vec![
            expect("agent.create", "key:test"),
            expect("agent.update", "key:editor"),
            expect("agent.delete", "key:editor"),
        ]
    );
}

/// A run waits for approval with its request journaled; a decision moves
/// it back to running only once none is pending; expiry and cancel settle
/// the rest; decisions cannot repeat.
async fn approvals(store: DynStore) {
    let (tenant, _, session) = agent_session(&store).await;
    let run = store
        .create_run(&tenant, new_run(&session, None))
        .await
        .expect("run")
        .run()
        .clone();
    // The first run of an idle session starts as it is created.
    assert_eq!(run.status, RunStatus::Running);
    let request = |call: &str, ttl: Duration| NewApproval {
        id: approval_id(),
        step: 2,
        call_id: call.into(),
        agent: "helper".into(),
        tool: "pay".into(),
        arguments: json!({"amount": 700}),
        reason: "big".into(),
        policies: vec!["p[2]".into()],
        actor: "key:k > agent:helper > tool:pay".into(),
        expires_at: Utc::now() + ttl,
    };
    let (first, second) = (
        request("c1", Duration::hours(1)),
        request("c2", Duration::hours(1)),
    );
    let mut pause = JournalWrite::new(run.id.clone(), session.id.clone());
    pause.transition = Some(RunTransition::AwaitApproval);
    pause.approvals = vec![first.clone(), second.clone()];
    store.commit(&tenant, pause).await.expect("pause");
    let status = |store: DynStore, run: roster_core::RunId, tenant: TenantId| async move {
        store
            .get_run(&tenant, &run)
            .await
            .expect("get")
            .expect("run")
            .status
    };
    assert_eq!(
        status(store.clone(), run.id.clone(), tenant.clone()).await,
        RunStatus::AwaitingApproval
    );
    // The session's queue waits behind it.
    store
        .create_run(&tenant, new_run(&session, None))
        .await
        .expect("queued");
    assert!(store
        .next_queued_run(&tenant, &session.id)
        .await
        .expect("next")
        .is_none());
    assert_eq!(
        store
            .list_approvals(&tenant, Some("pending"), 10)
            .await
            .expect("list")
            .len(),
        2
    );
    let found = store
        .approval_for_call(&tenant, &run.id, "c1")
        .await
        .expect("for call")
        .expect("c1");
    assert_eq!(found.arguments["amount"], 700);
    assert!(store
        .get_approval(&TenantId::generate(), &first.id)
        .await
        .expect("other")
        .is_none());

    let approved = store
        .decide_approval(
            &tenant,
            &first.id,
            ApprovalDecision::Approve,
            "key:k",
            Some("fine"),
            event("approval.approve"),
        )
        .await
        .expect("approve");
    assert_eq!(approved.status, "approved");
    assert_eq!(approved.note.as_deref(), Some("fine"));
    // One still pending: the run keeps waiting.
    assert_eq!(
        status(store.clone(), run.id.clone(), tenant.clone()).await,
        RunStatus::AwaitingApproval
    );
    let err = store
        .decide_approval(
            &tenant,
            &first.id,
            ApprovalDecision::Deny,
            "key:k",
            None,
            event("approval.deny"),
        )
        .await
        .expect_err("twice");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // Cancel withdraws the rest and hands the run back to the runner.
    assert_eq!(
        store
            .cancel_approvals(&tenant, &run.id)
            .await
            .expect("cancel"),
        1
    );
    assert_eq!(
        status(store.clone(), run.id.clone(), tenant.clone()).await,
        RunStatus::Running
    );
    let err = store
        .decide_approval(
            &tenant,
            &second.id,
            ApprovalDecision::Approve,
            "key:k",
            None,
            event("approval.approve"),
        )
        .await
        .expect_err("cancelled");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    // An expired request counts as decided and resumes its run.
    let late = request("c3", Duration::milliseconds(-1));
    let mut pause = JournalWrite::new(run.id.clone(), session.id.clone());
    pause.transition = Some(RunTransition::AwaitApproval);
    pause.approvals = vec![late.clone()];
    store.commit(&tenant, pause).await.expect("pause again");
    let expired = store.expire_approvals(Utc::now()).await.expect("expire");
    assert!(expired
        .iter()
        .any(|(t, a)| *t == tenant && a.id == late.id && a.status == "expired"));
    assert_eq!(
        status(store.clone(), run.id.clone(), tenant.clone()).await,
        RunStatus::Running
    );
    assert!(store
        .expire_approvals(Utc::now())
        .await
        .expect("again")
        .iter()
        .all(|(_, a)| a.id != late.id));
}

/// A tenant with an agent and a session of it.
async fn agent_session(
    store: &DynStore,
) -> (TenantId, roster_core::agent::Agent, roster_store::Session) {
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let agent = store
        .create_agent(&tenant, new_agent(), "key:test")
        .await
        .expect("agent");
    let session = store
        .create_session(&tenant, &agent.id, 1)
        .await
        .expect("session");
    (tenant, agent, session)
}

fn new_run(session: &roster_store::Session, actor: Option<&str>) -> NewRun {
    NewRun {
        turn: Default::default(),
        notify: Default::default(),
        parent: Default::default(),
        session_id: session.id.clone(),
        input: "hi".into(),
        idempotency_key: None,
        if_busy: BusyPolicy::Queue,
        actor: actor.map(str::to_owned),
    }
}

fn new_agent() -> NewAgent {
    NewAgent {
        name: "helper".into(),
        config: AgentConfig {
            max_running: Default::default(),
            notify: Default::default(),
            description: Default::default(),
            if_busy: Default::default(),
            tool_choice: Default::default(),
            instructions: String::new(),
            model: "openai/m".into(),
            fallbacks: vec![],
            tools: vec![],
            max_steps: 8,
            context_tokens: 4000,
            memory: Default::default(),
            knowledge: vec![],
            knowledge_recall: 3,
            context: Default::default(),
            memory_blocks: vec![],
        },
        memory_blocks: vec![],
    }
}

/// Budgets, and the ledger sums they are checked against.
async fn budgets(store: DynStore) {
    let (tenant, agent, session) = agent_session(&store).await;
    let run = store
        .create_run(&tenant, new_run(&session, None))
        .await
        .expect("run")
        .run()
        .clone();
    let entry = |provider: &str, tokens_in: i64, cost: Option<i64>, agent: Option<String>| {
        roster_core::ledger::NewLedgerEntry {
            provider: provider.into(),
            model: "m".into(),
            tokens_in,
            tokens_out: 1,
            latency_ms: 1,
            outcome: "ok".into(),
            error: None,
            agent_id: agent,
            session_id: None,
            run_id: None,
            step: None,
            region: None,
            route: None,
            cost_micros: cost,
        }
    };
    let mut write = JournalWrite::new(run.id.clone(), session.id.clone());
    write.ledger = vec![
        entry("openai", 10, Some(100), Some(agent.id.to_string())),
        entry("openai", 20, None, Some(agent.id.to_string())),
        entry("anthropic", 30, Some(5), None),
    ];
    store.commit(&tenant, write).await.expect("ledger");
    let today = Utc::now() - Duration::hours(1);
    let all = store
        .spent_since(&tenant, None, today)
        .await
        .expect("spent");
    assert_eq!(
        all,
        roster_store::Spent {
            tokens: 63,
            cost_micros: 105
        }
    );
    let mine = store
        .spent_since(&tenant, Some(&agent.id), today)
        .await
        .expect("agent");
    assert_eq!(
        mine,
        roster_store::Spent {
            tokens: 32,
            cost_micros: 100
        }
    );
    let later = store
        .spent_since(&tenant, None, Utc::now() + Duration::hours(1))
        .await
        .expect("later");
    assert_eq!(later, roster_store::Spent::default());
    let summary = store
        .ledger_summary(
            &tenant,
            &roster_store::LedgerSummaryQuery {
                group_by: vec!["day".into(), "provider".into()],
                ..Default::default()
            },
        )
        .await
        .expect("summary");
    assert_eq!(summary.len(), 2);
    assert_eq!(summary[0].provider.as_deref(), Some("anthropic"));
    assert_eq!(summary[1].calls, 2);
    assert_eq!(summary[1].tokens_in, 30);
    assert_eq!(summary[1].cost_micros, 100);
    assert_eq!(
        summary[0].day,
        Some(Utc::now().date_naive().format("%Y-%m-%d").to_string())
    );
    let total = store
        .ledger_summary(
            &tenant,
            &roster_store::LedgerSummaryQuery {
                provider: Some("openai".into()),
                ..Default::default()
            },
        )
        .await
        .expect("total");
    assert_eq!(total.len(), 1);
    assert_eq!((total[0].calls, total[0].day.clone()), (2, None));

    let set = store
        .set_budget(
            &tenant,
            roster_store::Budget {
                scope: "tenant".into(),
                tokens_per_day: Some(50),
                cost_micros_per_day: None,
                updated_at: None,
            },
            event("budget.set"),
        )
        .await
        .expect("set");
    assert_eq!(set.tokens_per_day, Some(50));
    assert_eq!(store.budgets(&tenant).await.expect("list").len(), 1);
    assert!(store
        .budgets(&TenantId::generate())
        .await
        .expect("other")
        .is_empty());
    assert!(store
        .delete_budget(&tenant, "tenant", event("budget.delete"))
        .await
        .expect("delete"));
    assert!(!store
        .delete_budget(&tenant, "tenant", event("budget.delete"))
        .await
        .expect("again"));
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let store = common::sqlite(&dir).await;
    story(store.clone()).await;
    run_actor(store.clone()).await;
    approvals(store.clone()).await;
    budgets(store).await;
}

#[tokio::test]
async fn postgres() {
    if let Some(store) = common::postgres().await {
        story(store.clone()).await;
        run_actor(store.clone()).await;
        approvals(store.clone()).await;
        budgets(store).await;
    }
}

#[test]
fn sqlite_refuses_to_rewrite_the_audit_log() {
    let dir = tempfile::tempdir().expect("dir");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let path = dir.path().join("roster.db");
    rt.block_on(async {
        let store = common::sqlite(&dir).await;
        let t = TenantId::generate();
        store
            .append_audit(&t, vec![event("x.y")])
            .await
            .expect("append");
    });
    let conn = rusqlite::Connection::open(&path).expect("open");
    for sql in [
        "UPDATE audit_events SET actor = 'forged'",
        "DELETE FROM audit_events",
    ] {
        let err = conn.execute(sql, []).expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}

#[tokio::test]
async fn postgres_refuses_to_rewrite_the_audit_log() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let store = roster_store_sql::open(&url).await.expect("open");
    let t = TenantId::generate();
    store
        .append_audit(&t, vec![event("x.y")])
        .await
        .expect("append");
    let pool = sqlx::PgPool::connect(&url).await.expect("pool");
    for sql in [
        "UPDATE audit_events SET actor = 'forged'",
        "DELETE FROM audit_events",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
