//! One active run per session: further inputs queue and run in order, a
//! `reject` policy refuses them, and an idempotency key returns the run it
//! already made.

use crate::common;

use common::model::{last_user_text, text, ScriptedModel};
use common::*;
use roster_core::item::ItemContent;
use roster_core::run::RunStatus;
use roster_models::ChatMessage;
use roster_runtime::{RuntimeError, Submission};
use roster_store::{BusyPolicy, CreatedRun, StoreError};

on_both_backends!(
    inputs_run_one_at_a_time_in_order,
    busy_policy_reject_and_idempotency_keys,
    sessions_run_side_by_side,
    concurrent_rejecting_inputs_admit_exactly_one,
    concurrent_inputs_with_one_key_make_one_run,
);

async fn inputs_run_one_at_a_time_in_order(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![text("A1"), text("A2"), text("A3")]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let runs = [
        submit(&rt, &fx, "one").await,
        submit(&rt, &fx, "two").await,
        submit(&rt, &fx, "three").await,
    ];

    for (i, expected) in ["one", "two", "three"].into_iter().enumerate() {
        wait_until("the next model call", || model.request_count() == i + 1).await;
        let request = model.request(i);
        assert_eq!(last_user_text(&request).as_deref(), Some(expected));
        // Input N is seen only after run N-1 finished: its whole turn is there.
        let users = request
            .messages
            .iter()
            .filter(|m| matches!(m, ChatMessage::User { .. }))
            .count();
        assert_eq!(users, i + 1, "{:?}", request.messages);
        assert_eq!(request.messages.len(), 2 * i + 1);
        for (j, run) in runs.iter().enumerate() {
            let status = store
                .get_run(&fx.tenant, &run.id)
                .await
                .expect("get")
                .expect("run")
                .status;
            let want = match j.cmp(&i) {
                std::cmp::Ordering::Less => RunStatus::Completed,
                std::cmp::Ordering::Equal => RunStatus::Running,
                std::cmp::Ordering::Greater => RunStatus::Queued,
            };
            assert_eq!(status, want, "run {j} while run {i} is at the model");
        }
        gate.add_permits(1);
    }
    for run in &runs {
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    assert_eq!(
        model.max_in_flight(),
        1,
        "model calls overlapped in one session"
    );
    let texts: Vec<String> = contents(&store, &fx)
        .await
        .into_iter()
        .map(|c| match c {
            ItemContent::UserMessage { text } | ItemContent::AssistantMessage { text, .. } => text,
            other => panic!("unexpected item {other:?}"),
        })
        .collect();
    assert_eq!(texts, ["one", "A1", "two", "A2", "three", "A3"]);
}

async fn busy_policy_reject_and_idempotency_keys(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![text("first"), text("second")]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let keyed = |text: &str, key: &str, if_busy| Submission {
        turn: Default::default(),
        notify: Default::default(),
        parent: Default::default(),
        input: text.into(),
        idempotency_key: Some(key.into()),
        if_busy,
        actor: None,
    };
    let first = rt
        .submit(
            &fx.tenant,
            &fx.session,
            keyed("hi", "k1", BusyPolicy::Queue),
        )
        .await
        .expect("submit");
    let CreatedRun::Created(first) = first else {
        panic!("first submission must create a run");
    };
    wait_until("the model is called", || model.request_count() == 1).await;

    let rejected = rt
        .submit(
            &fx.tenant,
            &fx.session,
            keyed("no", "k2", BusyPolicy::Reject),
        )
        .await;
    assert!(
        matches!(
            rejected,
            Err(RuntimeError::Store(StoreError::SessionBusy(_)))
        ),
        "{rejected:?}"
    );
    // The same key returns the existing run, even while it runs and even
    // with `reject`: it is the same request again, not a new one.
    let again = rt
        .submit(
            &fx.tenant,
            &fx.session,
            keyed("hi", "k1", BusyPolicy::Reject),
        )
        .await
        .expect("resubmit");
    assert!(
        matches!(&again, CreatedRun::Existing(r) if r.id == first.id),
        "{again:?}"
    );

    gate.add_permits(1);
    finished(&rt, &fx, &first.id, RunStatus::Completed).await;
    let again = rt
        .submit(
            &fx.tenant,
            &fx.session,
            keyed("hi", "k1", BusyPolicy::Queue),
        )
        .await
        .expect("resubmit");
    assert!(
        matches!(&again, CreatedRun::Existing(r) if r.id == first.id && r.status == RunStatus::Completed),
        "{again:?}"
    );
    // Not busy any more: `reject` accepts.
    let second = rt
        .submit(
            &fx.tenant,
            &fx.session,
            keyed("now", "k2", BusyPolicy::Reject),
        )
        .await
        .expect("accepted once idle");
    gate.add_permits(1);
    finished(&rt, &fx, &second.run().id, RunStatus::Completed).await;
    assert_eq!(
        model.request_count(),
        2,
        "no run for a rejected or repeated input"
    );
    assert_eq!(
        store
            .list_runs(&fx.tenant, &fx.session)
            .await
            .expect("runs")
            .len(),
        2
    );

    // Empty input is refused before anything is stored.
    let empty = rt.submit(&fx.tenant, &fx.session, input("  ")).await;
    assert!(matches!(empty, Err(RuntimeError::Invalid(_))), "{empty:?}");
}

async fn sessions_run_side_by_side(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![text("a"), text("b")]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let other = fx.new_session(&store).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let a = submit(&rt, &fx, "in a").await;
    let b = submit_to(&rt, &fx, &other, "in b").await;
    // Both are at the model at once: one session does not wait for another.
    wait_until("both sessions call the model", || {
        model.request_count() == 2
    })
    .await;
    assert_eq!(model.max_in_flight(), 2);
    gate.add_permits(2);
    finished(&rt, &fx, &a.id, RunStatus::Completed).await;
    finished(&rt, &fx, &b.id, RunStatus::Completed).await;
}

/// `reject` on an idle session, from many requests at once: one gets in.
async fn concurrent_rejecting_inputs_admit_exactly_one(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![text("only")]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let attempts = (0..8).map(|i| {
        let rt = rt.clone();
        let (tenant, session) = (fx.tenant.clone(), fx.session.clone());
        tokio::spawn(async move {
            let submission = Submission {
                turn: Default::default(),
                notify: Default::default(),
                parent: Default::default(),
                input: format!("attempt {i}"),
                idempotency_key: None,
                if_busy: BusyPolicy::Reject,
                actor: None,
            };
            rt.submit(&tenant, &session, submission).await
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let mut accepted = Vec::new();
    for outcome in outcomes {
        match outcome.expect("task") {
            Ok(created) => accepted.push(created.run().clone()),
            Err(RuntimeError::Store(StoreError::SessionBusy(_))) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    gate.add_permits(1);
    finished(&rt, &fx, &accepted[0].id, RunStatus::Completed).await;
}

/// One idempotency key sent many times at once: one run.
async fn concurrent_inputs_with_one_key_make_one_run(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![text("once")]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let attempts = (0..8).map(|_| {
        let rt = rt.clone();
        let (tenant, session) = (fx.tenant.clone(), fx.session.clone());
        tokio::spawn(async move {
            let submission = Submission {
                turn: Default::default(),
                notify: Default::default(),
                parent: Default::default(),
                input: "same".into(),
                idempotency_key: Some("key".into()),
                if_busy: BusyPolicy::Queue,
                actor: None,
            };
            rt.submit(&tenant, &session, submission).await
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let ids: std::collections::HashSet<_> = outcomes
        .into_iter()
        .map(|o| o.expect("task").expect("submit").run().id.clone())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    gate.add_permits(1);
    let id = ids.into_iter().next().expect("one run");
    finished(&rt, &fx, &id, RunStatus::Completed).await;
    assert_eq!(
        store
            .list_runs(&fx.tenant, &fx.session)
            .await
            .expect("runs")
            .len(),
        1
    );
}
