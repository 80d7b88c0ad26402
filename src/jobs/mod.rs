//! Background work, all driven by PostgreSQL so it survives restarts and spreads over replicas:
//! the step runner, the NOTIFY listener that wakes it and the waiting requests, and retention.

pub mod leases;
pub mod links;
pub mod listener;
pub mod retention;
pub mod runner;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs the task that `start` makes until it ends or `stop` is cancelled. A task that panics is
/// counted (`veredito_task_restarts_total`), logged and started again after `pause`: one bad
/// step must not leave a replica without its runner.
pub async fn supervise<F, Fut>(
    name: &'static str,
    stop: CancellationToken,
    pause: Duration,
    start: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match tokio::spawn(start()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() && !stop.is_cancelled() => {
                crate::metrics::task_restarted(name);
                tracing::error!(task = name, "background task panicked; starting it again");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.cancelled() => return,
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_is_started_again() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let stop = CancellationToken::new();
        tokio::time::timeout(
            Duration::from_secs(5),
            supervise("listener", stop, Duration::from_millis(10), move || {
                let runs = counted.clone();
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("a bug in a step");
                    }
                }
            }),
        )
        .await
        .expect("the third run ends normally");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(
            crate::metrics::render().contains("veredito_task_restarts_total{task=\"listener\"} 2")
        );
    }

    #[tokio::test]
    async fn a_stopped_task_is_not_started_again() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let stop = CancellationToken::new();
        stop.cancel();
        supervise("retention", stop, Duration::from_millis(10), move || {
            let runs = counted.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                panic!("while stopping");
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
