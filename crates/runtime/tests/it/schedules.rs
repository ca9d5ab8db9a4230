//! Schedules: each fire time fires once (however many runtimes try it),
//! missed times follow the catch-up policy, and a firing acts for the key
//! that made the schedule, through the same checks as a person's message.

use crate::common;

use chrono::{DateTime, Duration as Span, Utc};
use common::model::{text, ScriptedModel};
use common::*;
use roster_core::run::RunStatus;
use roster_core::schedule::{CatchUp, Schedule};
use roster_core::{KeyId, SessionId};
use roster_store::schedules::NewSchedule;
use roster_store::{DynStore, NewAuditEvent, NewKey};
use std::time::Duration;

on_both_backends!(
    each_fire_time_fires_once_however_many_runtimes_try,
    missed_fire_times_follow_the_catch_up_policy,
    a_named_session_gets_every_firing_in_order,
    a_revoked_key_or_a_denying_policy_refuses_the_firing,
    a_schedule_that_cannot_fire_does_not_hold_back_the_others,
);

const GRACE: Duration = Duration::from_secs(5);

fn audit() -> NewAuditEvent {
    NewAuditEvent {
        actor: "test".into(),
        action: "test".into(),
        resource: String::new(),
        decision: None,
        detail: serde_json::json!({}),
    }
}

async fn key(store: &DynStore, fx: &Fixture) -> KeyId {
    store
        .create_key(
            &fx.tenant,
            NewKey {
                id: KeyId::generate(),
                name: "scheduler".into(),
                kind: "service".into(),
                key_hash: format!("hash-{}", KeyId::generate()),
                scopes: None,
                user: None,
                act_for: None,
                expires_at: None,
            },
            audit(),
        )
        .await
        .expect("key")
        .id
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

async fn every_second(
    store: &DynStore,
    fx: &Fixture,
    key: &KeyId,
    first: DateTime<Utc>,
    catch_up: CatchUp,
    session: Option<SessionId>,
) -> Schedule {
    store
        .create_schedule(
            &fx.tenant,
            NewSchedule {
                notify: Default::default(),
                agent_id: fx.agent.id.clone(),
                cron: Some("* * * * * *".into()),
                at: None,
                timezone: "UTC".into(),
                input: "tick".into(),
                session_id: session,
                catch_up,
                paused: false,
                next_fire_at: Some(first),
                created_by: format!("key:{key}"),
                key_id: key.clone(),
            },
            audit(),
        )
        .await
        .expect("schedule")
}

fn answering() -> std::sync::Arc<ScriptedModel> {
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|_| text("tock"));
    model
}

async fn each_fire_time_fires_once_however_many_runtimes_try(db: Db) {
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let key = key(&store, &fx).await;
    let t0 = at("2026-01-01T00:00:00Z");
    let schedule = every_second(&store, &fx, &key, t0, CatchUp::All, None).await;
    let model = answering();
    let a = runtime(store.clone(), model.clone(), vec![]);
    let b = runtime(store.clone(), model.clone(), vec![]);
    let now = t0 + Span::milliseconds(2_500);
    // Two runtimes (two nodes, or a restart) fire the same due times at once.
    let (x, y) = tokio::join!(a.fire_due(now, GRACE), b.fire_due(now, GRACE));
    assert_eq!(
        x.expect("fire") + y.expect("fire"),
        3,
        "00, 01 and 02 once each"
    );
    assert_eq!(a.fire_due(now, GRACE).await.expect("again"), 0);
    let firings = store
        .list_firings(&fx.tenant, &schedule.id, 100)
        .await
        .expect("firings");
    let times: Vec<DateTime<Utc>> = firings.iter().rev().map(|f| f.fire_at).collect();
    assert_eq!(times, [t0, t0 + Span::seconds(1), t0 + Span::seconds(2)]);
    for firing in &firings {
        assert_eq!(firing.outcome, "started");
        let run = firing.run_id.clone().expect("run");
        let done = finished(&a, &fx, &run, RunStatus::Completed).await;
        assert_eq!(done.input, "tick");
        assert_eq!(
            done.actor.as_deref(),
            Some(format!("key:{key} > schedule:{}", schedule.id).as_str())
        );
    }
    // Each firing had a session of its own.
    let sessions: std::collections::HashSet<_> = firings
        .iter()
        .filter_map(|f| f.session_id.clone())
        .collect();
    assert_eq!(sessions.len(), 3);
    let stored = store
        .get_schedule(&fx.tenant, &schedule.id)
        .await
        .expect("get")
        .expect("schedule");
    assert_eq!(stored.next_fire_at, Some(t0 + Span::seconds(3)));
    assert_eq!(stored.fired_count, 3);
}

