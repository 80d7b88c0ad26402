//! Background work, all driven by PostgreSQL so it survives restarts and spreads over replicas:
//! the unico poller, the sweeper of stranded onboardings, the NOTIFY listener that wakes
//! waiting requests and the poller, and the device jobs (QI Tech registration and validation
//! follow-up, the Open Finance risk signal).

pub mod device_registration;
pub mod device_validation;
pub mod listener;
pub mod open_finance;
pub mod retention;
pub mod sweeper;
pub mod unico_poller;

/// NOTIFY channel: a unico process became due (a webhook arrived).
pub const UNICO_DUE_CHANNEL: &str = "veredito_unico_due";
