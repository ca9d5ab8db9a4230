//! Outages of the fake model server: every chat request answered with an
//! error status (a 503 storm), or no listener at all (connections refused,
//! open keep-alive connections closed), until the test ends the outage.
//! Scripted replies are not consumed while an outage lasts.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::FakeModelServer;

/// The serving task and how to stop it gracefully.
#[derive(Debug)]
struct Serving {
    task: JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

/// The listener side of a server: serving, or stopped during a refusal.
/// Dropping the last handle stops serving.
#[derive(Debug)]
pub(crate) struct Listening {
    router: Router,
    serving: Mutex<Option<Serving>>,
}

fn spawn(listener: tokio::net::TcpListener, router: Router) -> Serving {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // An error here means the listener died; tests will see refused
        // connections, which is the most useful signal we can give.
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Serving { task, stop }
}

impl Listening {
    pub(crate) fn serve(listener: tokio::net::TcpListener, router: Router) -> Self {
        Self {
            serving: Mutex::new(Some(spawn(listener, router.clone()))),
            router,
        }
    }

    fn take(&self) -> Option<Serving> {
        self.serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(serving) = self.take() {
            serving.task.abort();
        }
    }
}

impl FakeModelServer {
    /// Starts an outage in which every chat request (either protocol) is
    /// answered with `status` in the protocol's native error format, e.g.
    /// 503. Embeddings are not affected.
    pub fn fail_with(&self, status: u16) {
        *self
            .shared
            .outage_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(status);
    }

    /// Starts an outage in which the server does not listen: new
    /// connections are refused and idle keep-alive connections are closed.
    /// Returns once the port is closed.
    pub async fn refuse_connections(&self) {
        let Some(serving) = self.listener.take() else {
            return;
        };
        let _ = serving.stop.send(());
        let mut task = serving.task;
        // A request held open (`Reply::hang`) would keep the graceful
        // shutdown waiting; the port is closed before that wait anyway.
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }

    /// Ends any outage: the status storm stops and, after a refusal, the
    /// server listens again on the same address.
    ///
    /// # Panics
    /// When the address cannot be bound again.
    pub async fn end_outage(&self) {
        *self
            .shared
            .outage_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let mut serving = self
            .listener
            .serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if serving.is_none() {
            let listener = bind_again(self.addr).await;
            serving = Some(spawn(listener, self.listener.router.clone()));
        }
        *self
            .listener
            .serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = serving;
    }

    /// Chat requests answered with the outage status so far.
    pub fn outage_answers(&self) -> usize {
        usize::try_from(self.shared.outage_answers.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }
}

/// Binds `addr` again, retrying briefly while the old socket lets go.
async fn bind_again(addr: SocketAddr) -> tokio::net::TcpListener {
    let mut tries = 0;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("fake model server: cannot listen on {addr} again: {e}"),
        }
    }
}
