//! The executor: hands shared store code a [`Conn`] on the right backend.
//!
//! SQLite writes run on the group-commit writer thread and reads on a pooled
//! read-only connection, exactly as before; the shared code is an `async fn`
//! that never waits on SQLite (rusqlite is synchronous), so it is polled
//! once, in place, with a no-op waker. PostgreSQL reads run on a pooled
//! connection and writes in one transaction that commits only if the whole
//! write succeeded.

use super::conn::Conn;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use roster_store::{StoreError, StoreResult};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Store code to run on a connection: `|c| Box::pin(async move { … })`.
pub trait Work<R>:
    for<'c, 'd> FnOnce(&'c mut Conn<'d>) -> BoxFuture<'c, StoreResult<R>> + Send + 'static
{
}

impl<R, F> Work<R> for F where
    F: for<'c, 'd> FnOnce(&'c mut Conn<'d>) -> BoxFuture<'c, StoreResult<R>> + Send + 'static
{
}

pub enum Db {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
    /// A real backend that fails on demand (see [`Faults`]).
    Faulty(Box<Db>, Arc<Faults>),
}

impl Db {
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
            Db::Faulty(inner, _) => inner.backend(),
        }
    }

    /// Runs `work` on a read connection. `op` names the store method, for
    /// fault injection.
    pub fn read<R: Send + 'static>(
        &self,
        op: &'static str,
        work: impl Work<R>,
    ) -> BoxFuture<'_, StoreResult<R>> {
        match self {
            Db::Sqlite(store) => {
                let result = store.read_now(move |conn| ready(work(&mut Conn::Sqlite(conn))));
                Box::pin(std::future::ready(result))
            }
            Db::Postgres(store) => Box::pin(async move {
                let mut conn = store.pool().acquire().await.map_err(unavailable)?;
                work(&mut Conn::Postgres(&mut conn)).await
            }),
            Db::Faulty(inner, faults) => Box::pin(async move {
                faults.check(op)?;
                inner.read(op, work).await
            }),
        }
    }

    /// Runs `work` in a write transaction and returns once it is durable;
    /// if `work` fails, nothing it wrote is kept.
    pub fn write<R: Send + 'static>(
        &self,
        op: &'static str,
        work: impl Work<R>,
    ) -> BoxFuture<'_, StoreResult<R>> {
        match self {
            Db::Sqlite(store) => {
                Box::pin(store.write_raw(move |conn| ready(work(&mut Conn::Sqlite(conn)))))
            }
            Db::Postgres(store) => Box::pin(async move {
                let mut tx = store.pool().begin().await.map_err(unavailable)?;
                let result = work(&mut Conn::Postgres(&mut tx)).await;
                if result.is_ok() {
                    tx.commit().await.map_err(unavailable)?;
                }
                result
            }),
            Db::Faulty(inner, faults) => Box::pin(async move {
                faults.check(op)?;
                inner.write(op, work).await
            }),
        }
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Completes a future that must not wait: shared store code on a SQLite
/// connection, where every statement runs synchronously.
fn ready<R>(future: BoxFuture<'_, StoreResult<R>>) -> StoreResult<R> {
    let mut future = future;
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Database(
            "store code waited on a SQLite connection, which never waits".into(),
        )),
    }
}

/// Failures injected into a real store, for tests of what Roster does when
/// its database fails: nothing runs for an operation that fails here.
#[derive(Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

#[derive(Default)]
struct FaultState {
    /// Every operation fails with this message, except those spared.
    failing: Option<(String, Vec<&'static str>)>,
    /// Operations whose next call fails, once each.
    next: Vec<&'static str>,
}

impl Faults {
    /// Every operation fails with `message`, except those named in `sparing`.
    pub fn fail_all(&self, message: &str, sparing: &[&'static str]) {
        if let Ok(mut state) = self.state.lock() {
            state.failing = Some((message.to_owned(), sparing.to_vec()));
        }
    }

    /// Operations work again (a pending [`Faults::fail_next`] stays armed).
    pub fn recover(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.failing = None;
        }
    }

    /// The next call of the store method `op` fails, without running.
    pub fn fail_next(&self, op: &'static str) {
        if let Ok(mut state) = self.state.lock() {
            state.next.push(op);
        }
    }

    fn check(&self, op: &'static str) -> StoreResult<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Database("fault state poisoned".into()))?;
        if let Some(at) = state.next.iter().position(|armed| *armed == op) {
            state.next.remove(at);
            return Err(StoreError::Database(format!("injected failure of {op}")));
        }
        match &state.failing {
            Some((message, spared)) if !spared.contains(&op) => {
                Err(StoreError::Database(message.clone()))
            }
            _ => Ok(()),
        }
    }
}
