//! One LISTEN connection per replica, fanning notifications out to waiting requests and workers.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::onboarding::services::Flow;
use crate::store::decisions::DECIDED_CHANNEL;
use crate::store::policies::POLICY_CHANNEL;
use crate::store::steps::STEPS_CHANNEL;

pub async fn run(st: Flow, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match listen(&st, &shutdown).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "notification listener lost its connection; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
}

async fn listen(st: &Flow, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(&st.db).await?;
    listener
        .listen_all([DECIDED_CHANNEL, STEPS_CHANNEL, POLICY_CHANNEL])
        .await?;
    // Anything decided while we were not listening: let every waiter look again; and a
    // policy published meanwhile is read again.
    st.wake.recheck_all();
    reload_policies(st).await;
    wake_runners(st);
    loop {
        let notification = tokio::select! {
            n = listener.try_recv() => n?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let Some(notification) = notification else {
            // The connection dropped; try_recv reconnects on the next call, but notifications
            // in between are lost, so waiters must re-check.
            st.wake.recheck_all();
            wake_runners(st);
            reload_policies(st).await;
            continue;
        };
        match notification.channel() {
            DECIDED_CHANNEL => {
                if let Ok(id) = Uuid::parse_str(notification.payload()) {
                    st.wake.waiters.noticed(id);
                }
            }
            STEPS_CHANNEL => wake_runners(st),
            POLICY_CHANNEL => reload_policies(st).await,
            _ => {}
        }
    }
}

fn wake_runners(st: &Flow) {
    st.wake.steps.notify_one();
    st.wake.callbacks.notify_one();
}

async fn reload_policies(st: &Flow) {
    if let Err(e) = crate::onboarding::policies::load(st).await {
        tracing::warn!(error = %e, "could not reload the policy versions; the ones in force stay");
    }
}
