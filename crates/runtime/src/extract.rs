//! Memory extraction: after a run completes, each of its agent's strategies
//! (semantic facts, preferences, a session summary) reads the run's items
//! and the related memories already stored, and asks a model what to add or
//! correct. It runs in the background, never delaying the user's turn.
//!
//! Durability follows the journal's rules: the job is created in the
//! transaction that completes the run; the model's reply is journaled
//! before it is applied (a crash after it never re-sends the call); the
//! memory writes land in the transaction that completes the job (never
//! half-applied, never twice). A fact that repeats or contradicts a stored
//! one updates it — the old text stays in its history — instead of piling up.

use crate::runner::transcript;
use crate::scheduler::Scheduler;
use crate::tools::recall::normalise;
use roster_core::agent::{Agent, StrategyConfig, StrategyKind};
use roster_core::record::{
    own_namespace, resolve_namespace, validate_content, MemoryRecord, NamespaceVars, Provenance,
};
use roster_core::route::ModelRoute;
use roster_core::MemoryId;
use roster_memory::{MemoryService, SearchRequest};
use roster_models::{ChatMessage, ChatRequest};
use roster_store::{MemoryJob, MemoryOp, MemoryWrite, StoreError};
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Tries of a job's model call before it ends `failed`.
const MAX_ATTEMPTS: i64 = 3;
/// Most items of a run one job reads.
const MAX_ITEMS: i64 = 200;
/// Jobs taken per look at the queue.
const BATCH: i64 = 16;

const FORMAT: &str = "Reply with JSON only, no prose: {\"memories\": [{\"op\": \"add\", \"content\": \"...\"}, {\"op\": \"update\", \"id\": \"mem_...\", \"content\": \"...\"}]}. Use \"update\" when something in the conversation repeats, refines or contradicts a stored memory listed below: give that memory's id and its full corrected text. Use \"add\" only for what is not stored yet. Each content is one self-contained sentence naming who or what it is about. Reply {\"memories\": []} when nothing is worth keeping.";

const SUMMARY_FORMAT: &str = "Reply with JSON only, no prose: {\"summary\": \"...\"}.";

fn instructions(kind: StrategyKind) -> &'static str {
    match kind {
        StrategyKind::Semantic => "You extract durable facts worth remembering from a conversation between a user and an AI assistant: facts about the user, their work and organisation, decisions made and commitments given. Ignore small talk and what only matters in the moment.",
        StrategyKind::Preferences => "You extract the user's preferences from a conversation between a user and an AI assistant: what they like or dislike, and how they want things done, answered or addressed.",
        StrategyKind::Summary => "You keep a summary of a conversation between a user and an AI assistant for future reference: the user's goals, what was done and decided, and what is still open. Merge the existing summary (if any) with the new part of the conversation.",
    }
}

