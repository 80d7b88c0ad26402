//! `POST /v1/onboardings` and `GET /v1/onboardings/{id}`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

use crate::http::auth::{Caller, DECISIONS_READ, ONBOARDING_WRITE, Writer};
use crate::http::error::ApiError;
use crate::http::json::JsonBody;
use crate::http::state::AppState;
use crate::http::{Admitted, IdempotencyKey};
use crate::onboarding::{self, FlowError, OnboardingRequest};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/onboardings", post(create))
        .route("/v1/onboardings/{id}", get(show))
}

#[utoipa::path(
    post,
    path = "/v1/onboardings",
    tag = "onboardings",
    operation_id = "createOnboarding",
    params(
        ("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters; a retry with the same key and body answers the first request's result"),
        ("Prefer" = Option<String>, Header, description = "respond-async (202 at once) or wait=N, N seconds from 0 to 60 (RFC 7240)"),
    ),
    request_body(content = crate::onboarding::OnboardingRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided within the wait", body = crate::onboarding::view::OnboardingView, headers(("Preference-Applied" = String, description = "The preference honoured: respond-async or wait=N"))),
        (status = 202, description = "Not decided yet: read it at Location", body = crate::onboarding::view::OnboardingView, headers(("Location" = String, description = "/v1/onboardings/{id}"), ("Preference-Applied" = String, description = "The preference honoured"))),
        crate::http::problems::Conflict,
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn create(
    State(st): State<AppState>,
    Writer(caller): Writer,
    IdempotencyKey(key): IdempotencyKey,
    turn: Admitted,
    headers: HeaderMap,
    body: JsonBody<OnboardingRequest>,
) -> Result<Response, ApiError> {
    let preference = prefer(&headers)?;
    let wait = match preference {
        Preference::RespondAsync => Duration::ZERO,
        Preference::Wait(wait) => wait,
        Preference::None => st.settings.policy.default_wait,
    };
    let request = body.value.validate().map_err(ApiError::Validation)?;
    // serde_json's maps are ordered by key, so this is a canonical form of the body.
    let hash = crate::crypto::sha256(&serde_json::to_vec(&body.raw).unwrap_or_default());
    // The larger steps are boxed: their state is freed when they end, so what a waiting request
    // holds is only the wait's own (10,000 may wait at once).
    let submitted = Box::pin(onboarding::submit(
        &st.flow,
        &caller.name,
        &key,
        &hash,
        &request,
    ))
    .await?;
    turn.end();
    // Nothing of the request is kept while it waits.
    drop((headers, body.raw, request, key, caller));
    let id = submitted.id;
    crate::http::wait::until_decided(&st, id, wait, &submitted.waiter, submitted.decided).await?;
    // Decided on this replica: the answer its transaction committed; otherwise it is read.
    let decided_here = submitted.view.or_else(|| submitted.waiter.take_view());
    drop(submitted.waiter);
    let view = match decided_here {
        Some(view) => view,
        None => {
            let version = st.policies.active().version.clone();
            Box::pin(onboarding::view::load(&st.db, &version, id))
                .await?
                .map(Box::new)
                .ok_or(ApiError::NotFound("onboarding"))?
        }
    };
    let mut response = if view.outcome.is_some() {
        (StatusCode::OK, Json(view)).into_response()
    } else {
        let mut response = (StatusCode::ACCEPTED, Json(view)).into_response();
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/onboardings/{id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    };
    let applied = match preference {
        Preference::RespondAsync => "respond-async".to_owned(),
        _ => format!("wait={}", wait.as_secs()),
    };
    if let Ok(applied) = HeaderValue::from_str(&applied) {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/v1/onboardings/{id}",
    tag = "onboardings",
    operation_id = "getOnboarding",
    params(
        ("id" = String, Path, description = "The onboarding id (a UUID)"),
    ),
    responses(
        (status = 200, description = "The onboarding", body = crate::onboarding::view::OnboardingView),
        crate::http::problems::NotFound,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_any(&[ONBOARDING_WRITE, DECISIONS_READ])?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("onboarding"))?;
    let version = st.policies.active().version.clone();
    let view = onboarding::view::load(&st.db, &version, id)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    Ok(Json(view).into_response())
}

/// What the caller prefers (RFC 7240): `respond-async` (202 at once) wins over `wait=N`
/// (N in seconds from 0 to 60). Other preferences are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preference {
    None,
    Wait(Duration),
    RespondAsync,
}

fn prefer(headers: &HeaderMap) -> Result<Preference, ApiError> {
    let mut found = Preference::None;
    for value in headers.get_all("prefer") {
        let text = value
            .to_str()
            .map_err(|_| ApiError::BadRequest("Prefer header is not ASCII".into()))?;
        for preference in text.split([',', ';']) {
            let preference = preference.trim();
            if preference.eq_ignore_ascii_case("respond-async") {
                return Ok(Preference::RespondAsync);
            }
            let Some((name, seconds)) = preference.split_once('=') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("wait") || found != Preference::None {
                continue;
            }
            found = match seconds.trim().trim_matches('"').parse::<u64>() {
                Ok(n) if n <= 60 => Preference::Wait(Duration::from_secs(n)),
                _ => {
                    return Err(ApiError::BadRequest(
                        "Prefer: wait must be a number of seconds from 0 to 60".into(),
                    ));
                }
            };
        }
    }
    Ok(found)
}

impl From<FlowError> for ApiError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::IdempotencyConflict => ApiError::Conflict(error.to_string()),
            FlowError::ReplaysBusy => {
                crate::metrics::rejected("overloaded");
                ApiError::Unavailable {
                    detail: error.to_string(),
                    retry_after_secs: 5,
                }
            }
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
    fn prefer_parses_wait_and_respond_async_among_other_preferences() {
        assert_eq!(
            prefer(&headers("wait=5")).unwrap(),
            Preference::Wait(Duration::from_secs(5))
        );
        assert_eq!(
            prefer(&headers("wait=0")).unwrap(),
            Preference::Wait(Duration::ZERO)
        );
        assert_eq!(
            prefer(&headers("wait=10, respond-async")).unwrap(),
            Preference::RespondAsync
        );
        assert_eq!(
            prefer(&headers("Respond-Async")).unwrap(),
            Preference::RespondAsync
        );
        assert_eq!(
            prefer(&headers("return=minimal")).unwrap(),
            Preference::None
        );
        assert!(prefer(&headers("wait=61")).is_err());
        assert!(prefer(&headers("wait=abc")).is_err());
    }
}
