//! Helpers for the device tests: request bodies, and small fakes of QI Tech and Zro that count and
//! record what veredito sends them. The app itself is started by `common::TestApp`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

/// The sandbox CPF that unico approves in CreateProcess's own answer.
pub const APPROVED_CPF: &str = "900.000.001-75";
pub const QITECH_KEY: &str = "sandbox-qitech-key";

/// An onboarding of the sandbox's synchronously approved person with the given device.
pub fn body(device_id: &str, signals: Value, enrollment: Option<&str>) -> Value {
    let mut body = json!({
        "reference": format!("ref-{}", Uuid::new_v4().simple()),
        "person": {"cpf": APPROVED_CPF, "name": "Maria Silva", "birth_date": "1990-01-31", "gender": "F",
                   "email": "m@example.com", "phone": "5511974749090"},
        "selfie": "c2VsZmll",
        "account": {"account_id": "acc-1", "person_id": "per-1"},
        "device": {"device_id": device_id, "session_id": "scan-session-1", "face_recognition_key": "face-key-1",
                   "risk_signals": signals},
    });
    if let Some(enrollment) = enrollment {
        body["open_finance"] = json!({ "enrollment_id": enrollment });
    }
    body
}

pub fn full_signals() -> Value {
    json!({"os_version": "14", "user_time_zone_offset": "-03", "language": "pt", "screen_width": 1080,
           "screen_height": 2400, "is_emulated": false, "is_rooted_device": false, "device_latitude": -23.5,
           "device_longitude": -46.6, "device_geolocation_type": "FINE"})
}

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// What the QI Tech fake answers.
#[derive(Debug, Clone)]
pub struct QitechScript {
    pub account_conflict: bool,
    pub person_conflict: bool,
    /// The person POST answers 422 with a title, a description and an error list that quote
    /// the person's name and CPF (punctuated and as digits) from the request.
    pub person_echo_refusal: bool,
    /// The first N device POSTs answer 500 without registering.
    pub device_failures: usize,
    /// The device POST answers 409 (already registered).
    pub device_conflict: bool,
    /// The device as POST and GET answer it.
    pub device: Value,
}

impl Default for QitechScript {
    fn default() -> Self {
        QitechScript {
            account_conflict: false,
            person_conflict: false,
            person_echo_refusal: false,
            device_failures: 0,
            device_conflict: false,
            device: json!({"device_id": "dev-fake", "status": "registered", "analysis_status": "automatically_approved",
                           "reason": "ok", "reason_description": "fine"}),
        }
    }
}

#[derive(Default)]
pub struct FakeState {
    pub qitech: QitechScript,
    /// The first N risk signals answer 503.
    pub zro_failures: usize,
    pub seen: Vec<Seen>,
}

/// One fake server playing both QI Tech (`/qitech`) and Zro (`/zro`).
#[derive(Clone)]
pub struct Fake {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
}

impl Fake {
    pub async fn start(qitech: QitechScript, zro_failures: usize) -> Fake {
        let state = Arc::new(Mutex::new(FakeState {
            qitech,
            zro_failures,
            seen: Vec::new(),
        }));
        let shared = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { answer(&state, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake { url, state }
    }

    pub fn qitech_url(&self) -> String {
        format!("{}/qitech", self.url)
    }

    pub fn zro_url(&self) -> String {
        format!("{}/zro", self.url)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// "METHOD path" of every request, in order.
    pub fn log(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    pub fn script(&self, change: impl FnOnce(&mut FakeState)) {
        change(&mut self.state.lock().unwrap());
    }
}

fn answer(
    state: &Mutex<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.seen.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        headers,
        body,
    });
    let post = method == Method::POST;
    let reply = |status: u16, body: Value| {
        (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
    };
    if path == "/zro/auth/signin" {
        let n = state
            .seen
            .iter()
            .filter(|s| s.path == "/zro/auth/signin")
            .count();
        return reply(200, json!({ "access_token": format!("token-{n}") }));
    }
    if path.starts_with("/zro/open-finance/") {
        if state.zro_failures > 0 {
            state.zro_failures -= 1;
            return reply(503, json!({"code": "UNAVAILABLE", "message": "later"}));
        }
        return reply(200, json!({ "id": Uuid::new_v4() }));
    }
    let q = state.qitech.clone();
    if post && path.ends_with("/device_manager/account") {
        return if q.account_conflict {
            reply(409, json!({"title": "conflict"}))
        } else {
            reply(201, json!({}))
        };
    }
    if post && path.ends_with("/person") {
        if q.person_echo_refusal {
            let sent = &state.seen.last().expect("this request").body;
            let document = sent["document_number"].as_str().unwrap_or_default();
            let digits: String = document.chars().filter(char::is_ascii_digit).collect();
            let name = sent["person_data"]["name"].as_str().unwrap_or_default();
            return reply(
                422,
                json!({
                    "title": format!("document_number {document} is registered to {name}"),
                    "description": format!("CPF {digits} pertence a {name}"),
                    "code": "PERSON_DOCUMENT_CONFLICT",
                    "errors": [{"field": "document_number", "message": format!("{name}: {document}")}],
                }),
            );
        }
        return if q.person_conflict {
            reply(409, json!({"title": "conflict"}))
        } else {
            reply(201, json!({}))
        };
    }
    if post && path.ends_with("/device") {
        if state.qitech.device_failures > 0 {
            state.qitech.device_failures -= 1;
            return reply(500, json!({"title": "internal"}));
        }
        return if q.device_conflict {
            reply(409, json!({"title": "conflict"}))
        } else {
            reply(201, q.device)
        };
    }
    if !post && path.contains("/device/") {
        return reply(200, q.device);
    }
    reply(404, json!({"title": "not found"}))
}