async fn missed_fire_times_follow_the_catch_up_policy(db: Db) {
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let key = key(&store, &fx).await;
    let t0 = at("2026-01-01T00:00:00Z");
    // Down from t0 to t0 + 20 s: 00..14 are missed (older than the grace),
    // 15..20 are on time.
    let now = t0 + Span::seconds(20);
    let rt = runtime(store.clone(), answering(), vec![]);
    for (policy, expected) in [(CatchUp::All, 21), (CatchUp::Once, 7), (CatchUp::Skip, 6)] {
        let schedule = every_second(&store, &fx, &key, t0, policy, None).await;
        rt.fire_due(now, GRACE).await.expect("fire");
        let firings = store
            .list_firings(&fx.tenant, &schedule.id, 100)
            .await
            .expect("firings");
        assert_eq!(firings.len(), expected, "{policy:?}");
        if policy == CatchUp::Once {
            // The latest missed one, then the on-time ones.
            assert_eq!(
                firings.last().map(|f| f.fire_at),
                Some(t0 + Span::seconds(14))
            );
        }
        let stored = store
            .get_schedule(&fx.tenant, &schedule.id)
            .await
            .expect("get")
            .expect("schedule");
        assert_eq!(stored.next_fire_at, Some(t0 + Span::seconds(21)));
        store
            .delete_schedule(&fx.tenant, &schedule.id, audit())
            .await
            .expect("delete");
    }
}

async fn a_named_session_gets_every_firing_in_order(db: Db) {
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let key = key(&store, &fx).await;
    let t0 = at("2026-01-01T00:00:00Z");
    let schedule = every_second(
        &store,
        &fx,
        &key,
        t0,
        CatchUp::All,
        Some(fx.session.clone()),
    )
    .await;
    let rt = runtime(store.clone(), answering(), vec![]);
    assert_eq!(
        rt.fire_due(t0 + Span::seconds(3), GRACE)
            .await
            .expect("fire"),
        4
    );
    let runs = store
        .list_runs(&fx.tenant, &fx.session)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 4);
    for run in &runs {
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    let firings = store
        .list_firings(&fx.tenant, &schedule.id, 10)
        .await
        .expect("firings");
    assert!(firings
        .iter()
        .all(|f| f.session_id.as_ref() == Some(&fx.session)));
}

async fn a_revoked_key_or_a_denying_policy_refuses_the_firing(db: Db) {
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let key = key(&store, &fx).await;
    let t0 = at("2026-01-01T00:00:00Z");
    let schedule = every_second(&store, &fx, &key, t0, CatchUp::All, None).await;
    let rt = runtime(store.clone(), answering(), vec![]);
    // A policy that forbids invoking the agent refuses the firing.
    store
        .put_policy(
            &fx.tenant,
            "nobody",
            r#"forbid(principal, action == Roster::Action::"invoke_agent", resource);"#,
            0,
            audit(),
        )
        .await
        .expect("policy");
    assert_eq!(rt.fire_due(t0, GRACE).await.expect("fire"), 0);
    store
        .delete_policy(&fx.tenant, "nobody", audit())
        .await
        .expect("policy removed");
    // A revoked key refuses every later firing.
    store
        .revoke_key(&fx.tenant, &key, audit())
        .await
        .expect("revoke");
    assert_eq!(
        rt.fire_due(t0 + Span::seconds(1), GRACE)
            .await
            .expect("fire"),
        0
    );
    let firings = store
        .list_firings(&fx.tenant, &schedule.id, 10)
        .await
        .expect("firings");
    assert_eq!(firings.len(), 2);
    assert!(firings
        .iter()
        .all(|f| f.outcome == "refused" && f.run_id.is_none()));
    assert!(
        firings[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("revoked"),
        "{firings:?}"
    );
    assert!(
        firings[1]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("forbid"),
        "{firings:?}"
    );
    assert!(store
        .list_runs(&fx.tenant, &fx.session)
        .await
        .expect("runs")
        .is_empty());
}

async fn a_schedule_that_cannot_fire_does_not_hold_back_the_others(db: Db) {
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let key = key(&store, &fx).await;
    let t0 = at("2026-01-01T00:00:00Z");
    // Due first, and unreadable (written past the API's checks).
    let broken = every_second(
        &store,
        &fx,
        &key,
        t0 - Span::seconds(1),
        CatchUp::Once,
        None,
    )
    .await;
    let mut unreadable = broken.clone();
    unreadable.cron = Some("not a cron".into());
    store
        .update_schedule(&fx.tenant, unreadable, audit())
        .await
        .expect("update");
    let fine = every_second(&store, &fx, &key, t0, CatchUp::Once, None).await;
    let rt = runtime(store.clone(), answering(), vec![]);
    assert_eq!(rt.fire_due(t0, GRACE).await.expect("fire"), 1);
    let firings = store
        .list_firings(&fx.tenant, &fine.id, 10)
        .await
        .expect("firings");
    assert_eq!(firings.len(), 1);
    assert!(store
        .list_firings(&fx.tenant, &broken.id, 10)
        .await
        .expect("firings")
        .is_empty());
}
