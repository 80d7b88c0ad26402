//! Clients of the providers veredito calls. Each client takes typed input and answers typed
//! results and typed errors; none of them knows the HTTP surface or the store.

pub mod http;
pub mod pace;
pub mod qitech;
pub mod unico;
pub mod zro;

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

/// What veredito links a provider call to, so the audit trail can show it later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallContext {
    pub onboarding_id: Option<Uuid>,
    pub device_validation_id: Option<Uuid>,
}

impl CallContext {
    pub fn onboarding(id: Uuid) -> Self {
        CallContext {
            onboarding_id: Some(id),
            device_validation_id: None,
        }
    }
}

/// One outbound call, with bodies already redacted by the client that made it: never a selfie,
/// a token, a key, a CPF or a name. What the provider wrote in its own words is only in `said`,
/// which the store seals.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub context: CallContext,
    pub provider: &'static str,
    pub operation: &'static str,
    pub method: &'static str,
    /// The path called, without host or query.
    pub path: String,
    /// None when no HTTP answer came back (timeout, connection error).
    pub http_status: Option<u16>,
    pub latency_ms: u32,
    pub request: Option<Value>,
    /// What veredito read of the answer: the fields its client parses, each a number, a boolean
    /// or a code (`keep_parsed`), never free text.
    pub response: Option<Value>,
    /// The failure as a code (`unico.business.400.20505`, `qitech.refused.422`), never a
    /// provider's message.
    pub error: Option<String>,
    /// The answer and the error as the provider and the client worded them, for the people who
    /// may read personal data.
    pub said: Option<ProviderText>,
}

/// A provider's own words: its answer (credentials removed) and the error message it led to.
/// They may name the person, so they are stored only sealed, shown only with `pii:read`, and
/// never printed: `Debug` shows a placeholder.
#[derive(Clone, PartialEq)]
pub struct ProviderText(pub Value);

impl std::fmt::Debug for ProviderText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderText([sealed])")
    }
}

/// Where clients report their calls. Implementations must not block.
pub trait CallSink: Send + Sync + 'static {
    fn record(&self, call: CallRecord);
}

/// A sink that keeps nothing, for tools and tests that do not audit calls.
pub struct DiscardCalls;

impl CallSink for DiscardCalls {
    fn record(&self, _call: CallRecord) {}
}

pub type SharedSink = Arc<dyn CallSink>;

tokio::task_local! {
    static CAPTURED: RefCell<Vec<CallRecord>>;
}

/// Runs `work` and answers, beside its output, the provider calls it made. They are kept from
/// the sink so the caller can store them in the transaction that stores what they led to: one
/// commit instead of one per call, and no record lost if the process stops in between.
pub async fn capture<F: Future>(work: F) -> (F::Output, Vec<CallRecord>) {
    CAPTURED
        .scope(RefCell::new(Vec::new()), async move {
            let output = work.await;
            let calls = CAPTURED.with(|calls| std::mem::take(&mut *calls.borrow_mut()));
            (output, calls)
        })
        .await
}

/// Where a client reports a call: to the capture of the work in progress, or else to the sink.
pub(crate) fn report(sink: &dyn CallSink, call: CallRecord) {
    crate::metrics::provider_call(
        call.provider,
        call.operation,
        call.http_status,
        call.latency_ms,
    );
    let mut call = Some(call);
    let _ = CAPTURED.try_with(|calls| {
        if let Some(call) = call.take() {
            calls.borrow_mut().push(call);
        }
    });
    if let Some(call) = call {
        sink.record(call);
    }
}

/// A provider's error code as it may be stored and logged: letters, digits, `-` and `_`, at most
/// 24 of them, so a code field that carries anything else cannot smuggle it through.
pub(crate) fn safe_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(24)
        .collect()
}

/// Whether a provider's string reads as a code or an id (letters, digits, `_ - . :`, at most 64)
/// rather than as words a person could be named in.
pub(crate) fn is_code(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// What the call log keeps of an answer in clear: the values at `paths` (dot-separated keys,
/// matched in any letter case) that are numbers, booleans or codes. Everything else a provider
/// wrote (titles, descriptions, messages, echoes of the request) is left out, whatever its key.
pub fn keep_parsed(body: &Value, paths: &[&str]) -> Value {
    let mut kept = serde_json::Map::new();
    for path in paths {
        let mut at = Some(body);
        for key in path.split('.') {
            at = at.and_then(Value::as_object).and_then(|object| {
                object.get(key).or_else(|| {
                    object
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| v)
                })
            });
        }
        let value = match at {
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.clone(),
            Some(Value::String(s)) if is_code(s) => Value::String(s.clone()),
            _ => continue,
        };
        let mut slot = &mut kept;
        let mut keys = path.split('.').peekable();
        while let Some(key) = keys.next() {
            if keys.peek().is_none() {
                slot.insert(key.to_owned(), value);
                break;
            }
            let next = slot
                .entry(key.to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if !next.is_object() {
                // A scalar kept at a shorter path (unicoId as a bare string) stays as it is.
                break;
            }
            slot = next.as_object_mut().expect("checked to be an object");
        }
    }
    Value::Object(kept)
}

/// Replaces the values of the named keys, at any depth, by "[redacted]".
pub fn redact(mut value: Value, keys: &[&str]) -> Value {
    fn walk(value: &mut Value, keys: &[&str]) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if keys.iter().any(|key| key.eq_ignore_ascii_case(k)) {
                        *v = Value::String("[redacted]".to_owned());
                    } else {
                        walk(v, keys);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, keys)),
            _ => {}
        }
    }
    walk(&mut value, keys);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_parsed_fields_that_read_as_codes_are_kept() {
        let said = json!({
            "title": "document_number 400.025.841-90 is registered to Maria Costa",
            "code": "PERSON_CONFLICT", "status": 422, "ok": false,
            "error": {"code": 20505, "description": "Maria Costa"},
            "reason": "Maria Costa 40002584190",
            "unicoId": "yes",
        });
        let kept = keep_parsed(
            &said,
            &[
                "code",
                "status",
                "ok",
                "error.code",
                "error.description",
                "reason",
                "unicoId",
                "unicoId.result",
                "absent.x",
            ],
        );
        assert_eq!(
            kept,
            json!({"code": "PERSON_CONFLICT", "status": 422, "ok": false, "error": {"code": 20505}, "unicoId": "yes"})
        );
    }

    #[test]
    fn redact_replaces_named_keys_at_any_depth() {
        let body = json!({"subject": {"code": "11144477735", "Name": "Maria"}, "imageBase64": "abc", "keep": [{"code": "x"}]});
        let out = redact(body, &["code", "name", "imagebase64"]);
        assert_eq!(
            out,
            json!({"subject": {"code": "[redacted]", "Name": "[redacted]"}, "imageBase64": "[redacted]", "keep": [{"code": "[redacted]"}]})
        );
    }
}
