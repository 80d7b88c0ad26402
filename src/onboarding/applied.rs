//! What a step or a transition leaves for the one that wrote it.

use crate::store::steps::Step;

/// What a transition left for the writer: the steps it holds and runs next, and whether the
/// onboarding is now decided (its waiters are woken after the commit).
#[derive(Debug, Default)]
pub struct Applied {
    pub steps: Vec<Step>,
    pub decided: bool,
    /// Whether the event applied at all.
    pub moved: bool,
}

impl Applied {
    pub fn and(mut self, other: Applied) -> Applied {
        self.steps.extend(other.steps);
        self.decided |= other.decided;
        self.moved |= other.moved;
        self
    }
}
