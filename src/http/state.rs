//! What the handlers share: the flow's services, the API keys and the waiting requests.

use std::ops::Deref;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::http::auth::ApiKeys;
use crate::onboarding::services::{Flow, Services};

#[derive(Clone)]
pub struct AppState {
    pub flow: Flow,
    pub api_keys: Arc<ApiKeys>,
    /// Cancelled when the service begins to stop: requests waiting for a verdict answer 202 at
    /// once instead of being cut off.
    pub stopping: CancellationToken,
    /// Requests in progress at most (`server.max_in_flight`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Submissions being read and stored at once (`http::Admitted`).
    pub admission: Arc<tokio::sync::Semaphore>,
    /// Webhooks without unico's secret answered 401 (and counted) at this pace at most, all
    /// sources together; past it 429 (`unico.forged_webhooks_per_second`).
    pub forged_webhooks: Arc<governor::DefaultDirectRateLimiter>,
    /// The console's client of the identity provider, when `console.oidc` is configured.
    pub oidc: Option<Arc<crate::http::oidc::Oidc>>,
}

impl axum::extract::FromRef<AppState> for Arc<ApiKeys> {
    fn from_ref(state: &AppState) -> Arc<ApiKeys> {
        state.api_keys.clone()
    }
}

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.flow
    }
}
