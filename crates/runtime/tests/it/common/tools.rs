//! External tools for tests: one that counts its executions and can block
//! until dropped, and one that meets its siblings at a barrier.

use async_trait::async_trait;
use roster_runtime::tools::{Tool, ToolCallContext, ToolOutput};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Barrier};

/// Counts its executions (its "side effect") and, while held, does not
/// return once entered: until released, a crash or a cancel is the only way
/// out.
pub struct ProbeTool {
    name: String,
    idempotent: bool,
    pub executions: Arc<AtomicUsize>,
    hold: watch::Sender<bool>,
}

impl ProbeTool {
    pub fn new(name: &str, idempotent: bool) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            idempotent,
            executions: Arc::new(AtomicUsize::new(0)),
            hold: watch::Sender::new(false),
        })
    }

    /// Like [`ProbeTool::new`], but blocks once entered.
    pub fn blocking(name: &str, idempotent: bool) -> Arc<Self> {
        let tool = Self::new(name, idempotent);
        tool.hold.send_replace(true);
        tool
    }

    pub fn executions(&self) -> usize {
        self.executions.load(Ordering::SeqCst)
    }

    /// Lets held calls (and later ones) finish.
    pub fn release(&self) {
        self.hold.send_replace(false);
    }
}

#[async_trait]
impl Tool for ProbeTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "Does something with a side effect."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object", "properties": {"x": {"type": "string"}}})
    }

    fn idempotent(&self) -> bool {
        self.idempotent
    }

    async fn call(&self, _ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput {
        self.executions.fetch_add(1, Ordering::SeqCst);
        let mut hold = self.hold.subscribe();
        let _ = hold.wait_for(|held| !*held).await;
        ToolOutput::ok(format!("{} did {arguments}", self.name))
    }
}

/// Waits at a shared barrier: two calls of it complete only if they run at
/// the same time.
pub struct BarrierTool {
    pub barrier: Arc<Barrier>,
}

#[async_trait]
impl Tool for BarrierTool {
    fn name(&self) -> &str {
        "meet"
    }

    fn description(&self) -> &str {
        "Waits for its sibling call."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }

    async fn call(&self, _ctx: &ToolCallContext, _arguments: serde_json::Value) -> ToolOutput {
        self.barrier.wait().await;
        ToolOutput::ok("met")
    }
}
