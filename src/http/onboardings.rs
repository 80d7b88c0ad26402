//! `POST /v1/onboardings` and `GET /v1/onboardings/{id}`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::{Caller, DECISIONS_READ, ONBOARDING_WRITE};
use crate::http::error::ApiError;
use crate::http::json::JsonBody;
use crate::onboarding::{self, FlowError, OnboardingRequest};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/onboardings", post(create))
        .route("/v1/onboardings/{id}", get(show))
}

async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody<OnboardingRequest>,
) -> Result<Response, ApiError> {
    caller.require(ONBOARDING_WRITE)?;
    let key = crate::http::idempotency_key(&headers)?;
    let wait = prefer_wait(&headers)?.unwrap_or(st.settings.policy.default_wait);
    let request = body.value.validate().map_err(ApiError::Validation)?;
    // serde_json's maps are ordered by key, so this is a canonical form of the body.
    let hash = crate::crypto::sha256(&serde_json::to_vec(&body.raw).unwrap_or_default());
    let id = onboarding::submit(&st, &caller.name, key, &hash, &request).await?;
    let decided = onboarding::wait::until_decided(&st, id, wait).await?;
    let view = onboarding::view::load(&st, id)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    let mut response = if decided {
        (StatusCode::OK, Json(view)).into_response()
    } else {
        let mut response = (StatusCode::ACCEPTED, Json(view)).into_response();
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/onboardings/{id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    };
    if let Ok(applied) = HeaderValue::from_str(&format!("wait={}", wait.as_secs())) {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_any(&[ONBOARDING_WRITE, DECISIONS_READ])?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("onboarding"))?;
    let view = onboarding::view::load(&st, id)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    Ok(Json(view).into_response())
}

/// `Prefer: wait=N` (RFC 7240), N in seconds from 0 to 60. Other preferences are ignored.
fn prefer_wait(headers: &HeaderMap) -> Result<Option<Duration>, ApiError> {
    for value in headers.get_all("prefer") {
        let text = value
            .to_str()
            .map_err(|_| ApiError::BadRequest("Prefer header is not ASCII".into()))?;
        for preference in text.split([',', ';']) {
            let Some((name, seconds)) = preference.split_once('=') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("wait") {
                continue;
            }
            return match seconds.trim().trim_matches('"').parse::<u64>() {
                Ok(n) if n <= 60 => Ok(Some(Duration::from_secs(n))),
                _ => Err(ApiError::BadRequest(
                    "Prefer: wait must be a number of seconds from 0 to 60".into(),
                )),
            };
        }
    }
    Ok(None)
}

impl From<FlowError> for ApiError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::IdempotencyConflict => ApiError::Conflict(error.to_string()),
            FlowError::ProviderUnavailable(e) => ApiError::Unavailable {
                detail: format!("{e}; retry with the same Idempotency-Key"),
                retry_after_secs: match e {
                    crate::providers::unico::UnicoError::RateLimited {
                        retry_after: Some(d),
                    } => d.as_secs().max(1),
                    _ => 5,
                },
            },
            FlowError::ProviderRefused(e) => ApiError::BadGateway(format!("{e}")),
            FlowError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(prefer: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("prefer", HeaderValue::from_str(prefer).unwrap());
        h
    }

    #[test]
    fn prefer_wait_parses_seconds_among_other_preferences() {
        assert_eq!(
            prefer_wait(&headers("wait=5")).unwrap(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            prefer_wait(&headers("respond-async, wait=0")).unwrap(),
            Some(Duration::ZERO)
        );
        assert_eq!(prefer_wait(&headers("return=minimal")).unwrap(), None);
        assert!(prefer_wait(&headers("wait=61")).is_err());
        assert!(prefer_wait(&headers("wait=abc")).is_err());
    }
}
