//! What the flow works with: the database, the cipher, the policy, the provider clients and the
//! wake-ups. Built once by `app.rs`; the HTTP layer and the jobs hand it down, nothing below the
//! flow sees it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::onboarding::view::OnboardingView;

use crate::config::Settings;
use crate::crypto::PiiCipher;
use crate::onboarding::leases::{self, Leases};
use crate::onboarding::waiters::DecisionWaiters;
use crate::policy::Policy;
use crate::providers::qitech::QitechClient;
use crate::providers::unico::UnicoClient;
use crate::providers::zro::ZroClient;

pub struct Services {
    pub db: PgPool,
    /// Where decision searches, exports and replays read: the read replica's pool
    /// (`database.read_url`), or `db` itself. A decision just made may not be there yet, so
    /// whatever must see it (a decision by id, the flow) reads `db`.
    pub reads: PgPool,
    pub settings: Settings,
    /// The active policy version, and the one in shadow, as every replica holds them.
    pub policies: Policies,
    pub unico: UnicoClient,
    pub qitech: QitechClient,
    pub zro: ZroClient,
    pub cipher: PiiCipher,
    pub wake: Wakeups,
    /// Steps run at once by the replica that queued them. Shutdown waits for them (up to the
    /// grace), so a paid call in flight gets its answer stored.
    pub inline: TaskTracker,
    /// How many steps this replica runs at once for the requests it takes. Past it, a request's
    /// first step is left to the runners (which have their own bound), so a burst of requests
    /// queues in PostgreSQL instead of in memory.
    pub inline_permits: Arc<tokio::sync::Semaphore>,
    /// Policy replays running at once on this replica (`api.max_replays`): each reads up to
    /// 100,000 decisions, so past it a replay is refused rather than queued.
    pub replays: Arc<tokio::sync::Semaphore>,
    /// Where decision events go; None when `callbacks.url` is unset.
    pub callbacks: Option<CallbackTarget>,
    /// Where fraud indications are shared; None when `fraud_sharing.url` is unset (and the
    /// sandbox does not stand in for it).
    pub fraud_sharing: Option<CallbackTarget>,
    /// The claims of the steps running on this replica, renewed while they run.
    pub leases: Arc<Leases>,
}

/// An endpoint the outbox delivers to (the onboarding backend's, or the sharing system's) and
/// the key its events are signed with.
pub struct CallbackTarget {
    pub url: String,
    pub key: Vec<u8>,
    pub client: reqwest::Client,
}

/// The versions in force. Replaced whole when a version is published or put in shadow (on this
/// replica at once, on the others by NOTIFY), so an evaluation always sees one consistent version.
pub struct Policies {
    active: RwLock<Arc<Policy>>,
    shadow: RwLock<Option<Arc<Policy>>>,
}

impl Policies {
    pub fn new(active: Policy) -> Policies {
        Policies {
            active: RwLock::new(Arc::new(active)),
            shadow: RwLock::new(None),
        }
    }

    pub fn active(&self) -> Arc<Policy> {
        self.active
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn shadow(&self) -> Option<Arc<Policy>> {
        self.shadow
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn set(&self, active: Policy, shadow: Option<Policy>) {
        if let Ok(mut slot) = self.active.write() {
            *slot = Arc::new(active);
        }
        if let Ok(mut slot) = self.shadow.write() {
            *slot = shadow.map(Arc::new);
        }
    }
}

/// The flow services as every task holds them.
pub type Flow = Arc<Services>;

/// In-process wake-ups. The NOTIFY listener feeds them from PostgreSQL, so what another replica
/// commits wakes this one too.
pub struct Wakeups {
    /// A step of the flow became due.
    pub steps: Notify,
    /// A callback became due.
    pub callbacks: Notify,
    /// Requests waiting for a decision, by onboarding.
    pub waiters: DecisionWaiters,
}

impl Default for Wakeups {
    fn default() -> Self {
        Wakeups {
            steps: Notify::new(),
            callbacks: Notify::new(),
            waiters: DecisionWaiters::default(),
        }
    }
}

impl Wakeups {
    pub fn decided(&self, id: Uuid) {
        self.waiters.decided(id);
    }

    /// `id` was decided here, and `view` is the answer its transaction committed.
    pub fn decided_as(&self, id: Uuid, view: Option<Box<OnboardingView>>) {
        self.waiters.decided_as(id, view);
    }

    pub fn recheck_all(&self) {
        self.waiters.look_again();
    }
}

impl Services {
    /// How long a claim on a step lasts unless renewed: short, because the replica running the
    /// step renews it while the step runs (`leases`), so a dead replica's steps are taken over
    /// within seconds whatever its provider calls would have taken.
    pub fn step_lease(&self) -> Duration {
        leases::LEASE
    }

    /// When a step that failed on veredito's side for the `failures`-th time runs again.
    pub fn step_retry(&self, failures: i32) -> Duration {
        let jobs = &self.settings.jobs;
        crate::store::steps::backoff(jobs.step_retry_initial, jobs.step_retry_max, failures)
    }
}
