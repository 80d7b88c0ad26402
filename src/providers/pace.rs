//! The pace of calls to a provider with a documented rate, shared by all the work of a replica.
//!
//! Calls that finish work already paid for (reading back a unico process, the token that call
//! needs) go before calls that start new work (CreateProcess): a sign-up peak must not hold up
//! the answer to a process unico has already finished. Within the rate, each call waits for its
//! turn in arrival order; calls starting new work line up first among themselves, so at most one
//! of them stands between a finishing call and its turn.

use std::num::NonZeroU32;

/// What a call does for the onboarding it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Finishes work already started (and, for unico, paid for).
    Finishing,
    /// Starts new work.
    NewWork,
}

pub struct Pace {
    limiter: governor::DefaultDirectRateLimiter,
    /// One caller at a time waits at the limiter; tokio's mutex hands it over in arrival order.
    turn: tokio::sync::Mutex<()>,
    /// Where calls starting new work wait before they may queue for a turn.
    new_work: tokio::sync::Mutex<()>,
    /// The operations that start new work.
    new_work_operations: &'static [&'static str],
}

impl Pace {
    /// At most `per_second` calls a second, evenly spaced (a tenth of a second's worth may go at
    /// once); `new_work_operations` name the calls that wait behind the others.
    pub fn new(per_second: u32, new_work_operations: &'static [&'static str]) -> Pace {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new((per_second / 10).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = governor::Quota::per_second(rate).allow_burst(burst);
        Pace {
            limiter: governor::RateLimiter::direct(quota),
            turn: tokio::sync::Mutex::new(()),
            new_work: tokio::sync::Mutex::new(()),
            new_work_operations,
        }
    }

    pub fn priority(&self, operation: &str) -> Priority {
        if self.new_work_operations.contains(&operation) {
            Priority::NewWork
        } else {
            Priority::Finishing
        }
    }

    /// Waits until a call of `priority` may go.
    pub async fn wait(&self, priority: Priority) {
        let _line = match priority {
            Priority::NewWork => Some(self.new_work.lock().await),
            Priority::Finishing => None,
        };
        let _turn = self.turn.lock().await;
        self.limiter.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_finishing_call_goes_before_the_new_work_queued_ahead_of_it() {
        let pace = Arc::new(Pace::new(20, &["create_process"]));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut calls = Vec::new();
        for n in 0..10 {
            let (pace, order) = (pace.clone(), order.clone());
            calls.push(tokio::spawn(async move {
                pace.wait(pace.priority("create_process")).await;
                order.lock().unwrap().push(format!("create {n}"));
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        let (p, o) = (pace.clone(), order.clone());
        let read = tokio::spawn(async move {
            p.wait(p.priority("get_process")).await;
            o.lock().unwrap().push("read".to_owned());
        });
        read.await.unwrap();
        for call in calls {
            call.await.unwrap();
        }
        let order = order.lock().unwrap();
        let read_at = order.iter().position(|c| c == "read").unwrap();
        // At 20/s, 60 ms lets one or two creates through; at most one more stands between the
        // read and its turn.
        assert!(read_at <= 4, "{order:?}");
        assert_eq!(order.len(), 11);
    }
}
