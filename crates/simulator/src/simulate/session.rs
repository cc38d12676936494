//! Guards around a session on a target or shadow: the backend's pid, and cancelling its
//! running query when the run is cancelled or a deadline passes.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use topology::{Fleet, Instance};

use crate::control::CancelToken;

/// The instance of the fleet named `name`.
pub(super) fn instance<'a>(fleet: &'a Fleet, name: &str) -> Option<&'a Instance> {
    fleet.instances.iter().find(|i| i.name == name)
}

/// Cancel the backend `pid` from a fresh connection when `token` fires; resolves never.
async fn cancel_backend_on(token: CancelToken, opts: PgConnectOptions, pid: i32) {
    token.cancelled().await;
    if let Ok(mut c) = PgConnection::connect_with(&opts).await {
        let _ = sqlx::query("SELECT pg_cancel_backend($1)")
            .bind(pid)
            .execute(&mut c)
            .await;
        let _ = c.close().await;
    }
    std::future::pending::<()>().await
}

/// Run `fut` (which works on the backend `pid`); when `parent` is cancelled or `deadline`
/// passes, `local` is cancelled and the backend's running query is cancelled, so `fut` ends
/// quickly on its own (rolling back). Returns the output and whether the deadline hit.
pub(super) async fn guarded<F: Future>(
    fut: F,
    parent: &CancelToken,
    local: &CancelToken,
    deadline: Option<Duration>,
    opts: PgConnectOptions,
    pid: i32,
) -> (F::Output, bool) {
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trigger = {
        let parent = parent.clone();
        let local = local.clone();
        let timed_out = timed_out.clone();
        async move {
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = parent.cancelled() => {}
                        _ = tokio::time::sleep(d) => { timed_out.store(true, std::sync::atomic::Ordering::SeqCst); }
                    }
                }
                None => parent.cancelled().await,
            }
            local.cancel();
            std::future::pending::<()>().await
        }
    };
    let killer = cancel_backend_on(local.clone(), opts, pid);
    let out = tokio::select! {
        biased;
        r = fut => r,
        _ = trigger => unreachable!("pending"),
        _ = killer => unreachable!("pending"),
    };
    (out, timed_out.load(std::sync::atomic::Ordering::SeqCst))
}

/// The backend pid of `conn` (for [`guarded`]).
pub(super) async fn backend_pid(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
}
