//! veredito driven from outside, the way its users drive it: over HTTP, as the `veredito`
//! binary, in a browser. One test binary (one link of the crate), one module per subject, and
//! one harness: `common` starts the service on port 0 against a fresh PostgreSQL database,
//! `device_support` plays QI Tech and Zro.
//!
//! Run one subject with `cargo test --test api console::`, one test with its path.

mod common;
mod device_support;

mod audit;
mod binary;
mod callbacks;
mod console;
mod console_oidc;
mod device;
mod faults;
mod fraud_indications;
mod onboarding;
mod operations;
mod policies;
mod provider_text;
mod replicas;
mod reviews;
mod risk_memory;
mod security;
mod subjects;
mod telemetry;
mod transactions;
