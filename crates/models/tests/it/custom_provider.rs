//! An in-process provider implementing `ModelProvider` outside this crate, as
//! the runtime's test and bench providers do: shows the trait's exact
//! signature and that the router's own policy governs such providers.

use roster_core::route::ModelRoute;
use roster_models::{
    ChatRequest, ChatResponse, ModelProvider, ProviderError, ProviderRegistry, RetryPolicy, Router,
    Usage,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Fails `failures` times with a transient error, then echoes the last user
/// message in two streamed pieces.
struct Flaky {
    failures: u32,
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl ModelProvider for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(ProviderError::Transient {
                message: "flaky".into(),
            });
        }
        let text = format!("model {} says hi", req.model);
        if req.stream {
            let (head, tail) = text.split_at(5);
            let tail = String::from(tail); // a local, borrowed only for the call
            on_text(head);
            on_text(&tail);
        }
        Ok(ChatResponse {
            text,
            usage: Usage {
                input_tokens: 1,
                output_tokens: 2,
            },
            ..ChatResponse::default()
        })
    }
}

#[tokio::test]
async fn router_drives_an_in_process_provider_with_its_policy() {
    let provider = Arc::new(Flaky {
        failures: 3,
        calls: AtomicU32::new(0),
    });
    let mut registry = ProviderRegistry::new();
    registry.insert(provider.clone());
    assert_eq!(registry.names(), ["flaky"]);
    let policy = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        patience: Duration::ZERO,
    };
    let router = Router::new(Arc::new(registry), policy);
    let seen = Mutex::new(String::new());
    let attempts = AtomicU32::new(0);
    let req = ChatRequest {
        stream: true,
        ..ChatRequest::default()
    };
    let route = ModelRoute::parse("flaky/echo-1", &[]).expect("route");
    let (response, target) = router
        .chat(
            &route,
            req,
            &|t: &str| seen.lock().expect("lock").push_str(t),
            &|_| {
                attempts.fetch_add(1, Ordering::SeqCst);
            },
        )
        .await
        .expect("fourth attempt succeeds");
    assert_eq!(response.text, "model echo-1 says hi");
    assert_eq!(seen.lock().expect("lock").as_str(), response.text);
    assert_eq!(target.model, "echo-1");
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 4);
}
