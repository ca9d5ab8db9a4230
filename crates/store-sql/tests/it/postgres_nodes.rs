//! Several Roster nodes sharing one PostgreSQL database: each is its own
//! store (own pool, own connections), as separate processes would be.
//! Runs when `ROSTER_TEST_DATABASE_URL` is set (and must be set in CI).

#[allow(dead_code)] // only the PostgreSQL helpers are used here
use crate::common;

use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::item::ItemContent;
use roster_core::{AgentId, SessionId, TenantId};
use roster_store::*;
use roster_store_sql::SqlStore;
use std::sync::Arc;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

const NODES: usize = 4;

/// Starts `NODES` nodes at once on a fresh, unmigrated database.
async fn nodes() -> Option<Vec<DynStore>> {
    let url = common::postgres_url().await?;
    Some(start_nodes(&url).await)
}

async fn start_nodes(url: &str) -> Vec<DynStore> {
    let mut starting = JoinSet::new();
    for _ in 0..NODES {
        let url = url.to_owned();
        starting.spawn(async move { SqlStore::postgres(&url).await });
    }
    let mut nodes: Vec<DynStore> = Vec::new();
    while let Some(started) = starting.join_next().await {
        let store = started.expect("task").expect("node connects and migrates");
        nodes.push(Arc::new(store));
    }
    nodes
}

