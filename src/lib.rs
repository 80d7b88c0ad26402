pub mod app;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod onboarding;
pub mod policy;
pub mod providers;
pub mod sandbox;
pub mod store;
pub mod telemetry;

#[cfg(test)]
pub(crate) mod testing;
