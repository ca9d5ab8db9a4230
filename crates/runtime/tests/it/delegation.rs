//! Agents that delegate to agents: `ask_NAME` runs the callee in a delegate
//! session and returns its answer; `hand_off` starts a task whose result
//! arrives later as a new input; limits stop recursion; a crash or a cancel
//! anywhere in the tree loses and repeats nothing.

use crate::common;

use common::model::{call, calls, last_user_text, request_results, text, Answer, ScriptedModel};
use common::*;
use roster_core::agent::{Agent, NewAgent};
use roster_core::run::{Run, RunStatus};
use roster_models::{ChatMessage, ChatRequest};
use roster_store::{DynStore, LedgerQuery};

on_both_backends!(
    a_call_runs_the_callee_in_its_own_session_and_returns_its_answer,
    recursion_stops_at_the_depth_limit_with_an_error_the_model_sees,
    fan_out_past_the_limit_is_refused,
    a_hand_off_returns_at_once_and_its_result_arrives_once,
    a_retried_hand_off_reports_its_new_result,
    a_crash_while_the_child_runs_resumes_both_and_the_answer_arrives_once,
    cancelling_the_parent_cancels_the_child,
    an_unknown_callee_is_named_to_the_model,
);

const COORDINATOR: &str = "You coordinate.";
const RESEARCHER: &str = "You research.";

/// The coordinator (`helper`, with `agent:researcher`) and the researcher.
async fn team(store: &DynStore, coordinator_tools: &[&str]) -> (Fixture, Agent) {
    let mut coordinator = config(coordinator_tools);
    coordinator.instructions = COORDINATOR.into();
    let fx = Fixture::new(store, coordinator).await;
    let mut researcher = config(&[]);
    researcher.instructions = RESEARCHER.into();
    researcher.description = "Finds facts.".into();
    let researcher = store
        .create_agent(
            &fx.tenant,
            NewAgent {
                name: "researcher".into(),
                config: researcher,
                memory_blocks: vec![],
            },
            "test",
        )
        .await
        .expect("researcher");
    (fx, researcher)
}

fn is_researcher(req: &ChatRequest) -> bool {
    req.system.contains(RESEARCHER)
}

/// The coordinator's side of a hand-off: it hands `dig` to the researcher,
/// says `carried_on` once the tool has answered, and `noted` to each
/// result that comes back.
fn coordinator_hands_off(req: &ChatRequest, noted: &str, carried_on: &str) -> Answer {
    let last = last_user_text(req).unwrap_or_default();
    if last.starts_with("[hand-off result]") {
        text(noted)
    } else if last_is_tool_result(req) {
        text(carried_on)
    } else {
        calls(vec![call(
            "h1",
            "hand_off",
            r#"{"agent":"researcher","task":"dig"}"#,
        )])
    }
}

fn last_is_tool_result(req: &ChatRequest) -> bool {
    matches!(req.messages.last(), Some(ChatMessage::ToolResult { .. }))
}

async fn children(store: &DynStore, fx: &Fixture, parent: &Run) -> Vec<Run> {
    store
        .child_runs(&fx.tenant, std::slice::from_ref(&parent.id))
        .await
        .expect("children")
}

fn keyed(text: &str) -> roster_runtime::Submission {
    roster_runtime::Submission {
        actor: Some("key:key_test".into()),
        ..input(text)
    }
}

async fn start(rt: &roster_runtime::Runtime, fx: &Fixture, text: &str) -> Run {
    match rt
        .submit(&fx.tenant, &fx.session, keyed(text))
        .await
        .expect("submit")
    {
        roster_store::CreatedRun::Created(run) => run,
        roster_store::CreatedRun::Existing(run) => panic!("{} existed", run.id),
    }
}