#[derive(Deserialize)]
struct Ops {
    #[serde(default)]
    memories: Vec<Op>,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
struct Op {
    op: String,
    #[serde(default)]
    id: Option<String>,
    content: String,
}

impl Scheduler {
    /// Makes sure the extraction worker runs: it drains the queue of jobs
    /// and exits; a kick while it runs makes it look once more.
    pub(crate) fn kick_extraction(self: &Arc<Self>) {
        let Some(memory) = self.services.memory.clone() else {
            return;
        };
        self.extraction_wakeups.fetch_add(1, Ordering::SeqCst);
        if self.extracting.swap(true, Ordering::SeqCst) || self.halt.is_cancelled() {
            return;
        }
        let inner = self.clone();
        let halt = self.halt.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = halt.cancelled() => {}
                () = inner.clone().extract_all(memory) => {}
            }
            inner.extracting.store(false, Ordering::SeqCst);
        });
    }

    async fn extract_all(self: Arc<Self>, memory: Arc<MemoryService>) {
        let mut failures = 0u32;
        loop {
            let seen = self.extraction_wakeups.load(Ordering::SeqCst);
            match self.services.store.queued_memory_jobs(BATCH).await {
                Ok(jobs) if jobs.is_empty() => {
                    if self.extraction_wakeups.load(Ordering::SeqCst) == seen {
                        return;
                    }
                }
                Ok(jobs) => {
                    failures = 0;
                    for job in jobs {
                        if let Err(e) = self.extract(&memory, &job).await {
                            tracing::warn!(job = %job.id, error = %e, "memory extraction failed; it is retried");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "cannot read the extraction queue");
                    let delay = Duration::from_millis(200 * 2u64.pow(failures.min(8)));
                    tokio::time::sleep(delay.min(Duration::from_secs(30))).await;
                }
            }
        }
    }

    async fn extract(&self, memory: &MemoryService, job: &MemoryJob) -> Result<(), StoreError> {
        let Some(tenant) = job.tenant.clone() else {
            return Ok(());
        };
        let give_up = |error: String| {
            let store = self.services.store.clone();
            let (tenant, id) = (tenant.clone(), job.id.clone());
            async move {
                store
                    .fail_job_attempt(&tenant, &id, &error, true, Vec::new())
                    .await
            }
        };
        let Some(agent) = self
            .services
            .store
            .get_agent_version(&tenant, &job.agent_id, job.agent_version)
            .await?
        else {
            return give_up("the agent version no longer exists".into()).await;
        };
        let Some(strategy) = usize::try_from(job.strategy)
            .ok()
            .and_then(|i| agent.config.memory.strategies.get(i))
            .cloned()
        else {
            return give_up("the agent version has no such strategy".into()).await;
        };
        let user = self
            .services
            .store
            .get_session(&tenant, &job.session_id)
            .await?
            .and_then(|s| s.user);
        let vars = NamespaceVars {
            agent: &agent.name,
            user: user.as_deref(),
            session: job.session_id.as_str(),
        };
        let template = strategy
            .namespace
            .as_deref()
            .unwrap_or(&agent.config.memory.namespace);
        let Some(shared) = resolve_namespace(template, &vars) else {
            return give_up(format!(
                "namespace `{template}` needs a user and the session has none"
            ))
            .await;
        };
        let share = agent.config.memory.share_user_memories;
        let Some(namespace) = own_namespace(&shared, &vars, share) else {
            return give_up(format!(
                "namespace `{shared}` is too long to keep a copy per user"
            ))
            .await;
        };
        let allowed = self
            .services
            .governance
            .permits(
                &tenant,
                roster_policy::Action::WriteMemory,
                roster_policy::Resource::Namespace { name: &namespace },
                &format!("namespace:{namespace}"),
                crate::governance::Caller {
                    agent: &agent.name,
                    user: user.as_deref().unwrap_or(""),
                    actor: &format!("system:extraction > agent:{}", agent.name),
                    at: json!({ "job": job.id, "run": job.run_id }),
                },
            )
            .await
            .map_err(|e| match e {
                crate::error::RuntimeError::Store(e) => e,
                other => StoreError::Database(other.to_string()),
            })?;
        if let Err(reason) = allowed {
            return give_up(format!(
                "writing to namespace `{namespace}` is denied by policy: {reason}"
            ))
            .await;
        }
        let items = self
            .services
            .store
            .list_items(
                &tenant,
                &job.session_id,
                job.from_seq - 1,
                (job.to_seq - job.from_seq + 1).clamp(1, MAX_ITEMS),
            )
            .await?;
        let conversation = transcript(&items, crate::runner::item_cap(agent.config.context_tokens));
        let key =
            (strategy.kind == StrategyKind::Summary).then(|| format!("session:{}", job.session_id));
        let existing = self
            .related(memory, &tenant, &namespace, &conversation, key.as_deref())
            .await?;
        let output = match &job.output {
            Some(output) => output.clone(),
            None => {
                let Some(output) = self
                    .ask(&agent, &strategy, job, &tenant, &existing, &conversation)
                    .await?
                else {
                    return Ok(());
                };
                output
            }
        };
        let text = output["text"].as_str().unwrap_or_default();
        let ops = match parse_ops(text) {
            Some(ops) => ops,
            None => {
                return give_up(format!(
                    "the model's reply is not the JSON asked for: {}",
                    text.chars().take(200).collect::<String>()
                ))
                .await
            }
        };
        let provenance = Provenance {
            agent_id: Some(agent.id.clone()),
            session_id: Some(job.session_id.clone()),
            run_id: Some(job.run_id.clone()),
            from_seq: Some(job.from_seq),
            to_seq: Some(job.to_seq),
        };
        let mut writes = Vec::new();
        for op in plan(&strategy, ops, &existing) {
            let embedding = memory.embed_one(&op.content).await;
            let op = match op.update {
                Some(id) => MemoryOp::Update {
                    id,
                    expected_version: None,
                    content: Some(op.content),
                    metadata: None,
                    expires_at: None,
                    source: Some(provenance.clone()),
                    embedding,
                },
                None => MemoryOp::Create {
                    id: MemoryId::generate(),
                    namespace: namespace.clone(),
                    kind: strategy.kind.record_kind().to_owned(),
                    key: key.clone(),
                    content: op.content,
                    metadata: json!({ "strategy": strategy.kind.as_str() }),
                    source: Some(provenance.clone()),
                    expires_at: None,
                    embedding,
                },
            };
            writes.push(MemoryWrite {
                op,
                principal: format!("agent:{}", agent.id),
                run_id: Some(job.run_id.clone()),
            });
        }
        match self
            .services
            .store
            .finish_memory_job(&tenant, &job.id, writes)
            .await
        {
            Ok(written) => {
                memory.wait_indexed(written.log_id).await;
                Ok(())
            }
            // Another worker finished it meanwhile.
            Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Memories of the namespace related to the conversation (and, for a
    /// summary, the session's summary record), so the model can update
    /// rather than repeat them.
    async fn related(
        &self,
        memory: &MemoryService,
        tenant: &roster_core::TenantId,
        namespace: &str,
        conversation: &str,
        key: Option<&str>,
    ) -> Result<Vec<MemoryRecord>, StoreError> {
        if let Some(key) = key {
            let query = roster_store::MemoryQuery {
                namespace: Some(namespace.to_owned()),
                kind: Some("summary".into()),
                limit: 1000,
                ..Default::default()
            };
            let all = self.services.store.list_memories(tenant, &query).await?;
            return Ok(all
                .into_iter()
                .filter(|r| r.key.as_deref() == Some(key))
                .collect());
        }
        // The newest memories of the namespace, and those the conversation's
        // words find: what the model may need to update rather than repeat.
        let newest = roster_store::MemoryQuery {
            namespace: Some(namespace.to_owned()),
            limit: 20,
            newest_first: true,
            ..Default::default()
        };
        let mut related = self.services.store.list_memories(tenant, &newest).await?;
        let query: String = conversation.chars().take(2_000).collect();
        if !query.trim().is_empty() {
            let request = SearchRequest {
                namespaces: vec![namespace.to_owned()],
                query,
                limit: 20,
            };
            match memory.search(tenant, &request).await {
                Ok(found) => {
                    for hit in found.data {
                        if !related.iter().any(|r| r.id == hit.record.id) {
                            related.push(hit.record);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "searching related memories failed; extracting without them")
                }
            }
        }
        Ok(related)
    }

    /// The model call, journaled with the job; `None` when it failed (the
    /// failure is journaled and the job retried or given up).
    async fn ask(
        &self,
        agent: &Agent,
        strategy: &StrategyConfig,
        job: &MemoryJob,
        tenant: &roster_core::TenantId,
        existing: &[MemoryRecord],
        conversation: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let route = match &strategy.model {
            Some(model) => ModelRoute::parse(model, &[]),
            None => agent.config.route(),
        };
        let route = match route {
            Ok(route) => route,
            Err(e) => {
                self.services
                    .store
                    .fail_job_attempt(tenant, &job.id, &e.to_string(), true, Vec::new())
                    .await?;
                return Ok(None);
            }
        };
        let stored = if existing.is_empty() {
            "(none)".to_owned()
        } else {
            existing
                .iter()
                .map(|r| format!("- [{}] {}", r.id, r.content))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let format = if strategy.kind == StrategyKind::Summary {
            SUMMARY_FORMAT
        } else {
            FORMAT
        };
        let request = ChatRequest {
            tool_choice: Default::default(),
            model: String::new(),
            system: format!(
                "{}\n\n{format}",
                strategy
                    .prompt
                    .as_deref()
                    .unwrap_or(instructions(strategy.kind))
            ),
            messages: vec![ChatMessage::User {
                text: format!("Stored memories:\n{stored}\n\nConversation:\n{conversation}"),
            }],
            tools: Vec::new(),
            max_tokens: Some(1_024),
            stream: false,
        };
        let model = crate::model_call::ModelCall {
            governance: &self.services.governance,
            router: &self.services.router,
        };
        let actor = format!("system:extraction > agent:{}", agent.name);
        let call = crate::model_call::CallFor {
            tenant,
            agent_id: &agent.id,
            agent: &agent.name,
            user: "",
            actor: &actor,
            at: json!({ "job": job.id, "run": job.run_id }),
            session_id: Some(job.session_id.to_string()),
            run_id: Some(job.run_id.to_string()),
            step: None,
        };
        let as_store = |e: crate::error::RuntimeError| match e {
            crate::error::RuntimeError::Store(e) => e,
            other => StoreError::Database(other.to_string()),
        };
        let admitted = match model.admit(&route, &call).await.map_err(as_store)? {
            crate::model_call::Admission::Admitted(admitted) => admitted,
            crate::model_call::Admission::Refused {
                message, ledger, ..
            } => {
                self.services
                    .store
                    .fail_job_attempt(tenant, &job.id, &message, true, ledger)
                    .await?;
                return Ok(None);
            }
        };
        // Not cut short by shutdown: a job's call runs to its answer (a
        // crash instead leaves the job to be claimed again at the start).
        let uncancelled = tokio_util::sync::CancellationToken::new();
        let sent = model.send(admitted, request, &call, &uncancelled).await;
        let ledger = sent.ledger;
        let Some(result) = sent.answer else {
            return Ok(None);
        };
        match result {
            Ok((response, target)) => {
                let output = json!({ "text": response.text, "route": target.to_string() });
                self.services
                    .store
                    .record_job_output(tenant, &job.id, output.clone(), ledger)
                    .await?;
                Ok(Some(output))
            }
            Err(e) => {
                let give_up = job.attempts + 1 >= MAX_ATTEMPTS;
                self.services
                    .store
                    .fail_job_attempt(tenant, &job.id, &e.to_string(), give_up, ledger)
                    .await?;
                if !give_up {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Ok(None)
            }
        }
    }
}

/// A memory to store: new, or a new version of `update`.
struct Planned {
    update: Option<MemoryId>,
    content: String,
}

/// The model's operations, checked: updates only of memories it was shown,
/// adds that merely repeat a stored or an earlier memory dropped, invalid
/// text dropped.
fn plan(strategy: &StrategyConfig, ops: Ops, existing: &[MemoryRecord]) -> Vec<Planned> {
    if strategy.kind == StrategyKind::Summary {
        let Some(summary) = ops.summary.filter(|s| validate_content(s).is_ok()) else {
            return Vec::new();
        };
        // Written with the session's key: its summary record gets a new version.
        return vec![Planned {
            update: None,
            content: summary,
        }];
    }
    let mut seen: Vec<String> = existing.iter().map(|r| normalise(&r.content)).collect();
    let mut out = Vec::new();
    for op in ops.memories {
        if validate_content(&op.content).is_err() {
            continue;
        }
        let normalised = normalise(&op.content);
        let target = op
            .id
            .as_deref()
            .and_then(|id| existing.iter().find(|r| r.id.as_str() == id));
        match (op.op.as_str(), target) {
            ("update", Some(record)) => {
                if normalise(&record.content) != normalised {
                    seen.push(normalised);
                    out.push(Planned {
                        update: Some(record.id.clone()),
                        content: op.content,
                    });
                }
            }
            _ => {
                if !seen.contains(&normalised) {
                    seen.push(normalised);
                    out.push(Planned {
                        update: None,
                        content: op.content,
                    });
                }
            }
        }
    }
    out
}

/// The JSON the model was asked for, found even inside a code fence.
fn parse_ops(text: &str) -> Option<Ops> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    serde_json::from_str(text.get(start..=end)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &MemoryId, content: &str) -> MemoryRecord {
        MemoryRecord {
            id: id.clone(),
            namespace: "n".into(),
            content: content.into(),
            kind: "fact".into(),
            key: None,
            metadata: json!({}),
            source: None,
            version: 1,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            expires_at: None,
        }
    }

    #[test]
    fn repeats_are_dropped_and_updates_need_a_shown_memory() {
        let tea = MemoryId::generate();
        let existing = vec![record(&tea, "Ada likes tea")];
        let strategy = StrategyConfig {
            kind: StrategyKind::Semantic,
            model: None,
            prompt: None,
            namespace: None,
        };
        let text = format!(
            r#"```json
{{"memories": [
  {{"op": "add", "content": "ada likes tea."}},
  {{"op": "add", "content": "Ada lives in Lyon"}},
  {{"op": "add", "content": "Ada lives in Lyon"}},
  {{"op": "update", "id": "{tea}", "content": "Ada now prefers coffee"}},
  {{"op": "update", "id": "mem_unknown", "content": "Ada has a cat"}},
  {{"op": "add", "content": "   "}}
]}}
```"#
        );
        let ops = parse_ops(&text).expect("parsed");
        let planned = plan(&strategy, ops, &existing);
        let summary: Vec<(bool, &str)> = planned
            .iter()
            .map(|p| (p.update.is_some(), p.content.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (false, "Ada lives in Lyon"),
                (true, "Ada now prefers coffee"),
                (false, "Ada has a cat"),
            ]
        );
        assert!(parse_ops("no json here").is_none());
    }
}
