//! The onboarding flow: store the request with its first step, then let the steps carry it.
//!
//! States and steps are the machine of `domain::transitions`: `received` (CreateProcess queued)
//! -> `biometrics` (the process is read back until final) -> `device` (everything else approved;
//! QI Tech registers the device) -> `decided`. The request that stores an onboarding runs its
//! first step at once on this replica; every later step is a row of the step queue, so a crash,
//! a restart or a provider fault only delays it.

pub mod applied;
pub mod biometrics;
pub mod callbacks;
pub mod cases;
pub mod decide;
pub mod device;
pub mod error;
pub mod fraud;
pub mod leases;
pub mod links;
pub mod lists;
pub mod notes;
pub mod policies;
pub mod replay;
pub mod request;
pub mod reviews;
pub mod services;
pub mod steps;
pub mod subjects;
pub mod submit;
pub mod validation;
pub mod view;
pub mod waiters;

pub use error::FlowError;
pub use request::{OnboardingRequest, ValidOnboarding, ValidationRequest};
pub use submit::{Submitted, is_decided, submit, submit_validation};
