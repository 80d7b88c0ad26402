//! Faults the sandbox injects on request, for soak runs: with `sandbox.fault_rate`, a call to a
//! simulated provider answers 500, 503 or 429 (with Retry-After), or stalls past the client's
//! timeout, before the provider does anything; and unico's webhook comes twice, or early.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use serde_json::json;

/// How often, and how long a stall lasts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// The share of calls (and of webhooks) that go wrong, 0 to 1.
    pub rate: f64,
    pub stall: Duration,
}

impl Faults {
    /// Whether this call is one of the unlucky ones.
    pub fn strikes(&self) -> bool {
        self.rate > 0.0 && fastrand::f64() < self.rate
    }
}

/// `router` with faults in front of every route, when the rate is above zero.
pub fn inject(router: Router, faults: Faults) -> Router {
    if faults.rate <= 0.0 {
        return router;
    }
    router.layer(middleware::from_fn(
        move |request: Request, next: Next| async move {
            if !faults.strikes() {
                return next.run(request).await;
            }
            let error = |status: StatusCode| {
                (
                    status,
                    axum::Json(json!({"error": {"code": "50000", "description": "injected"}})),
                )
                    .into_response()
            };
            match fastrand::u8(0..4) {
                0 => error(StatusCode::INTERNAL_SERVER_ERROR),
                1 => error(StatusCode::SERVICE_UNAVAILABLE),
                2 => {
                    let mut response = error(StatusCode::TOO_MANY_REQUESTS);
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                    response
                }
                _ => {
                    tokio::time::sleep(faults.stall).await;
                    error(StatusCode::GATEWAY_TIMEOUT)
                }
            }
        },
    ))
}
