//! Background work, all driven by PostgreSQL so it survives restarts and spreads over replicas:
//! the unico poller, the sweeper of stranded onboardings, and the NOTIFY listener that wakes
//! waiting requests and the poller.

pub mod listener;
pub mod retention;
pub mod sweeper;
pub mod unico_poller;

/// NOTIFY channel: a unico process became due (a webhook arrived).
pub const UNICO_DUE_CHANNEL: &str = "veredito_unico_due";
