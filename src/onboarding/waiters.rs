//! Requests waiting for their onboarding's decision, registered by id: a decision wakes its own
//! waiters and no others, so 10,000 requests waiting at once cost nothing to the decisions that
//! do not concern them (a channel every waiter listens to would wake each of them for every
//! decision).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use uuid::Uuid;

use crate::onboarding::view::OnboardingView;

#[derive(Default)]
struct Slot {
    notify: Notify,
    /// Set by the decision itself; a wake-up without it only asks to look again.
    decided: AtomicBool,
    /// The answer as the deciding transaction committed it, when this replica decided it.
    view: Mutex<Option<Box<OnboardingView>>>,
}

type Registry = Arc<Mutex<HashMap<Uuid, Vec<Arc<Slot>>>>>;

#[derive(Default)]
pub struct DecisionWaiters {
    by_id: Registry,
    /// Onboardings a step of this replica works on, and whether PostgreSQL's notice of their
    /// decision came meanwhile: the step that decides wakes its waiters itself, with the answer,
    /// so the notice of its own commit (which can arrive before the commit's acknowledgement)
    /// must not wake them first without it.
    in_flight: Arc<Mutex<HashMap<Uuid, InFlight>>>,
}

#[derive(Default)]
struct InFlight {
    steps: u32,
    noticed: bool,
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
        self.decided_as(id, None);
    }

    /// `id` was decided, and `view` is its answer as the deciding transaction committed it: the
    /// first waiter takes it instead of reading it again (any other reads it).
    pub fn decided_as(&self, id: Uuid, view: Option<Box<OnboardingView>>) {
        let slots = self.registry().remove(&id).unwrap_or_default();
        wake_decided(slots, view);
    }

    /// A decision notice from PostgreSQL (this replica's or another's): it wakes the waiters,
    /// unless a step here works on the onboarding, in which case it is kept until that step
    /// ends (a decision of its own wakes them with the answer first).
    pub fn noticed(&self, id: Uuid) {
        {
            let mut in_flight = self.in_flight();
            if let Some(entry) = in_flight.get_mut(&id) {
                entry.noticed = true;
                return;
            }
        }
        self.decided(id);
    }

    /// A step of this replica starts on onboarding `id`; the notices of its decision wait until
    /// the guard is dropped.
    pub fn working_on(&self, id: Uuid) -> WorkingOn {
        self.in_flight().entry(id).or_default().steps += 1;
        WorkingOn {
            id,
            in_flight: self.in_flight.clone(),
            by_id: self.by_id.clone(),
        }
    }

    fn in_flight(&self) -> MutexGuard<'_, HashMap<Uuid, InFlight>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
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

/// A step at work on an onboarding (`DecisionWaiters::working_on`). Dropped, it hands on a
/// decision notice that came meanwhile: a decision made elsewhere still wakes the waiters, and
/// one made by the step itself has already woken them (the notice then finds nobody).
pub struct WorkingOn {
    id: Uuid,
    in_flight: Arc<Mutex<HashMap<Uuid, InFlight>>>,
    by_id: Registry,
}

impl Drop for WorkingOn {
    fn drop(&mut self) {
        let noticed = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = in_flight.get_mut(&self.id) else {
                return;
            };
            entry.steps -= 1;
            if entry.steps > 0 {
                return;
            }
            in_flight.remove(&self.id).is_some_and(|e| e.noticed)
        };
        if noticed {
            let slots = self
                .by_id
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id)
                .unwrap_or_default();
            wake_decided(slots, None);
        }
    }
}

fn wake_decided(slots: Vec<Arc<Slot>>, view: Option<Box<OnboardingView>>) {
    let mut view = view;
    for slot in slots {
        if let Some(view) = view.take() {
            *slot.view.lock().unwrap_or_else(|e| e.into_inner()) = Some(view);
        }
        slot.decided.store(true, Ordering::Release);
        slot.notify.notify_one();
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

    /// The answer the decision left for this waiter, if it left one (taken once).
    pub fn take_view(&self) -> Option<Box<OnboardingView>> {
        self.slot
            .view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
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

    fn answer(id: Uuid) -> Box<OnboardingView> {
        Box::new(OnboardingView {
            id,
            reference: None,
            status: "decided",
            outcome: Some("approved".into()),
            reasons: Vec::new(),
            biometrics: None,
            device: crate::onboarding::view::DeviceView {
                status: None,
                analysis_status: None,
                reason: None,
                risk_flags: Vec::new(),
            },
            open_finance: None,
            decided_by: Some("policy".into()),
            policy_version: "v".into(),
            created_at: chrono::Utc::now(),
            decided_at: Some(chrono::Utc::now()),
        })
    }

    #[tokio::test]
    async fn the_notice_of_a_decision_made_here_does_not_overtake_its_answer() {
        let waiters = DecisionWaiters::default();
        let id = Uuid::new_v4();
        let waiter = waiters.register(id);
        let working = waiters.working_on(id);
        // PostgreSQL's notice of the commit arrives before the step hears its commit succeed.
        waiters.noticed(id);
        let early = tokio::time::timeout(Duration::from_millis(50), waiter.woken()).await;
        assert!(
            early.is_err(),
            "the notice woke the waiter before the answer was there"
        );
        waiters.decided_as(id, Some(answer(id)));
        drop(working);
        assert_eq!(waiter.woken().await, Woken::Decided);
        let view = waiter.take_view().expect("the answer the decision left");
        assert_eq!(view.id, id);
        assert!(waiter.take_view().is_none(), "taken once");
    }

    #[tokio::test]
    async fn a_notice_kept_for_a_step_that_did_not_decide_wakes_when_it_ends() {
        let waiters = DecisionWaiters::default();
        let id = Uuid::new_v4();
        let waiter = waiters.register(id);
        let (first, second) = (waiters.working_on(id), waiters.working_on(id));
        // Another replica decided; the steps here found the onboarding moved and decided nothing.
        waiters.noticed(id);
        drop(first);
        let early = tokio::time::timeout(Duration::from_millis(50), waiter.woken()).await;
        assert!(early.is_err(), "woken while a step still worked on it");
        drop(second);
        assert_eq!(waiter.woken().await, Woken::Decided);
        assert!(waiter.take_view().is_none(), "read, not carried");
        // Nothing is left behind: the next notice wakes at once.
        let again = waiters.register(id);
        waiters.noticed(id);
        assert_eq!(again.woken().await, Woken::Decided);
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
