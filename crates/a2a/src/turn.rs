//! One call at a time per (remote, session): a conversation's contextId is
//! read before a call and written after it, so two calls of one session
//! to one remote (a model may ask for both in one reply) take turns —
//! otherwise both would start a conversation and one would be lost. Calls
//! of other sessions, or to other remotes, never wait.

use roster_core::SessionId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Key = (String, SessionId);

#[derive(Default)]
pub(crate) struct Turns {
    held: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// A session's turn with a remote; the next call waits until it is dropped.
pub(crate) struct Turn<'a> {
    turns: &'a Turns,
    key: Key,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Turns {
    pub(crate) async fn take(&self, remote: &str, session: &SessionId) -> Turn<'_> {
        let key = (remote.to_owned(), session.clone());
        let lock = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        Turn {
            turns: self,
            key,
            _guard: lock.lock_owned().await,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        // The map and this guard hold the lock's only references when no
        // one waits: then the entry goes, so the map does not grow with
        // every session that ever called.
        let mut held = self.turns.held.lock().unwrap_or_else(|p| p.into_inner());
        if held
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 2)
        {
            held.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_session_takes_turns_and_others_do_not_wait() {
        let turns = Arc::new(Turns::default());
        let session = SessionId::generate();
        let first = turns.take("r1", &session).await;
        // Another session, another remote: at once.
        let other = tokio::time::timeout(
            Duration::from_millis(100),
            turns.take("r1", &SessionId::generate()),
        )
        .await
        .expect("not blocked");
        drop(other);
        let elsewhere =
            tokio::time::timeout(Duration::from_millis(100), turns.take("r2", &session))
                .await
                .expect("not blocked");
        drop(elsewhere);
        // The same session and remote waits for the first turn.
        let waiting = {
            let turns = turns.clone();
            let session = session.clone();
            tokio::spawn(async move {
                let _turn = turns.take("r1", &session).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second call waits");
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("its turn came")
            .expect("task");
        assert_eq!(turns.len(), 0, "no entry is left behind");
    }
}
