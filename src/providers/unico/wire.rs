//! JSON shapes exchanged with unico, and how loosely their answers are read.
//!
//! Answers are read through `serde_json::Value` rather than derived structs: unico's pages show
//! the same fields in camelCase and in PascalCase, numbers sometimes arrive as strings, and a
//! field we do not know must never make a valid answer unreadable.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::evidence::BiometricResult;

use super::{CreateProcess, Subject, UnicoError};

pub(crate) const REDACTED: &str = "[redacted]";

/// Body of `POST /processes/v1`. Borrowed, so the selfie is not copied more than needed.
#[derive(Serialize)]
pub(crate) struct CreateProcessBody<'a> {
    subject: SubjectBody<'a>,
    #[serde(rename = "imageBase64")]
    image_base64: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubjectBody<'a> {
    code: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gender: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    birth_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
}

/// An empty optional field would be validated by unico (and refused, e.g. 20508 for gender), so
/// blank counts as absent.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl<'a> CreateProcessBody<'a> {
    pub(crate) fn new(request: &'a CreateProcess, image_base64: &'a str) -> Self {
        let s: &Subject = &request.subject;
        CreateProcessBody {
            subject: SubjectBody {
                code: &s.code,
                name: &s.name,
                gender: present(&s.gender),
                birth_date: present(&s.birth_date),
                email: present(&s.email),
                phone: present(&s.phone),
            },
            image_base64,
        }
    }

    /// The same shape with every personal value replaced, for the audit trail. Built from the
    /// request rather than by redacting the real body, so the selfie never enters a `Value`.
    pub(crate) fn for_record(request: &CreateProcess) -> Value {
        let s = &request.subject;
        let hide = |v: &Option<String>| present(v).map(|_| REDACTED);
        let body = CreateProcessBody {
            subject: SubjectBody {
                code: REDACTED,
                name: REDACTED,
                gender: present(&s.gender),
                birth_date: hide(&s.birth_date),
                email: hide(&s.email),
                phone: hide(&s.phone),
            },
            image_base64: REDACTED,
        };
        serde_json::to_value(body).unwrap_or(Value::Null)
    }
}

