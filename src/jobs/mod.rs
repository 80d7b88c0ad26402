//! Background work, all driven by PostgreSQL so it survives restarts and spreads over replicas:
//! the step runner, the NOTIFY listener that wakes it and the waiting requests, and retention.

pub mod listener;
pub mod retention;
pub mod runner;