fn new_agent(name: &str) -> NewAgent {
    NewAgent {
        name: name.into(),
        config: AgentConfig {
            max_running: Default::default(),
            notify: Default::default(),
            description: Default::default(),
            if_busy: Default::default(),
            tool_choice: Default::default(),
            instructions: "Be helpful.".into(),
            model: "openai/gpt-4.1-mini".into(),
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

async fn agent(store: &DynStore, tenant: &TenantId) -> AgentId {
    store.ensure_tenant(tenant, "T").await.expect("tenant");
    store
        .create_agent(tenant, new_agent("helper"), "test")
        .await
        .expect("agent")
        .id
}

fn new_run(session: &SessionId, key: Option<&str>, if_busy: BusyPolicy) -> NewRun {
    NewRun {
        turn: Default::default(),
        notify: Default::default(),
        parent: Default::default(),
        session_id: session.clone(),
        input: "go".into(),
        idempotency_key: key.map(str::to_owned),
        if_busy,
        actor: None,
    }
}

/// Calls `create_run` from every node (twice each) at the same moment.
async fn race_create_run(
    nodes: &[DynStore],
    tenant: &TenantId,
    run: NewRun,
) -> Vec<StoreResult<CreatedRun>> {
    let callers = nodes.len() * 2;
    let barrier = Arc::new(Barrier::new(callers));
    let mut tasks = JoinSet::new();
    for i in 0..callers {
        let (store, tenant, run) = (nodes[i % nodes.len()].clone(), tenant.clone(), run.clone());
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            store.create_run(&tenant, run).await
        });
    }
    let mut results = Vec::new();
    while let Some(result) = tasks.join_next().await {
        results.push(result.expect("task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_migrate_concurrently_and_share_state() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let nodes = start_nodes(&url).await;
    let tenant = TenantId::from_stored("ten_nodes".into());
    let agent = agent(&nodes[0], &tenant).await;
    for node in &nodes {
        let seen = node
            .get_agent(&tenant, &AgentRef::Id(agent.clone()))
            .await
            .expect("get")
            .expect("every node sees the agent");
        assert_eq!(seen.name, "helper");
    }
    let dup = nodes[1]
        .create_agent(&tenant, new_agent("helper"), "test")
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    // Each migration was applied once; a node started later changes nothing.
    let late = SqlStore::postgres(&url).await.expect("late node");
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(late.postgres_pool().expect("a PostgreSQL store"))
            .await
            .expect("applied migrations");
    // Numbers may leave gaps (each change takes its own); every file is applied.
    let mut expected: Vec<i64> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .expect("migrations directory")
            .map(|entry| {
                let name = entry.expect("entry").file_name();
                let name = name.to_string_lossy();
                name.split('_')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a numbered migration")
            })
            .collect();
    expected.sort_unstable();
    assert_eq!(applied, expected);
    assert_eq!(late.list_agents(&tenant).await.expect("agents").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_reject_busy_sessions_exactly_once() {
    let Some(nodes) = nodes().await else {
        return;
    };
    let tenant = TenantId::from_stored("ten_busy".into());
    let agent = agent(&nodes[0], &tenant).await;
    for round in 0..10 {
        let session = nodes[round % NODES]
            .create_session(&tenant, &agent, 1)
            .await
            .expect("session");
        let results = race_create_run(
            &nodes,
            &tenant,
            new_run(&session.id, None, BusyPolicy::Reject),
        )
        .await;
        let created: Vec<_> = results
            .iter()
            .filter_map(|r| match r {
                Ok(CreatedRun::Created(run)) => Some(run.id.clone()),
                _ => None,
            })
            .collect();
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::SessionBusy(_))))
            .count();
        assert_eq!(created.len(), 1, "round {round}: {results:?}");
        assert_eq!(busy, results.len() - 1, "round {round}: {results:?}");

        let runs = nodes[(round + 1) % NODES]
            .list_runs(&tenant, &session.id)
            .await
            .expect("runs");
        assert_eq!(
            runs.iter().map(|r| &r.id).collect::<Vec<_>>(),
            vec![&created[0]]
        );
        let events = nodes[(round + 2) % NODES]
            .list_events(&tenant, &created[0], 0, 100)
            .await
            .expect("events");
        let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
        assert_eq!(
            names,
            vec!["run_queued", "run_started", "item"],
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_share_one_run_per_idempotency_key() {
    let Some(nodes) = nodes().await else {
        return;
    };
    let tenant = TenantId::from_stored("ten_idem".into());
    let agent = agent(&nodes[0], &tenant).await;
    let session = nodes[1]
        .create_session(&tenant, &agent, 1)
        .await
        .expect("session");
    let results = race_create_run(
        &nodes,
        &tenant,
        new_run(&session.id, Some("k1"), BusyPolicy::Queue),
    )
    .await;
    let results: Vec<CreatedRun> = results
        .into_iter()
        .map(|r| r.expect("create_run"))
        .collect();
    let created = results
        .iter()
        .filter(|r| matches!(r, CreatedRun::Created(_)))
        .count();
    assert_eq!(created, 1, "{results:?}");
    let id = results[0].run().id.clone();
    assert!(results.iter().all(|r| r.run().id == id), "{results:?}");
    assert_eq!(
        nodes[2]
            .list_runs(&tenant, &session.id)
            .await
            .expect("runs")
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_commit_to_one_run_without_gaps() {
    let Some(nodes) = nodes().await else {
        return;
    };
    let tenant = TenantId::from_stored("ten_commit".into());
    let agent = agent(&nodes[0], &tenant).await;
    let session = nodes[0]
        .create_session(&tenant, &agent, 1)
        .await
        .expect("session");
    let run = nodes[1]
        .create_run(&tenant, new_run(&session.id, None, BusyPolicy::Queue))
        .await
        .expect("run")
        .run()
        .clone();
    assert_eq!(
        run.status,
        roster_core::run::RunStatus::Running,
        "started as created"
    );

    const WRITES: usize = 40;
    let barrier = Arc::new(Barrier::new(WRITES));
    let mut tasks = JoinSet::new();
    for i in 0..WRITES {
        let (store, tenant, barrier) = (nodes[i % NODES].clone(), tenant.clone(), barrier.clone());
        let mut write = JournalWrite::new(run.id.clone(), session.id.clone());
        write.items = vec![
            ItemContent::SystemNote {
                text: format!("a{i}"),
            },
            ItemContent::SystemNote {
                text: format!("b{i}"),
            },
        ];
        tasks.spawn(async move {
            barrier.wait().await;
            store.commit(&tenant, write).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("commit");
    }

    let items = nodes[3]
        .list_items(&tenant, &session.id, 0, 1000)
        .await
        .expect("items");
    let seqs: Vec<i64> = items.iter().map(|i| i.seq).collect();
    assert_eq!(seqs, (1..=(1 + 2 * WRITES) as i64).collect::<Vec<_>>());
    // Each write's two items stay adjacent: no other write interleaved.
    for pair in items[1..].chunks(2) {
        let [ItemContent::SystemNote { text: a }, ItemContent::SystemNote { text: b }] =
            [&pair[0].content, &pair[1].content]
        else {
            panic!("unexpected items {pair:?}")
        };
        assert_eq!(a.replacen('a', "b", 1), *b);
    }
    let events = nodes[0]
        .list_events(&tenant, &run.id, 0, 1000)
        .await
        .expect("events");
    let event_seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(event_seqs, (1..=events.len() as i64).collect::<Vec<_>>());
    // run_queued, run_started, the input item, then one event per note.
    assert_eq!(events.len(), 3 + 2 * WRITES);
}
