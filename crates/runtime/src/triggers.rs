//! The front door for runs a trigger's delivery starts. The hook has no
//! API key: its signature proves the sender holds the trigger's secret, and
//! the run acts for the key that made the trigger (`key:… > trigger:trg_…`),
//! through the same checks as that key's own message. The store records
//! the delivery id with the run in one transaction.

use crate::error::RuntimeError;
use crate::scheduler::Runtime;
use roster_core::run::Run;
use roster_store::triggers::{Delivery, HookTarget};

impl Runtime {
    /// Starts the run of a verified delivery, or finds the one an earlier
    /// copy started (`true`). A refusal (key revoked, policy) is `Denied`.
    pub async fn deliver_hook(
        &self,
        target: &HookTarget,
        delivery_id: &str,
        input: String,
    ) -> Result<(Run, bool), RuntimeError> {
        self.inner.check_running()?;
        let trigger = &target.trigger;
        let chain = format!("key:{} > trigger:{}", target.key_id, trigger.id);
        let at = serde_json::json!({ "trigger": trigger.id, "delivery": delivery_id });
        let user = self
            .may_act_for(
                &target.tenant,
                &target.key_id,
                &trigger.agent_id,
                trigger.session_id.as_ref(),
                &chain,
                at,
            )
            .await?
            .map_err(|refusal| RuntimeError::Denied(refusal.reason))?;
        let (run, existed) = self
            .store()
            .deliver(
                &target.tenant,
                Delivery {
                    trigger: trigger.id.clone(),
                    delivery_id: delivery_id.to_owned(),
                    input,
                    actor: chain,
                    user,
                },
            )
            .await?;
        if !existed {
            self.inner.services.bus.open(&run.id);
            self.inner.kick(&target.tenant, &run.session_id);
        }
        Ok((run, existed))
    }
}
