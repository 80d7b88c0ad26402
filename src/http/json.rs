//! Reading JSON bodies: a body that is not JSON is a 400, JSON with wrong types or missing
//! fields is a 422 naming the field, and a body over the limit is a 413, all as problem+json.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::error::{ApiError, FieldError};

/// The body both as parsed JSON (kept for hashing) and as the typed request.
pub struct JsonBody<T> {
    pub raw: Value,
    pub value: T,
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared = declares_json(&request);
        let bytes = read(request, state).await?;
        if !declared {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse(&bytes)
    }
}

/// A body that may be left out: an empty body is None, anything else is read as `JsonBody`.
pub struct MaybeJson<T>(pub Option<JsonBody<T>>);

impl<S, T> FromRequest<S> for MaybeJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared = declares_json(&request);
        let bytes = read(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(None));
        }
        if !declared {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse(&bytes).map(|body| MaybeJson(Some(body)))
    }
}

/// Whether the request says its body is JSON: `application/json` or a `+json` type.
fn declares_json(request: &Request) -> bool {
    let Some(value) = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 17
            && essence[..12].eq_ignore_ascii_case("application/")
            && essence.to_ascii_lowercase().ends_with("+json"))
}

/// The whole body, under the body limit.
async fn read<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("the body could not be read".into())
            }
        })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<JsonBody<T>, ApiError> {
    let raw: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    if !raw.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    if let Some(field) = nul_at(&raw, "") {
        // PostgreSQL stores no NUL in text or jsonb; no field of ours has a use for one.
        return Err(ApiError::validation(
            field,
            "must not contain the NUL character (\\u0000)",
        ));
    }
    let value = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        ApiError::Validation(vec![FieldError::new(
            field_of(&path, &message),
            clean_message(&message),
        )])
    })?;
    Ok(JsonBody { raw, value })
}

/// serde reports a missing or unknown field at its parent's path; name the field itself.
fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (parent, named) {
        // serde_path_to_error already names an unknown field in the path.
        (parent, Some(name)) if parent == name || parent.ends_with(&format!(".{name}")) => {
            parent.to_owned()
        }
        ("", Some(name)) => name.to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (parent, None) => parent.to_owned(),
    }
}

/// serde's messages mention Rust types; keep the part a caller can act on.
fn clean_message(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .replace("struct ", "object ")
}

/// The path of the first key or string holding a NUL character.
pub fn nul_at(value: &Value, path: &str) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        }),
        Value::Object(map) => map.iter().find_map(|(key, v)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "")))
            } else {
                nul_at(v, &join(key))
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_at(v, &join(&i.to_string()))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::onboarding::OnboardingRequest;

    fn holds_nul(value: &Value) -> bool {
        nul_at(value, "").is_some()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever JSON arrives, reading it answers Ok or a 400/422, never a panic, and a body
        /// with a NUL anywhere is never accepted.
        #[test]
        fn any_json_body_is_read_or_refused(value in crate::testing::json()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            match parse::<OnboardingRequest>(&bytes) {
                Ok(body) => {
                    prop_assert!(!holds_nul(&value));
                    let _ = body.value.validate();
                }
                Err(ApiError::BadRequest(_) | ApiError::Validation(_)) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        /// A valid request with a NUL put into any of its strings is refused, naming the field.
        #[test]
        fn a_nul_in_any_field_is_named(field in prop::sample::select(vec![
            "reference", "person.name", "person.email", "account.account_id",
            "device.device_id", "device.session_id", "device.risk_signals.language",
        ])) {
            let mut value = serde_json::json!({
                "reference": "r", "selfie": "c2VsZmll",
                "person": {"cpf": "111.444.777-35", "name": "n", "email": "a@b.c"},
                "account": {"account_id": "a", "person_id": "p"},
                "device": {"device_id": "d", "session_id": "s", "risk_signals": {"language": "pt"}},
            });
            let mut slot = &mut value;
            for part in field.split('.') {
                slot = &mut slot[part];
            }
            *slot = Value::String("x\u{0}y".into());
            let bytes = serde_json::to_vec(&value).unwrap();
            match parse::<OnboardingRequest>(&bytes) {
                Err(ApiError::Validation(errors)) => prop_assert_eq!(&errors[0].field, field),
                other => prop_assert!(false, "{field}: {:?}", other.err()),
            }
        }

        /// Any bytes: read when they are a valid request; 400 when they are not a JSON object;
        /// 422 naming a field when they are one that is not a valid request. Never anything else.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let object = serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v.is_object());
            match parse::<OnboardingRequest>(&bytes) {
                Ok(_) => prop_assert!(object),
                Err(ApiError::BadRequest(_)) => prop_assert!(!object),
                Err(ApiError::Validation(errors)) => {
                    prop_assert!(object);
                    prop_assert!(!errors.is_empty());
                }
                Err(other) => prop_assert!(false, "unexpected refusal: {other:?}"),
            }
        }
    }
}
