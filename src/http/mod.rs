//! The HTTP surface: one file per resource, merged here with the middleware every route shares.

pub mod auth;
pub mod callbacks;
pub mod console;
pub mod decisions;
pub mod device_validations;
pub mod error;
pub mod fraud_indications;
pub mod health;
pub mod json;
pub mod lists;
pub mod oidc;
pub mod onboardings;
pub mod openapi;
pub mod page;
pub mod policies;
pub mod problems;
pub mod reviews;
pub mod server;
pub mod state;
pub mod subjects;
pub mod wait;
pub mod webhooks;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The contract's body limit.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(onboardings::router())
        .merge(device_validations::router())
        .merge(decisions::router())
        .merge(webhooks::router())
        .merge(reviews::router())
        .merge(callbacks::router())
        .merge(console::router())
        .merge(policies::router())
        .merge(lists::router())
        .merge(subjects::router())
        .merge(fraud_indications::router())
        .merge(health::router())
        .merge(openapi::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(refuse_nul))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.settings.server.body_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.in_flight.clone(),
            limit_in_flight,
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(
            // A server span after OpenTelemetry's HTTP conventions. It carries the route template,
            // never the raw URI: query strings may hold a CPF.
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", |p| p.as_str());
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let method = request.method().as_str();
                    let span = tracing::info_span!(
                        "http",
                        otel.name = %format_args!("{method} {route}"),
                        otel.kind = "server",
                        http.request.method = method,
                        http.route = route,
                        http.response.status_code = tracing::field::Empty,
                        otel.status_code = tracing::field::Empty,
                        request_id,
                        caller = tracing::field::Empty,
                    );
                    crate::telemetry::continue_from_headers(&span, request.headers());
                    span
                })
                .on_response(|response: &Response, _: Duration, span: &tracing::Span| {
                    span.record(
                        "http.response.status_code",
                        i64::from(response.status().as_u16()),
                    );
                    if response.status().is_server_error() {
                        span.record("otel.status_code", "ERROR");
                    }
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// The `Idempotency-Key` header: required, 1 to 255 visible ASCII characters. An extractor, so
/// a request without one is refused before its body is read.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get("idempotency-key")
            .ok_or_else(|| ApiError::BadRequest("the Idempotency-Key header is required".into()))?;
        let key = value
            .to_str()
            .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
        if key.is_empty() || key.len() > 255 {
            return Err(ApiError::BadRequest(
                "Idempotency-Key must have 1 to 255 characters".into(),
            ));
        }
        Ok(IdempotencyKey(key.to_owned()))
    }
}

/// A submission's turn to be read and stored: at most twice `database.max_connections` of them
/// are past this point at once, and the others wait here with their bodies still unread (in the
/// socket, not in the service's memory), so a burst of 10,000 costs their connections and
/// little more. A turn not given within `database.acquire_timeout` is answered 503 with
/// Retry-After, as a pool that gave no connection in that time would be. Taken after the
/// caller's key and the `Idempotency-Key` are checked, before the body is read.
pub struct Admitted(tokio::sync::OwnedSemaphorePermit);

impl Admitted {
    /// The turn ends: the next submission may be read.
    pub fn end(self) {
        drop(self.0);
    }
}

impl axum::extract::FromRequestParts<AppState> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(
        _parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self, ApiError> {
        let wait = st.settings.database.acquire_timeout;
        match tokio::time::timeout(wait, st.admission.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Admitted(permit)),
            _ => {
                crate::metrics::rejected("overloaded");
                Err(ApiError::Unavailable {
                    detail: "too many submissions are being stored; retry after the time in \
                             Retry-After"
                        .into(),
                    retry_after_secs: 1,
                })
            }
        }
    }
}

/// Past `server.max_in_flight` requests in progress, a new one is answered 503 with Retry-After
/// at once (waiting requests count). Health and metrics are always answered.
async fn limit_in_flight(
    axum::extract::State(permits): axum::extract::State<std::sync::Arc<tokio::sync::Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path.starts_with("/health/") || path == "/metrics" {
        return next.run(request).await;
    }
    match permits.try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            crate::metrics::rejected("overloaded");
            ApiError::Unavailable {
                detail: "too many requests in progress; retry after the time in Retry-After".into(),
                retry_after_secs: 1,
            }
            .into_response()
        }
    }
}

/// A NUL (`%00`) in the path or the query: PostgreSQL stores no NUL in text, and no value of
/// ours has a use for one. Answered 422 naming the parameter, before any handler reads it.
async fn refuse_nul(request: Request, next: Next) -> Response {
    let has_nul = |text: &str| {
        text.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    let uri = request.uri();
    if has_nul(uri.path()) {
        return ApiError::validation("path", "must not contain the NUL character").into_response();
    }
    if let Some(query) = uri.query().filter(|q| has_nul(q)) {
        let field = query
            .split('&')
            .find(|pair| has_nul(pair))
            .map(|pair| pair.split('=').next().unwrap_or_default())
            .map(|name| {
                let name = name.replace("%00", "");
                if name.is_empty() {
                    "query".to_owned()
                } else {
                    name
                }
            })
            .unwrap_or_else(|| "query".to_owned());
        return ApiError::validation(field, "must not contain the NUL character").into_response();
    }
    next.run(request).await
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed: Duration = started.elapsed();
    crate::metrics::http_request(method.as_str(), &route, response.status().as_u16(), elapsed);
    if !route.starts_with("/sandbox") {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = elapsed.as_millis() as u64,
            "request"
        );
    }
    response
}