/// Looks a key up by its documented camelCase spelling, then in any letter case (`Id`, `ID`).
fn field<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object
        .get(name)
        .or_else(|| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn as_i32(value: &Value) -> Option<i32> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `unicoId` and `identityFraudsters` are objects with a `result`; a bare string is taken too.
fn result_of(value: &Value) -> Option<String> {
    let raw = match value {
        Value::Object(inner) => field(inner, "result")?.as_str()?,
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    let raw = raw.trim();
    (!raw.is_empty()).then(|| raw.to_ascii_lowercase())
}

/// Reads a process answer (CreateProcess or GetProcess).
pub(crate) fn parse_process(body: &Value) -> Result<BiometricResult, UnicoError> {
    let object = body
        .as_object()
        .ok_or_else(|| UnicoError::Decode("the process answer is not a JSON object".into()))?;

    let process_id = match field(object, "id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(UnicoError::Decode("the process id is not a string".into())),
        None => return Err(UnicoError::Decode("the process answer has no id".into())),
    };
    let status = match field(object, "status") {
        Some(v) => as_i32(v)
            .ok_or_else(|| UnicoError::Decode(format!("the process status {v} is not a number")))?,
        None => {
            return Err(UnicoError::Decode(
                "the process answer has no status".into(),
            ));
        }
    };

    Ok(BiometricResult {
        process_id,
        status,
        unico_id: field(object, "unicoId").and_then(result_of),
        liveness: field(object, "liveness").and_then(as_i32),
        identity_fraudsters: field(object, "identityFraudsters").and_then(result_of),
        score: field(object, "score").and_then(as_i32),
    })
}

/// `{"error": {"code", "description"}}`, the code as a string or a number.
pub(crate) struct BusinessError {
    pub code: String,
    pub description: String,
}

pub(crate) fn parse_business_error(body: &Value) -> Option<BusinessError> {
    let error = field(body.as_object()?, "error")?.as_object()?;
    let code = match field(error, "code")? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let description = field(error, "description")
        .or_else(|| field(error, "message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some(BusinessError { code, description })
}

/// The identity host's OAuth2 error, `{"error": "...", "error_description": "..."}`.
pub(crate) fn parse_oauth_error(body: &Value) -> Option<String> {
    let object = body.as_object()?;
    let error = object.get("error")?.as_str()?;
    match object.get("error_description").and_then(Value::as_str) {
        Some(description) => Some(format!("{error}: {description}")),
        None => Some(error.to_owned()),
    }
}

pub(crate) struct TokenAnswer {
    pub access_token: String,
    pub expires_in: Option<u64>,
    pub token_type: Option<String>,
}

pub(crate) fn parse_token(body: &Value) -> Result<TokenAnswer, UnicoError> {
    let object = body
        .as_object()
        .ok_or_else(|| UnicoError::Decode("the token answer is not a JSON object".into()))?;
    let access_token = object
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| UnicoError::Decode("the token answer has no access_token".into()))?
        .to_owned();
    let expires_in = object.get("expires_in").and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let token_type = object
        .get("token_type")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(TokenAnswer {
        access_token,
        expires_in,
        token_type,
    })
}

/// The fields of unico's answers the client reads (processes, business errors, the token
/// exchange): all the call log keeps of them in clear.
pub(crate) const PARSED: &[&str] = &[
    "id",
    "status",
    "unicoId",
    "unicoId.result",
    "liveness",
    "identityFraudsters",
    "identityFraudsters.result",
    "score",
    "error",
    "error.code",
    "token_type",
    "expires_in",
];

/// What the sealed copy of an answer keeps: never a token, nor the personal data unico was sent
/// by its key or its shape (a CPF-like number), should unico's text quote it.
pub(crate) fn for_record(body: Value) -> Value {
    let mut body = crate::providers::redact(
        body,
        &[
            "access_token",
            "refresh_token",
            "id_token",
            "assertion",
            "subject",
            "name",
            "birthDate",
            "email",
            "phone",
            "imageBase64",
            "cpf",
        ],
    );
    scrub_strings(&mut body);
    body
}

fn scrub_strings(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Some(clean) = crate::providers::http::scrub_document_numbers(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_strings),
        Value::Object(map) => map.values_mut().for_each(scrub_strings),
        _ => {}
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever unico answers, reading it is total: a result or an error, never a panic;
        /// a result always has an id and lowercase verdicts; the record keeps no token.
        #[test]
        fn any_answer_is_read_or_refused(body in crate::testing::json()) {
            if let Ok(result) = parse_process(&body) {
                prop_assert!(!result.process_id.is_empty());
                for verdict in [&result.unico_id, &result.identity_fraudsters].into_iter().flatten() {
                    prop_assert_eq!(verdict, &verdict.to_ascii_lowercase());
                }
            }
            if let Ok(token) = parse_token(&body) {
                prop_assert!(!token.access_token.is_empty());
            }
            let _ = parse_business_error(&body);
            let _ = parse_oauth_error(&body);
            let kept = for_record(body.clone()).to_string();
            if let Some(token) = body.get("access_token").and_then(Value::as_str) {
                if token.len() > 8 {
                    prop_assert!(!kept.contains(token));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::http::scrub_document_numbers;
    use serde_json::json;

    #[test]
    fn camel_case_answer_with_unknown_fields() {
        let body = json!({
            "id": "80371b2a-3ac7-432e-866d-57fe37896ac6",
            "status": 3,
            "unicoId": {"result": "Inconclusive", "extra": true},
            "liveness": 1,
            "identityFraudsters": {"result": "SUSPICIOUS"},
            "score": 50,
            "somethingNew": {"nested": [1, 2]}
        });
        let parsed = parse_process(&body).expect("valid answer");
        assert_eq!(
            parsed,
            BiometricResult {
                process_id: "80371b2a-3ac7-432e-866d-57fe37896ac6".into(),
                status: 3,
                unico_id: Some("inconclusive".into()),
                liveness: Some(1),
                identity_fraudsters: Some("suspicious".into()),
                score: Some(50),
            }
        );
    }

    #[test]
    fn pascal_case_answer() {
        let body = json!({
            "Id": "abc", "Status": 3, "UnicoId": {"Result": "YES"},
            "IdentityFraudsters": {"Result": "Inconclusive"}, "Score": -40, "Liveness": 1
        });
        let parsed = parse_process(&body).expect("valid answer");
        assert_eq!(parsed.process_id, "abc");
        assert_eq!(parsed.unico_id.as_deref(), Some("yes"));
        assert_eq!(parsed.identity_fraudsters.as_deref(), Some("inconclusive"));
        assert_eq!(parsed.score, Some(-40));
        assert_eq!(parsed.liveness, Some(1));
    }

    #[test]
    fn absent_optional_fields_stay_absent() {
        let parsed = parse_process(&json!({"id": "x", "status": 5})).expect("valid answer");
        assert_eq!(
            parsed,
            BiometricResult {
                process_id: "x".into(),
                status: 5,
                ..Default::default()
            }
        );
        let parsed = parse_process(&json!({"id": "x", "status": "1", "liveness": null}))
            .expect("numeric string status");
        assert_eq!(parsed.status, 1);
        assert_eq!(parsed.liveness, None);
    }

    #[test]
    fn missing_id_or_status_is_a_decode_error() {
        for body in [
            json!({"status": 3}),
            json!({"id": "x"}),
            json!({"id": "", "status": 3}),
            json!({"id": "x", "status": "done"}),
            json!([1]),
        ] {
            assert!(
                matches!(parse_process(&body), Err(UnicoError::Decode(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn business_error_code_as_string_or_number() {
        let e = parse_business_error(&json!({"error": {"code": "20507", "description": "CPF"}}))
            .expect("string code");
        assert_eq!((e.code.as_str(), e.description.as_str()), ("20507", "CPF"));
        let e = parse_business_error(&json!({"error": {"code": 10502, "description": "expired"}}))
            .expect("numeric code");
        assert_eq!(e.code, "10502");
        assert!(parse_business_error(&json!({"error": "server_error"})).is_none());
        assert!(parse_business_error(&json!({"message": "no"})).is_none());
    }

    #[test]
    fn record_bodies_lose_cpf_like_numbers_and_tokens() {
        let body = json!({
            "error": {"code": "20507", "description": "CPF 111.444.777-35 inválido (11144477735)"},
            "access_token": "secret",
            "id": "80371b2a-3ac7-432e-866d-57fe37896ac6"
        });
        let out = for_record(body);
        assert_eq!(
            out,
            json!({
                "error": {"code": "20507", "description": "CPF [redacted] inválido ([redacted])"},
                "access_token": "[redacted]",
                "id": "80371b2a-3ac7-432e-866d-57fe37896ac6"
            })
        );
        assert_eq!(scrub_document_numbers("status 3, score -40"), None);
    }
}