async fn a_call_runs_the_callee_in_its_own_session_and_returns_its_answer(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "ask_researcher", r#"{"input":"find X"}"#)]),
        text("X is 42"),
        text("The answer is 42"),
        calls(vec![call("c1", "ask_researcher", r#"{"input":"and Y?"}"#)]),
        text("Y is 7"),
        text("Y is 7 too"),
    ]);
    let store = db.open().await;
    let (fx, researcher) = team(&store, &["agent:researcher"]).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let first = start(&rt, &fx, "what is X?").await;
    let done = finished(&rt, &fx, &first.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("The answer is 42"));
    // The coordinator saw a tool per callee (with the callee's description)
    // and the hand-off tool.
    let offered: Vec<String> = model
        .request(0)
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(
        offered.contains(&"ask_researcher".to_owned()),
        "{offered:?}"
    );
    assert!(offered.contains(&"hand_off".to_owned()), "{offered:?}");
    let ask = model
        .request(0)
        .tools
        .into_iter()
        .find(|t| t.name == "ask_researcher")
        .expect("tool");
    assert!(
        ask.description.contains("Finds facts."),
        "{}",
        ask.description
    );
    // The researcher's answer is the tool result.
    assert_eq!(request_results(&model.request(2))[0].1, "X is 42");

    let kids = children(&store, &fx, &first).await;
    assert_eq!(kids.len(), 1, "{kids:?}");
    let child = &kids[0];
    assert_eq!(child.parent_run_id.as_ref(), Some(&first.id));
    assert_eq!((child.depth, child.status), (1, RunStatus::Completed));
    assert_eq!(child.actor.as_deref(), Some("key:key_test > agent:helper"));
    assert!(child.deliver_to.is_none());
    let session = store
        .get_session(&fx.tenant, &child.session_id)
        .await
        .expect("get")
        .expect("session");
    assert_eq!(session.agent_id, researcher.id);
    assert_eq!(session.parent_session_id.as_ref(), Some(&fx.session));
    // Its model calls are charged to the researcher.
    let ledger = store
        .list_ledger(
            &fx.tenant,
            &LedgerQuery {
                run_id: Some(child.id.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("ledger");
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].agent_id.as_deref(), Some(researcher.id.as_str()));

    // A second call from the same conversation reaches the same delegate
    // session: the researcher keeps its context.
    let second = start(&rt, &fx, "and Y?").await;
    finished(&rt, &fx, &second.id, RunStatus::Completed).await;
    let again = children(&store, &fx, &second).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].session_id, child.session_id);
    let researcher_turn = model.request(4);
    assert!(is_researcher(&researcher_turn));
    let seen: Vec<String> = researcher_turn
        .messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::User { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(seen, vec!["find X".to_owned(), "and Y?".to_owned()]);

    // Deleting the conversation deletes what the researcher kept of it.
    store
        .delete_session(
            &fx.tenant,
            &fx.session,
            roster_store::NewAuditEvent {
                actor: "test".into(),
                action: "session.delete".into(),
                resource: format!("session:{}", fx.session),
                decision: None,
                detail: serde_json::json!({}),
            },
        )
        .await
        .expect("delete");
    assert!(store
        .get_session(&fx.tenant, &child.session_id)
        .await
        .expect("get")
        .is_none());
    assert!(store
        .get_run(&fx.tenant, &child.id)
        .await
        .expect("get")
        .is_none());
}

async fn recursion_stops_at_the_depth_limit_with_an_error_the_model_sees(db: Db) {
    // `helper` may ask itself: every turn asks again until refused.
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|req| {
        if last_is_tool_result(req) {
            let results = request_results(req);
            let (_, output, _) = results.last().cloned().unwrap_or_default();
            text(&format!("stopped: {output}"))
        } else {
            calls(vec![call("c1", "ask_helper", r#"{"input":"go deeper"}"#)])
        }
    });
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["agent:helper"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let root = start(&rt, &fx, "recurse").await;
    let done = finished(&rt, &fx, &root.id, RunStatus::Completed).await;
    // Three hops ran (depth 1, 2, 3); the fourth was refused.
    let mut depth = 0;
    let mut parent = root.clone();
    loop {
        let kids = children(&store, &fx, &parent).await;
        match kids.as_slice() {
            [] => break,
            [only] => {
                depth += 1;
                assert_eq!(only.depth, depth);
                assert_eq!(only.status, RunStatus::Completed);
                parent = only.clone();
            }
            more => panic!("one child per hop: {more:?}"),
        }
    }
    assert_eq!(depth, 3);
    let deepest = parent.output.unwrap_or_default();
    assert!(deepest.contains("delegation refused"), "{deepest}");
    assert!(done.output.unwrap_or_default().starts_with("stopped:"));
    assert_eq!(
        parent.actor.as_deref(),
        Some("key:key_test > agent:helper > agent:helper > agent:helper")
    );
}

async fn fan_out_past_the_limit_is_refused(db: Db) {
    let model = ScriptedModel::new(vec![calls(vec![
        call("c1", "ask_researcher", r#"{"input":"one"}"#),
        call("c2", "ask_researcher", r#"{"input":"two"}"#),
        call("c3", "ask_researcher", r#"{"input":"three"}"#),
    ])]);
    model.set_fallback(|req| {
        if is_researcher(req) {
            text(&format!(
                "done: {}",
                last_user_text(req).unwrap_or_default()
            ))
        } else {
            text("all asked")
        }
    });
    let store = db.open().await;
    let (fx, _) = team(&store, &["agent:researcher"]).await;
    let rt = runtime_with_limits(
        store.clone(),
        model.clone(),
        roster_core::delegation::DelegationLimits {
            max_depth: 3,
            max_children: 2,
        },
    );
    let root = start(&rt, &fx, "ask three times").await;
    finished(&rt, &fx, &root.id, RunStatus::Completed).await;
    assert_eq!(children(&store, &fx, &root).await.len(), 2);
    let last = model
        .requests()
        .into_iter()
        .rfind(|r| !is_researcher(r))
        .expect("coordinator's last turn");
    let results = request_results(&last);
    assert_eq!(results.len(), 3);
    let refused: Vec<_> = results.iter().filter(|(_, _, error)| *error).collect();
    assert_eq!(refused.len(), 1, "{results:?}");
    assert!(refused[0].1.contains("already started 2"), "{results:?}");
}

async fn a_hand_off_returns_at_once_and_its_result_arrives_once(db: Db) {
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|req| {
        if is_researcher(req) {
            return text("dug up 7");
        }
        coordinator_hands_off(req, "thanks for the 7", "handed off, carrying on")
    });
    let store = db.open().await;
    let (fx, researcher) = team(&store, &["agent:researcher"]).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let root = start(&rt, &fx, "get it dug").await;
    let done = finished(&rt, &fx, &root.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("handed off, carrying on"));
    let kids = children(&store, &fx, &root).await;
    assert_eq!(kids.len(), 1);
    let task = &kids[0];
    assert_eq!(task.deliver_to.as_ref(), Some(&fx.session));
    let task = finished(&rt, &fx, &task.id, RunStatus::Completed).await;
    let session = store
        .get_session(&fx.tenant, &task.session_id)
        .await
        .expect("get")
        .expect("session");
    assert_eq!(session.agent_id, researcher.id);

    // The result came back as a new input that started a run, once.
    eventually("the result's run", || {
        let store = store.clone();
        let fx_tenant = fx.tenant.clone();
        let fx_session = fx.session.clone();
        async move {
            let runs = store
                .list_runs(&fx_tenant, &fx_session)
                .await
                .expect("runs");
            runs.iter().any(|r| {
                r.status == RunStatus::Completed && r.input.starts_with("[hand-off result]")
            })
        }
    })
    .await;
    let runs = store
        .list_runs(&fx.tenant, &fx.session)
        .await
        .expect("runs");
    let delivered: Vec<&Run> = runs
        .iter()
        .filter(|r| r.input.starts_with("[hand-off result]"))
        .collect();
    assert_eq!(delivered.len(), 1, "{runs:?}");
    assert!(delivered[0].input.contains("dug up 7"));
    assert_eq!(delivered[0].parent_run_id.as_ref(), Some(&task.id));
    assert_eq!(delivered[0].output.as_deref(), Some("thanks for the 7"));
    assert_eq!(delivered[0].depth, 0);
    assert_eq!(
        delivered[0].actor.as_deref(),
        Some("key:key_test > agent:helper > agent:researcher"),
        "the result's run still answers to the key that started it all"
    );

    // A restart delivers nothing again.
    let rt2 = runtime(store.clone(), model.clone(), vec![]);
    crash(rt).await;
    assert_eq!(rt2.recover().await.expect("recover"), 0);
    let runs = store
        .list_runs(&fx.tenant, &fx.session)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 2, "{runs:?}");
}

async fn a_retried_hand_off_reports_its_new_result(db: Db) {
    let researcher_calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = researcher_calls.clone();
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(move |req| {
        if is_researcher(req) {
            // The first attempt fails; the retry digs it up.
            if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                return Answer::Fail(roster_models::ProviderError::BadRequest {
                    message: "no shovel".into(),
                });
            }
            return text("dug up 7");
        }
        coordinator_hands_off(req, "noted", "handed off")
    });
    let store = db.open().await;
    let (fx, _) = team(&store, &["agent:researcher"]).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let root = start(&rt, &fx, "get it dug").await;
    finished(&rt, &fx, &root.id, RunStatus::Completed).await;
    let task = children(&store, &fx, &root).await.remove(0);
    finished(&rt, &fx, &task.id, RunStatus::Failed).await;
    let results = |store: DynStore, fx_tenant, fx_session| async move {
        store
            .list_runs(&fx_tenant, &fx_session)
            .await
            .expect("runs")
            .into_iter()
            .filter(|r| r.input.starts_with("[hand-off result]"))
            .collect::<Vec<Run>>()
    };
    eventually("the failure's report", || {
        let (store, t, s) = (store.clone(), fx.tenant.clone(), fx.session.clone());
        async move { results(store, t, s).await.len() == 1 }
    })
    .await;
    rt.retry(&fx.tenant, &task.id, "key:key_test")
        .await
        .expect("retry");
    finished(&rt, &fx, &task.id, RunStatus::Completed).await;
    eventually("the retry's report", || {
        let (store, t, s) = (store.clone(), fx.tenant.clone(), fx.session.clone());
        async move { results(store, t, s).await.len() == 2 }
    })
    .await;
    let reports = results(store.clone(), fx.tenant.clone(), fx.session.clone()).await;
    assert!(
        reports[0].input.contains("no shovel"),
        "{:?}",
        reports[0].input
    );
    assert!(
        reports[1].input.contains("dug up 7"),
        "{:?}",
        reports[1].input
    );
    for report in &reports {
        finished(&rt, &fx, &report.id, RunStatus::Completed).await;
    }
}

async fn a_crash_while_the_child_runs_resumes_both_and_the_answer_arrives_once(db: Db) {
    let hanging = ScriptedModel::new(vec![calls(vec![call(
        "c1",
        "ask_researcher",
        r#"{"input":"find X"}"#,
    )])]);
    hanging.set_fallback(|_| Answer::Hang);
    let store = db.open().await;
    let (fx, _) = team(&store, &["agent:researcher"]).await;
    let rt = runtime(store.clone(), hanging.clone(), vec![]);
    let root = start(&rt, &fx, "what is X?").await;
    wait_until("the researcher is at its model", || {
        hanging.requests().iter().any(is_researcher)
    })
    .await;
    crash(rt).await;

    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|req| {
        if is_researcher(req) {
            text("X is 42")
        } else {
            text(&format!(
                "answer: {}",
                request_results(req)
                    .last()
                    .map(|r| r.1.clone())
                    .unwrap_or_default()
            ))
        }
    });
    let rt = runtime(store.clone(), model.clone(), vec![]);
    assert_eq!(rt.recover().await.expect("recover"), 2);
    let done = finished(&rt, &fx, &root.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("answer: X is 42"));
    let kids = children(&store, &fx, &root).await;
    assert_eq!(kids.len(), 1, "the retried call found its child: {kids:?}");
    assert_eq!(kids[0].status, RunStatus::Completed);
    // The coordinator's completed model call was not sent again; the
    // researcher's interrupted one was.
    let coordinator_calls = model
        .requests()
        .iter()
        .filter(|r| !is_researcher(r))
        .count();
    assert_eq!(coordinator_calls, 1);
}

async fn cancelling_the_parent_cancels_the_child(db: Db) {
    let model = ScriptedModel::new(vec![calls(vec![call(
        "c1",
        "ask_researcher",
        r#"{"input":"take forever"}"#,
    )])]);
    model.set_fallback(|_| Answer::Hang);
    let store = db.open().await;
    let (fx, _) = team(&store, &["agent:researcher"]).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let root = start(&rt, &fx, "go").await;
    wait_until("the researcher is at its model", || {
        model.requests().iter().any(is_researcher)
    })
    .await;
    let cancelled = rt.cancel(&fx.tenant, &root.id).await.expect("cancel");
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    let kids = children(&store, &fx, &root).await;
    assert_eq!(kids.len(), 1);
    let child = finished(&rt, &fx, &kids[0].id, RunStatus::Cancelled).await;
    assert_eq!(child.status, RunStatus::Cancelled);
    assert_history_closed(&contents(&store, &fx).await);
}

async fn an_unknown_callee_is_named_to_the_model(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call(
            "h1",
            "hand_off",
            r#"{"agent":"researcher","task":"x"}"#,
        )]),
        text("ok"),
    ]);
    let store = db.open().await;
    let (fx, researcher) = team(&store, &["agent:researcher"]).await;
    // The researcher is deleted after the coordinator was saved.
    store
        .delete_agent(&fx.tenant, &researcher.id, "test")
        .await
        .expect("delete");
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let root = start(&rt, &fx, "go").await;
    finished(&rt, &fx, &root.id, RunStatus::Completed).await;
    let results = request_results(&model.request(1));
    assert!(results[0].2, "{results:?}");
    assert!(results[0].1.contains("researcher"), "{results:?}");
    assert!(children(&store, &fx, &root).await.is_empty());
}
