//! `POST /v1/device-validations` and `GET /v1/device-validations/{id}`: QI Tech's validation of
//! a returning user's device.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use crate::http::auth::{Caller, DECISIONS_READ, ONBOARDING_WRITE, Writer};
use crate::http::error::{ApiError, FieldError};
use crate::http::json::JsonBody;
use crate::http::state::AppState;
use crate::http::{Admitted, IdempotencyKey};
use crate::onboarding::validation::DeviceValidationView;
use crate::onboarding::{self, ValidationRequest};
use crate::store::device_validations;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/device-validations", post(create))
        .route("/v1/device-validations/{id}", get(show))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceValidationBody {
    account_id: String,
    person_id: String,
    session_id: String,
    #[serde(default)]
    face_recognition_key: Option<String>,
    #[serde(default)]
    reference: Option<String>,
}

impl DeviceValidationBody {
    fn validate(self) -> Result<ValidationRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, value, max) in [
            ("account_id", &self.account_id, 100),
            ("person_id", &self.person_id, 100),
        ] {
            errors.extend(crate::domain::field::provider_id(field, value, max));
        }
        for (field, value, max) in [("session_id", &self.session_id, 200)] {
            if value.trim().is_empty() {
                errors.push(FieldError::new(field, "must not be empty"));
            } else if value.len() > max {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {max} characters"),
                ));
            }
        }
        if self
            .face_recognition_key
            .as_ref()
            .is_some_and(|k| k.len() > 500)
        {
            errors.push(FieldError::new(
                "face_recognition_key",
                "must be at most 500 characters",
            ));
        }
        if self.reference.as_ref().is_some_and(|r| r.len() > 255) {
            errors.push(FieldError::new(
                "reference",
                "must be at most 255 characters",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidationRequest {
            reference: self.reference,
            account_id: self.account_id,
            person_id: self.person_id,
            session_id: self.session_id,
            face_recognition_key: self.face_recognition_key.filter(|k| !k.is_empty()),
        })
    }
}

#[utoipa::path(
    post,
    path = "/v1/device-validations",
    tag = "device validations",
    operation_id = "createDeviceValidation",
    params(
        ("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters; a retry with the same key and body answers the first request's result"),
    ),
    request_body(content = crate::http::device_validations::DeviceValidationBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided", body = crate::onboarding::validation::DeviceValidationView),
        (status = 202, description = "QI Tech has not concluded yet", body = crate::onboarding::validation::DeviceValidationView, headers(("Location" = String, description = "/v1/device-validations/{id}"))),
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
    body: JsonBody<DeviceValidationBody>,
) -> Result<Response, ApiError> {
    let request = body.value.validate().map_err(ApiError::Validation)?;
    // serde_json's maps are ordered by key, so this is a canonical form of the body.
    let hash = crate::crypto::sha256(&serde_json::to_vec(&body.raw).unwrap_or_default());
    let (id, started) =
        onboarding::submit_validation(&st.flow, &caller.name, &key, &hash, &request).await?;
    turn.end();
    // QI Tech usually answers at once: give the first send the time a caller would wait for
    // an onboarding. A slower answer is carried on by the step and read with GET.
    let deadline = tokio::time::Instant::now() + st.settings.policy.default_wait;
    for step in started {
        let _ = tokio::time::timeout_at(deadline, step).await;
    }
    let row = device_validations::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("device validation"))?;
    let decided = row.state == "decided";
    let mut response = if decided {
        (StatusCode::OK, Json(DeviceValidationView::from(row))).into_response()
    } else {
        (StatusCode::ACCEPTED, Json(DeviceValidationView::from(row))).into_response()
    };
    if !decided {
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/device-validations/{id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/v1/device-validations/{id}",
    tag = "device validations",
    operation_id = "getDeviceValidation",
    params(
        ("id" = String, Path, description = "The device validation id (a UUID)"),
    ),
    responses(
        (status = 200, description = "The device validation", body = crate::onboarding::validation::DeviceValidationView),
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
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("device validation"))?;
    let row = device_validations::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("device validation"))?;
    Ok(Json(DeviceValidationView::from(row)).into_response())
}
