//! Group commit for SQLite.
//!
//! One thread owns the only write connection. It drains every job waiting in
//! its channel, runs them in one transaction (each inside its own savepoint,
//! so one failing job does not undo the others), commits with one fsync, and
//! only then answers each caller. Durability per step and throughput across
//! sessions stop being at odds: a hundred sessions share one fsync.

use crate::StoreError;
use rusqlite::Connection;
use std::any::Any;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Answer = Result<Box<dyn Any + Send>, StoreError>;
type Work = Box<dyn FnOnce(&mut Connection) -> Answer + Send>;

struct Job {
    work: Work,
    reply: oneshot::Sender<Answer>,
}

/// Cheap handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// Upper bound on jobs per transaction, so one batch cannot hold the write
/// lock for long while callers keep arriving.
const MAX_BATCH: usize = 512;

impl Writer {
    pub(crate) fn spawn(conn: Connection) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("roster-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `work` inside the next group transaction and returns once that
    /// transaction is durable.
    pub(crate) async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let work: Work =
            Box::new(move |conn| work(conn).map(|r| Box::new(r) as Box<dyn Any + Send>));
        self.jobs
            .send(Job { work, reply })
            .map_err(|_| StoreError::Database("the SQLite writer has stopped".into()))?;
        let boxed = answer
            .await
            .map_err(|_| StoreError::Database("the SQLite writer dropped a write".into()))??;
        boxed
            .downcast::<R>()
            .map(|r| *r)
            .map_err(|_| StoreError::Database("writer answered with the wrong type".into()))
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        execute_batch(&mut conn, batch);
    }
}

fn execute_batch(conn: &mut Connection, batch: Vec<Job>) {
    if !conn.is_autocommit() {
        // A transaction left open by an earlier failure: end it first.
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let message = format!("cannot begin a write: {e}");
        for job in batch {
            let _ = job.reply.send(Err(StoreError::Database(message.clone())));
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    for job in jobs.by_ref() {
        let answer = match conn.execute_batch("SAVEPOINT job") {
            Ok(()) => {
                let answer = (job.work)(&mut *conn);
                let end = if answer.is_ok() {
                    "RELEASE job"
                } else {
                    "ROLLBACK TO job; RELEASE job"
                };
                match conn.execute_batch(end) {
                    Ok(()) => answer,
                    Err(e) => Err(crate::db_error(e)),
                }
            }
            Err(e) => Err(crate::db_error(e)),
        };
        answers.push((job.reply, answer));
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (disk full, I/O
            // error, ...): nothing of this batch is stored, so no job may be
            // answered with success, and none may run outside it.
            let message = "the write transaction was rolled back by SQLite".to_owned();
            for (reply, _) in answers.drain(..) {
                let _ = reply.send(Err(StoreError::Database(message.clone())));
            }
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Database(message.clone())));
            }
            return;
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            for (reply, answer) in answers {
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let message = format!("commit failed: {e}");
            for (reply, _) in answers {
                let _ = reply.send(Err(StoreError::Database(message.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(
        work: impl FnOnce(&mut Connection) -> Answer + Send + 'static,
    ) -> (Job, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        (
            Job {
                work: Box::new(work),
                reply,
            },
            answer,
        )
    }

    fn insert(value: i64) -> impl FnOnce(&mut Connection) -> Answer + Send + 'static {
        move |c| {
            c.execute("INSERT INTO t VALUES (?1)", [value])
                .map_err(crate::db_error)?;
            Ok(Box::new(()))
        }
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn a_failing_job_is_undone_alone() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("schema");
        let (a, a_answer) = job(insert(1));
        let (b, b_answer) = job(|c: &mut Connection| {
            c.execute("INSERT INTO t VALUES (2)", [])
                .map_err(crate::db_error)?;
            Err(StoreError::Conflict("no".into()))
        });
        let (c, c_answer) = job(insert(3));
        execute_batch(&mut conn, vec![a, b, c]);
        assert!(a_answer.blocking_recv().expect("a").is_ok());
        assert!(b_answer.blocking_recv().expect("b").is_err());
        assert!(c_answer.blocking_recv().expect("c").is_ok());
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn when_sqlite_drops_the_transaction_no_job_reports_success_or_lands() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("schema");
        let (a, a_answer) = job(insert(1));
        // Stands in for SQLite's own rollback on a full disk or an I/O error.
        let (b, b_answer) = job(|c: &mut Connection| {
            c.execute_batch("ROLLBACK").map_err(crate::db_error)?;
            Err(StoreError::Database("disk full".into()))
        });
        let (c, c_answer) = job(insert(3));
        execute_batch(&mut conn, vec![a, b, c]);
        for answer in [a_answer, b_answer, c_answer] {
            assert!(answer.blocking_recv().expect("answered").is_err());
        }
        assert_eq!(count(&conn), 0);
        // The writer is usable again.
        let (d, d_answer) = job(insert(4));
        execute_batch(&mut conn, vec![d]);
        assert!(d_answer.blocking_recv().expect("d").is_ok());
        assert_eq!(count(&conn), 1);
    }
}
