//! The one HTTP error type: every failure becomes an RFC 9457 problem+json answer, and nothing
//! internal leaks into it (internal causes are logged with their chain instead).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use crate::domain::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid API key is required")]
    Unauthorized,
    #[error("this API key lacks the scope `{0}`")]
    Forbidden(&'static str),
    /// The key may do this in general, but not here: it would review its own decision.
    #[error("{0}")]
    SeparationOfDuties(String),
    /// A console form posted from a page that is not the console's own.
    #[error("console forms are taken only from the console's own pages")]
    CrossSite,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the body is larger than the 2 MiB limit")]
    PayloadTooLarge,
    #[error("the body must be sent as application/json")]
    UnsupportedMediaType,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// This key sent more requests than its rate allows.
    #[error("too many requests for this API key; retry after the time in Retry-After")]
    RateLimited { retry_after_secs: u64 },
    /// Too many webhooks without the secret reached this replica.
    #[error("too many webhooks without a valid secret; retry after the time in Retry-After")]
    WebhookRateLimited { retry_after_secs: u64 },
    #[error("the request has invalid values")]
    Validation(Vec<FieldError>),
    /// A dependency is down; the caller may retry (with the same Idempotency-Key).
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "bad-request", "Malformed request")
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::SeparationOfDuties(_) => (
                StatusCode::FORBIDDEN,
                "separation-of-duties",
                "Separation of duties",
            ),
            ApiError::CrossSite => (StatusCode::FORBIDDEN, "cross-site", "Cross-site request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::RateLimited { .. } | ApiError::WebhookRateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid values",
            ),
            ApiError::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

/// Every refusal's body (RFC 9457 problem+json); `errors` only for invalid values.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<FieldError>, required = false)]
    errors: Option<&'a [FieldError]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let problem = Problem {
            kind: format!("/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            errors: match &self {
                ApiError::Validation(errors) => Some(errors),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::Unavailable {
            retry_after_secs, ..
        }
        | ApiError::RateLimited { retry_after_secs }
        | ApiError::WebhookRateLimited { retry_after_secs } = &self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if matches!(self, ApiError::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => {
                tracing::warn!(error = %error, "database unreachable");
                ApiError::Unavailable {
                    detail: "the database is unreachable".into(),
                    retry_after_secs: 5,
                }
            }
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Database(e) => e.into(),
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}
