//! What a step or a transition leaves for the one that wrote it.

use secrecy::SecretString;

use crate::onboarding::view::OnboardingView;
use crate::store::devices::RegistrationRow;
use crate::store::onboardings::OnboardingRow;
use crate::store::processes::ProcessRow;
use crate::store::steps::Step;

/// What a transition left for the writer: the steps it holds and runs next, and whether the
/// onboarding is now decided (its waiters are woken after the commit).
#[derive(Debug, Default)]
pub struct Applied {
    pub steps: Vec<Step>,
    pub decided: bool,
    /// Whether the event applied at all.
    pub moved: bool,
    /// The person asked for an erasure of this onboarding (LGPD Art. 18) while it was being
    /// decided: the deciding transaction erases it.
    pub erasure_requested: bool,
    /// Rows the transaction wrote that the next held step would otherwise read back.
    pub carried: Option<Carried>,
    /// The onboarding's answer as the deciding transaction wrote it, for the request waiting on
    /// this replica (which would otherwise read it back after the commit).
    pub view: Option<Box<OnboardingView>>,
}

/// What a step hands to the next one it holds, as its transaction committed it.
#[derive(Debug)]
pub enum Carried {
    /// The onboarding just stored, with its selfie as received: what CreateProcess sends.
    Received(Box<(OnboardingRow, SecretString)>),
    /// The onboarding, moved to the device stage, and its registration just queued.
    Registration(Box<(OnboardingRow, RegistrationRow)>),
    /// The onboarding and its open process, read where a webhook woke its read.
    Process(Box<(OnboardingRow, ProcessRow)>),
}

impl Carried {
    /// The onboarding and selfie, when this is what was carried for onboarding `id`.
    pub fn received(
        carried: Option<Carried>,
        id: uuid::Uuid,
    ) -> Option<(OnboardingRow, SecretString)> {
        match carried {
            Some(Carried::Received(rows)) if rows.0.id == id => Some(*rows),
            _ => None,
        }
    }

    /// The onboarding and registration, when this is what was carried for onboarding `id`.
    pub fn registration(
        carried: Option<Carried>,
        id: uuid::Uuid,
    ) -> Option<(OnboardingRow, RegistrationRow)> {
        match carried {
            Some(Carried::Registration(rows)) if rows.1.onboarding_id == id => Some(*rows),
            _ => None,
        }
    }

    /// The onboarding and process, when this is what was carried for onboarding `id`.
    pub fn process(
        carried: Option<Carried>,
        id: uuid::Uuid,
    ) -> Option<(OnboardingRow, ProcessRow)> {
        match carried {
            Some(Carried::Process(rows)) if rows.1.onboarding_id == id => Some(*rows),
            _ => None,
        }
    }
}

impl Applied {
    pub fn and(mut self, other: Applied) -> Applied {
        self.steps.extend(other.steps);
        self.decided |= other.decided;
        self.moved |= other.moved;
        self.carried = self.carried.or(other.carried);
        self.view = self.view.or(other.view);
        self
    }
}
