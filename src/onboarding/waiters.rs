//! Requests waiting for their onboarding's decision, registered by id: a decision wakes its own
//! waiters and no others, so 10,000 requests waiting at once cost nothing to the decisions that
//! do not concern them (a channel every waiter listens to would wake each of them for every
//! decision).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use uuid::Uuid;

#[derive(Default)]
struct Slot {
    notify: Notify,
    /// Set by the decision itself; a wake-up without it only asks to look again.
    decided: AtomicBool,
}

type Registry = Arc<Mutex<HashMap<Uuid, Vec<Arc<Slot>>>>>;

#[derive(Default)]
pub struct DecisionWaiters {
    by_id: Registry,
}

/// What woke a waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// Its onboarding was decided (sent after the decision's commit).
    Decided,
    /// A notification may have been lost: look at the database again.
    LookAgain,
}

impl DecisionWaiters {
    fn registry(&self) -> MutexGuard<'_, HashMap<Uuid, Vec<Arc<Slot>>>> {
        // A panic while holding the lock leaves the map as it was: keep using it.
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a waiter for `id`; it stops waiting when dropped.
    pub fn register(&self, id: Uuid) -> Waiter {
        let slot = Arc::new(Slot::default());
        self.registry().entry(id).or_default().push(slot.clone());
        Waiter {
            id,
            slot,
            by_id: self.by_id.clone(),
        }
    }

    /// `id` was decided: its waiters, and only they, wake.
    pub fn decided(&self, id: Uuid) {
        let slots = self.registry().remove(&id).unwrap_or_default();
        for slot in slots {
            slot.decided.store(true, Ordering::Release);
            slot.notify.notify_one();
        }
    }

    /// Every waiter looks at the database again (the NOTIFY listener reconnected, and what was
    /// sent meanwhile is lost).
    pub fn look_again(&self) {
        for slot in self.registry().values().flatten() {
            slot.notify.notify_one();
        }
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.registry().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One request's registration. A wake-up sent before `woken` is awaited is kept, not lost.
pub struct Waiter {
    id: Uuid,
    slot: Arc<Slot>,
    by_id: Registry,
}

impl Waiter {
    pub async fn woken(&self) -> Woken {
        self.slot.notify.notified().await;
        if self.slot.decided.load(Ordering::Acquire) {
            Woken::Decided
        } else {
            Woken::LookAgain
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut by_id = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slots) = by_id.get_mut(&self.id) {
            slots.retain(|slot| !Arc::ptr_eq(slot, &self.slot));
            if slots.is_empty() {
                by_id.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_decision_wakes_its_own_waiters_only() {
        let waiters = DecisionWaiters::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = waiters.register(a);
        let second = waiters.register(a);
        let other = waiters.register(b);
        // Sent before anyone awaits: kept.
        waiters.decided(a);
        assert_eq!(first.woken().await, Woken::Decided);
        assert_eq!(second.woken().await, Woken::Decided);
        let quiet = tokio::time::timeout(Duration::from_millis(50), other.woken()).await;
        assert!(
            quiet.is_err(),
            "a decision woke a waiter of another onboarding"
        );
        drop((first, second));
        assert_eq!(waiters.len(), 1);
        drop(other);
        assert!(waiters.is_empty());
    }

    #[tokio::test]
    async fn look_again_wakes_everyone_without_saying_decided() {
        let waiters = DecisionWaiters::default();
        let (a, b) = (
            waiters.register(Uuid::new_v4()),
            waiters.register(Uuid::new_v4()),
        );
        waiters.look_again();
        assert_eq!(a.woken().await, Woken::LookAgain);
        assert_eq!(b.woken().await, Woken::LookAgain);
        // Still registered: a later decision still reaches them.
        assert_eq!(waiters.len(), 2);
    }
}
