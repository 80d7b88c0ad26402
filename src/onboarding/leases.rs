//! The claims this replica holds on the steps it is running, kept alive while they run.
//!
//! A claimed step carries a short lease (`LEASE`). While a step runs here its claim is renewed
//! every `RENEW_EVERY` by one statement for all of them (`jobs::leases`), so a replica that dies
//! (SIGKILL, a lost machine) stops renewing and its steps fall due for any runner within
//! `LEASE` plus a runner's longest sleep, whatever a provider call of theirs would have taken.
//!
//! Never twice at once: a run whose claim could not be renewed in time is stopped (its future is
//! dropped) before the claim runs out, counting from the moment the last successful renewal was
//! sent, so by the time another runner may take the step this one has let go. A claim that is
//! found taken (another replica's `claimed_at`) or finished stops being renewed at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::store::steps::Step;

/// How long a claim lasts unless renewed.
pub const LEASE: Duration = Duration::from_secs(4);

/// How often the claims of running steps are renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// A run stops this long before its claim would run out unrenewed, so that it has let go of the
/// step before another runner can take it.
const MARGIN: Duration = Duration::from_millis(750);

/// How long ago, at most, a step being held was claimed: the claim's lease started when its
/// statement ran (a request's transaction, a runner's claim), slightly before the run begins.
const CLAIM_AGE: Duration = Duration::from_millis(500);

/// The steps running on this replica, by id.
#[derive(Default)]
pub struct Leases {
    held: Mutex<HashMap<i64, Held>>,
}

struct Held {
    claimed_at: Option<DateTime<Utc>>,
    /// When the last renewal that found the claim ours was sent (or the claim was made).
    renewed: Instant,
    stop: CancellationToken,
}

/// A step held by a run; dropping it lets the claim go (it is no longer renewed).
pub struct Holding {
    leases: Arc<Leases>,
    id: i64,
    stop: CancellationToken,
}

impl Holding {
    /// Resolves when the claim could not be kept: the run must stop.
    pub async fn lost(&self) {
        self.stop.cancelled().await
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.leases.lock().remove(&self.id);
    }
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `step`'s claim alive until the answer is dropped.
    pub fn hold(self: &Arc<Self>, step: &Step) -> Holding {
        let stop = CancellationToken::new();
        let renewed = Instant::now()
            .checked_sub(CLAIM_AGE)
            .unwrap_or_else(Instant::now);
        self.lock().insert(
            step.id,
            Held {
                claimed_at: step.claimed_at,
                renewed,
                stop: stop.clone(),
            },
        );
        Holding {
            leases: self.clone(),
            id: step.id,
            stop,
        }
    }

    /// The claims to renew: each step's id with the `claimed_at` that makes the claim ours.
    pub fn claims(&self) -> Vec<(i64, DateTime<Utc>)> {
        self.lock()
            .iter()
            .filter_map(|(id, held)| held.claimed_at.map(|at| (*id, at)))
            .collect()
    }

    /// The renewal sent at `sent` found these claims still ours.
    pub fn renewed(&self, ids: &[i64], sent: Instant) {
        let mut held = self.lock();
        for id in ids {
            if let Some(h) = held.get_mut(id) {
                h.renewed = h.renewed.max(sent);
            }
        }
    }

    /// The renewal sent at `sent` did not find these claims ours (taken by another runner, or
    /// released): their runs stop now.
    pub fn gone(&self, ids: &[i64]) -> usize {
        let held = self.lock();
        let mut stopped = 0;
        for id in ids {
            if let Some(h) = held.get(id) {
                if !h.stop.is_cancelled() {
                    h.stop.cancel();
                    stopped += 1;
                }
            }
        }
        stopped
    }

    /// Stops the runs whose claims were last renewed too long ago to be sure they are still
    /// ours; answers how many were stopped.
    pub fn stop_expiring(&self, now: Instant) -> usize {
        let held = self.lock();
        let mut stopped = 0;
        for h in held.values() {
            if now.duration_since(h.renewed) + MARGIN >= LEASE && !h.stop.is_cancelled() {
                h.stop.cancel();
                stopped += 1;
            }
        }
        stopped
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::transitions::StepKind;
    use crate::store::steps::Subject;

    fn step(id: i64) -> Step {
        Step {
            id,
            kind: StepKind::CreateProcess,
            subject: Subject::Onboarding(uuid::Uuid::new_v4()),
            attempts: 1,
            last_error: None,
            claimed_at: Some(Utc::now()),
            traceparent: None,
        }
    }

    #[tokio::test]
    async fn a_claim_not_renewed_in_time_stops_its_run_before_the_lease_ends() {
        let leases = Arc::new(Leases::default());
        let holding = leases.hold(&step(1));
        let start = Instant::now();
        assert_eq!(leases.stop_expiring(start), 0, "just claimed");
        // Renewed at `start`: kept until MARGIN before start + LEASE.
        leases.renewed(&[1], start);
        assert_eq!(leases.stop_expiring(start + LEASE - MARGIN * 2), 0);
        assert_eq!(leases.stop_expiring(start + LEASE - MARGIN), 1);
        tokio::time::timeout(Duration::from_millis(100), holding.lost())
            .await
            .expect("the run is told to stop");
    }

    #[tokio::test]
    async fn a_claim_found_taken_stops_its_run_and_a_dropped_one_is_not_renewed() {
        let leases = Arc::new(Leases::default());
        let taken = leases.hold(&step(1));
        let done = leases.hold(&step(2));
        assert_eq!(leases.claims().len(), 2);
        assert_eq!(leases.gone(&[1]), 1);
        tokio::time::timeout(Duration::from_millis(100), taken.lost())
            .await
            .expect("stopped");
        drop(done);
        let ids: Vec<i64> = leases.claims().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [1]);
    }
}
