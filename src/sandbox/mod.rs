//! Simulated providers served by veredito itself when `sandbox.enabled` is set, speaking the
//! providers' documented APIs. This code shares nothing with `providers/`: it is a second,
//! independent reading of the same documentation, so a wire mistake in one shows up in tests.

pub mod faults;
mod fraud_sharing;
mod qitech;
mod scenarios;
#[cfg(test)]
mod tests;
mod unico;
mod zro;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use fraud_sharing::{EVENTS as FRAUD_SHARING_EVENTS, FraudSharingConfig};
pub use qitech::{DEVICE_IDS, VALIDATION_ACCOUNTS};
pub use scenarios::{Behaviour, Outcome, SCENARIOS, Scenario, by_number};
pub use zro::ENROLLMENT_IDS;

/// How the sandbox is set up. Paths: unico's token endpoint is served under
/// `{base}/sandbox/unico-identity`, unico's API under `{base}/sandbox/unico`.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The `iss` the token endpoint accepts.
    pub service_account: String,
    /// The `aud` the token endpoint requires: the identity URL the client is pointed at.
    pub identity_audience: String,
    /// PEM public key that verifies the assertions' RS256 signatures.
    pub public_key_pem: String,
    /// The `APIKEY` CreateProcess and GetProcess require.
    pub api_key: String,
    /// Where to deliver process-finished webhooks, and with which header and value.
    pub webhook_url: String,
    pub webhook_header: String,
    pub webhook_secret: String,
    /// How long an asynchronous process stays at status 1 before it finishes.
    pub processing_delay: Duration,
    /// How long after finishing the webhook is sent.
    pub webhook_delay: Duration,
    /// Injected faults (soak runs); none by default.
    pub faults: faults::Faults,
    /// The scenario a valid CPF outside the table plays (`sandbox.unlisted_cpf_scenario`).
    pub unlisted: &'static Scenario,
}

/// The sandbox's routes, to be merged into the service's router (paths start with `/sandbox/`).
pub fn router(config: SandboxConfig) -> Router {
    let faults = config.faults;
    faults::inject(unico::router(Arc::new(unico::Unico::new(config))), faults)
}

/// The simulated QI Tech (`{base}/sandbox/qitech`) and Zro (`{base}/sandbox/zro`).
#[derive(Clone)]
pub struct DeviceSandboxConfig {
    /// The key QI Tech expects, bare, in `Authorization`.
    pub qitech_api_key: String,
    /// The credentials Zro's `/auth/signin` accepts.
    pub zro_api_id: String,
    pub zro_api_key: String,
    /// How long scripted pending analyses take to resolve.
    pub pending_delay: Duration,
    /// Injected faults (soak runs); none by default.
    pub faults: faults::Faults,
}

/// The device providers' routes, to be merged into the service's router.
pub fn device_router(config: DeviceSandboxConfig) -> Router {
    let routes = qitech::router(Arc::new(qitech::Qitech::new(
        config.qitech_api_key,
        config.pending_delay,
    )))
    .merge(zro::router(Arc::new(zro::Zro::new(
        config.zro_api_id,
        config.zro_api_key,
    ))));
    faults::inject(routes, config.faults)
}

/// The simulated fraud-indication sharing system (`{base}/sandbox/fraud-sharing`).
pub fn fraud_sharing_router(config: FraudSharingConfig) -> Router {
    fraud_sharing::router(config)
}
