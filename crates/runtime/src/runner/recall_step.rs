//! Long-term memory and knowledge in a run: the `memory_search`,
//! `memory_write` and `knowledge_search` tool steps, and the records and
//! passages recalled into the context at the start of a run.

use super::RunState;
use crate::context::{render_passages, render_records};
use crate::error::RuntimeError;
use crate::tools::recall::{normalise, KnowledgeArgs, RecallCall, SearchArgs, WriteArgs};
use roster_core::item::ToolCall;
use roster_core::knowledge::{KnowledgeSource, Passage};
use roster_core::machine::ToolOutcome;
use roster_core::record::{
    own_namespace, resolve_namespace, validate_content, MemoryRecord, NamespaceVars, Provenance,
};
use roster_core::MemoryId;
use roster_memory::{KnowledgeRequest, MemoryService, SearchRequest};
use roster_store::{MemoryOp, MemoryWrite};
use std::sync::Arc;

const DEFAULT_SEARCH_LIMIT: u32 = 5;
const MAX_SEARCH_LIMIT: u32 = 20;

impl RunState<'_> {
    fn namespace_vars(&self) -> NamespaceVars<'_> {
        NamespaceVars {
            agent: &self.agent.name,
            user: self.session.user.as_deref(),
            session: self.session.id.as_str(),
        }
    }

    /// The agent's memory namespaces for this session: where its writes go
    /// by default, then those it searches (each shared one after the
    /// user's own copy of it, see [`own_namespace`]). Templates naming a
    /// user the session does not have are left out.
    pub(super) fn memory_namespaces(&self) -> (Option<String>, Vec<String>) {
        let vars = self.namespace_vars();
        let settings = &self.agent.config.memory;
        let share = settings.share_user_memories;
        let default = resolve_namespace(&settings.namespace, &vars)
            .and_then(|ns| own_namespace(&ns, &vars, share));
        let mut search: Vec<String> = Vec::new();
        for shared in settings
            .search_namespaces()
            .into_iter()
            .filter_map(|t| resolve_namespace(t, &vars))
        {
            let own = own_namespace(&shared, &vars, share);
            for namespace in own.into_iter().chain([shared]) {
                if !search.contains(&namespace) {
                    search.push(namespace);
                }
            }
        }
        (default, search)
    }

    pub(super) async fn recall_step(
        &self,
        n: i64,
        call: &ToolCall,
        parsed: RecallCall,
    ) -> Result<ToolOutcome, RuntimeError> {
        let (output, is_error, writes) = match &self.services.memory {
            None => (
                "long-term memory is not available on this server".to_owned(),
                true,
                Vec::new(),
            ),
            Some(memory) => match parsed {
                RecallCall::Search(args) => {
                    let (output, is_error) = self.search(memory, args).await?;
                    (output, is_error, Vec::new())
                }
                RecallCall::Write(args) => self.plan_write(memory, args).await?,
                RecallCall::Knowledge(args) => {
                    let (output, is_error) = self.search_knowledge(memory, args).await?;
                    (output, is_error, Vec::new())
                }
                RecallCall::Conversation(args) => {
                    let limit = args
                        .limit
                        .unwrap_or(DEFAULT_SEARCH_LIMIT)
                        .clamp(1, MAX_SEARCH_LIMIT) as usize;
                    match memory
                        .search_conversation(self.tenant, &self.session.id, &args.query, limit)
                        .await
                    {
                        Ok(items) if items.is_empty() => (
                            "no earlier message matches that query".to_owned(),
                            false,
                            Vec::new(),
                        ),
                        Ok(items) => (render_items(&items), false, Vec::new()),
                        Err(roster_memory::MemoryError::Invalid(message)) => {
                            (message, true, Vec::new())
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "conversation search failed");
                            (
                                "conversation search failed; try again later".to_owned(),
                                true,
                                Vec::new(),
                            )
                        }
                    }
                }
            },
        };
        let outcome = ToolOutcome {
            call_id: call.id.clone(),
            name: call.name.clone(),
            output,
            is_error,
        };
        let log_id = self
            .commit_tool_result_with(n, call, &outcome, None, writes)
            .await?;
        if let Some(memory) = &self.services.memory {
            memory.wait_indexed(log_id).await;
        }
        Ok(outcome)
    }

    async fn search(
        &self,
        memory: &Arc<MemoryService>,
        args: SearchArgs,
    ) -> Result<(String, bool), RuntimeError> {
        let (_, readable) = self.memory_namespaces();
        let namespaces = match args.namespace {
            Some(ns) if readable.contains(&ns) => {
                if let Err(reason) = self
                    .may(
                        roster_policy::Action::ReadMemory,
                        roster_policy::Resource::Namespace { name: &ns },
                        &format!("namespace:{ns}"),
                    )
                    .await?
                {
                    return Ok((
                        format!("reading namespace `{ns}` is denied by policy: {reason}"),
                        true,
                    ));
                }
                vec![ns]
            }
            Some(ns) => {
                return Ok((
                    format!(
                        "namespace `{ns}` is not one of yours; you can search: {}",
                        readable.join(", ")
                    ),
                    true,
                ))
            }
            None => {
                let (allowed, refused) = self.readable(readable).await?;
                if allowed.is_empty() && !refused.is_empty() {
                    return Ok((
                        "policy denies reading every one of your memory namespaces".to_owned(),
                        true,
                    ));
                }
                allowed
            }
        };
        if namespaces.is_empty() {
            return Ok(("you have no memory namespace to search".to_owned(), true));
        }
        let limit = args
            .limit
            .unwrap_or(DEFAULT_SEARCH_LIMIT)
            .clamp(1, MAX_SEARCH_LIMIT);
        let request = SearchRequest {
            namespaces,
            query: args.query,
            limit: limit as usize,
        };
        match memory.search(self.tenant, &request).await {
            Ok(results) if results.data.is_empty() => {
                Ok(("no memory matches that query".to_owned(), false))
            }
            Ok(results) => {
                let records: Vec<&MemoryRecord> = results.data.iter().map(|h| &h.record).collect();
                Ok((render_records(&records), false))
            }
            Err(roster_memory::MemoryError::Invalid(message)) => Ok((message, true)),
            Err(e) => {
                tracing::warn!(error = %e, "memory search failed");
                Ok(("memory search failed; try again later".to_owned(), true))
            }
        }
    }

    /// Decides what a `memory_write` stores: nothing when the fact is
    /// already remembered word for word, else a new record.
    async fn plan_write(
        &self,
        memory: &Arc<MemoryService>,
        args: WriteArgs,
    ) -> Result<(String, bool, Vec<MemoryWrite>), RuntimeError> {
        if let Err(e) = validate_content(&args.content) {
            return Ok((e.to_string(), true, Vec::new()));
        }
        let (default, readable) = self.memory_namespaces();
        let namespace = match args.namespace {
            Some(ns) if Some(&ns) == default.as_ref() || readable.contains(&ns) => {
                let share = self.agent.config.memory.share_user_memories;
                match own_namespace(&ns, &self.namespace_vars(), share) {
                    Some(own) => own,
                    None => {
                        return Ok((
                            format!("namespace `{ns}` is too long to keep a copy per user; name a shorter one"),
                            true,
                            Vec::new(),
                        ))
                    }
                }
            }
            Some(ns) => {
                let mut yours: Vec<String> = default.into_iter().collect();
                yours.extend(readable.into_iter().filter(|n| !yours.contains(n)).collect::<Vec<_>>());
                return Ok((
                    format!(
                        "namespace `{ns}` is not one of yours; you can write to: {}",
                        yours.join(", ")
                    ),
                    true,
                    Vec::new(),
                ));
            }
            None => match default {
                Some(ns) => ns,
                None => {
                    return Ok((
                        "your default memory namespace needs a user and this session has none; name a namespace".to_owned(),
                        true,
                        Vec::new(),
                    ))
                }
            },
        };
        if let Err(reason) = self
            .may(
                roster_policy::Action::WriteMemory,
                roster_policy::Resource::Namespace { name: &namespace },
                &format!("namespace:{namespace}"),
            )
            .await?
        {
            return Ok((
                format!("writing to namespace `{namespace}` is denied by policy: {reason}"),
                true,
                Vec::new(),
            ));
        }
        let request = SearchRequest {
            namespaces: vec![namespace.clone()],
            query: args.content.clone(),
            limit: 5,
        };
        if let Ok(found) = memory.search(self.tenant, &request).await {
            let wanted = normalise(&args.content);
            if let Some(hit) = found
                .data
                .iter()
                .find(|h| normalise(&h.record.content) == wanted)
            {
                return Ok((
                    format!("already remembered as {}", hit.record.id),
                    false,
                    Vec::new(),
                ));
            }
        }
        let id = MemoryId::generate();
        let embedding = memory.embed_one(&args.content).await;
        let write = MemoryWrite {
            op: MemoryOp::Create {
                id: id.clone(),
                namespace: namespace.clone(),
                kind: "fact".into(),
                key: None,
                content: args.content,
                metadata: serde_json::json!({}),
                source: Some(Provenance {
                    agent_id: Some(self.agent.id.clone()),
                    session_id: Some(self.session.id.clone()),
                    run_id: Some(self.run.id.clone()),
                    from_seq: None,
                    to_seq: None,
                }),
                expires_at: None,
                embedding,
            },
            principal: format!("agent:{}", self.agent.id),
            run_id: Some(self.run.id.clone()),
        };
        Ok((
            format!("remembered as {id} in {namespace}"),
            false,
            vec![write],
        ))
    }

    /// The agent's knowledge sources that still exist and the tenant's
    /// policies let it read (`read_source`), in its order; the refused ones
    /// with why.
    async fn knowledge_sources(
        &self,
    ) -> Result<(Vec<KnowledgeSource>, Vec<(String, String)>), RuntimeError> {
        let mut sources = Vec::with_capacity(self.agent.config.knowledge.len());
        let mut refused = Vec::new();
        for name in &self.agent.config.knowledge {
            if let Some(source) = self.services.store.get_source(self.tenant, name).await? {
                match self
                    .may(
                        roster_policy::Action::ReadSource,
                        roster_policy::Resource::Source {
                            name,
                            kind: "knowledge",
                        },
                        &format!("source:{name}"),
                    )
                    .await?
                {
                    Ok(()) => sources.push(source),
                    Err(reason) => refused.push((name.clone(), reason)),
                }
            }
        }
        Ok((sources, refused))
    }

    /// The namespaces the agent may read (`read_memory`) of `namespaces`;
    /// the refused ones with why.
    async fn readable(
        &self,
        namespaces: Vec<String>,
    ) -> Result<(Vec<String>, Vec<(String, String)>), RuntimeError> {
        let mut allowed = Vec::with_capacity(namespaces.len());
        let mut refused = Vec::new();
        for namespace in namespaces {
            match self
                .may(
                    roster_policy::Action::ReadMemory,
                    roster_policy::Resource::Namespace { name: &namespace },
                    &format!("namespace:{namespace}"),
                )
                .await?
            {
                Ok(()) => allowed.push(namespace),
                Err(reason) => refused.push((namespace, reason)),
            }
        }
        Ok((allowed, refused))
    }

    /// Puts an action of the agent on a source or namespace to the policies.
    pub(super) async fn may(
        &self,
        action: roster_policy::Action,
        resource: roster_policy::Resource<'_>,
        label: &str,
    ) -> Result<Result<(), String>, RuntimeError> {
        let (actor, user) = self.actor_and_user();
        let chain = format!("{actor} > agent:{}", self.agent.name);
        self.services
            .governance
            .permits(
                self.tenant,
                action,
                resource,
                label,
                crate::governance::Caller {
                    agent: &self.agent.name,
                    user: &user,
                    actor: &chain,
                    at: serde_json::json!({ "run": self.run.id }),
                },
            )
            .await
    }

    async fn search_knowledge(
        &self,
        memory: &Arc<MemoryService>,
        args: KnowledgeArgs,
    ) -> Result<(String, bool), RuntimeError> {
        let (mut sources, refused) = self.knowledge_sources().await?;
        if let Some(name) = &args.source {
            if let Some((_, reason)) = refused.iter().find(|(n, _)| n == name) {
                return Ok((
                    format!("reading knowledge source `{name}` is denied by policy: {reason}"),
                    true,
                ));
            }
            sources.retain(|s| &s.name == name);
            if sources.is_empty() {
                return Ok((
                    format!(
                        "`{name}` is not one of your knowledge sources; yours: {}",
                        self.agent.config.knowledge.join(", ")
                    ),
                    true,
                ));
            }
        }
        if sources.is_empty() {
            if !refused.is_empty() {
                return Ok((
                    "policy denies reading every one of your knowledge sources".to_owned(),
                    true,
                ));
            }
            return Ok(("you have no knowledge sources to search".to_owned(), true));
        }
        let request = KnowledgeRequest {
            sources,
            query: args.query,
            limit: args
                .limit
                .unwrap_or(DEFAULT_SEARCH_LIMIT)
                .clamp(1, MAX_SEARCH_LIMIT) as usize,
        };
        match memory.search_knowledge(self.tenant, &request).await {
            Ok(results) if results.data.is_empty() => {
                Ok(("no passage matches that query".to_owned(), false))
            }
            Ok(results) => {
                let passages: Vec<&Passage> = results.data.iter().map(|h| &h.passage).collect();
                Ok((render_passages(&passages), false))
            }
            Err(roster_memory::MemoryError::Invalid(message)) => Ok((message, true)),
            Err(e) => {
                tracing::warn!(error = %e, "knowledge search failed");
                Ok(("knowledge search failed; try again later".to_owned(), true))
            }
        }
    }

    /// Passages recalled for this run's input from the agent's sources,
    /// read once per run.
    pub(super) async fn recalled_passages(&mut self) -> Vec<Passage> {
        if let Some(passages) = &self.passages {
            return passages.clone();
        }
        let limit = self.agent.config.knowledge_recall;
        let mut found = Vec::new();
        // A run whose input holds no words (only a client tool's result)
        // has nothing to recall by.
        let limit = if self.run.input.trim().is_empty() {
            0
        } else {
            limit
        };
        if let (Some(memory), 1..) = (self.services.memory.clone(), limit) {
            match self.knowledge_sources().await {
                Ok((sources, _)) if !sources.is_empty() => {
                    let request = KnowledgeRequest {
                        sources,
                        query: self.run.input.clone(),
                        limit: limit as usize,
                    };
                    match memory.search_knowledge(self.tenant, &request).await {
                        Ok(results) => {
                            found = results.data.into_iter().map(|h| h.passage).collect()
                        }
                        Err(e) => {
                            tracing::warn!(run = %self.run.id, error = %e, "knowledge recall failed; the run goes on without it")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(run = %self.run.id, error = %e, "knowledge recall failed; the run goes on without it")
                }
            }
        }
        self.passages = Some(found.clone());
        found
    }

    /// Records recalled for this run's input, read once per run.
    pub(super) async fn recalled(&mut self) -> Vec<MemoryRecord> {
        if let Some(recalled) = &self.recalled {
            return recalled.clone();
        }
        let limit = self.agent.config.memory.recall;
        let limit = if self.run.input.trim().is_empty() {
            0
        } else {
            limit
        };
        let found = match (&self.services.memory, limit) {
            (Some(memory), 1..) => {
                let (_, namespaces) = self.memory_namespaces();
                let namespaces = match self.readable(namespaces).await {
                    Ok((allowed, _)) => allowed,
                    Err(e) => {
                        tracing::warn!(run = %self.run.id, error = %e, "cannot check memory policies; nothing is recalled");
                        Vec::new()
                    }
                };
                if namespaces.is_empty() {
                    Vec::new()
                } else {
                    let request = SearchRequest {
                        namespaces,
                        query: self.run.input.clone(),
                        limit: limit as usize,
                    };
                    match memory.search(self.tenant, &request).await {
                        Ok(results) => results.data.into_iter().map(|h| h.record).collect(),
                        Err(e) => {
                            tracing::warn!(run = %self.run.id, error = %e, "recall failed; the run goes on without it");
                            Vec::new()
                        }
                    }
                }
            }
            _ => Vec::new(),
        };
        self.recalled = Some(found.clone());
        found
    }
}

/// Earlier messages as the model reads them: `#seq role: text`, each cut
/// to a readable length.
fn render_items(items: &[roster_core::item::Item]) -> String {
    use roster_core::item::ItemContent;
    const MAX: usize = 600;
    let cut = |text: &str| -> String {
        if text.len() <= MAX {
            return text.to_owned();
        }
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    };
    items
        .iter()
        .map(|item| {
            let (role, text) = match &item.content {
                ItemContent::UserMessage { text } => ("user", text.clone()),
                ItemContent::SystemNote { text } => ("note", text.clone()),
                ItemContent::AssistantMessage { text, tool_calls } => (
                    "assistant",
                    if tool_calls.is_empty() {
                        text.clone()
                    } else {
                        let names: Vec<&str> = tool_calls.iter().map(|c| c.name.as_str()).collect();
                        format!("{text} [called {}]", names.join(", "))
                    },
                ),
                ItemContent::ToolResult { name, output, .. } => {
                    ("tool", format!("{name}: {output}"))
                }
                ItemContent::Opaque { .. } => {
                    ("other", "(an item the model does not read)".to_owned())
                }
            };
            format!(
                "#{} {} ({}): {}",
                item.seq,
                role,
                item.created_at.format("%Y-%m-%d %H:%M"),
                cut(text.trim())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
