//! Helpers for the device tests: request bodies, and one fake of QI Tech and Zro (a wiremock
//! server) that answers as scripted and records what veredito sends them. The app itself is
//! started by `common::TestApp`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{any, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

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
    /// The first N device POSTs answer 500 without registering (all of them, until
    /// `Fake::devices_recover`, with `usize::MAX`).
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

/// One fake server playing both QI Tech (`/qitech`) and Zro (`/zro`).
pub struct Fake {
    server: MockServer,
    /// The device POSTs that are still to fail.
    device_failures: Arc<AtomicUsize>,
}

/// QI Tech's device POST: 500 without registering while failures remain (a count the test may
/// set to 0 meanwhile), then `answer`.
struct DevicePost {
    failures: Arc<AtomicUsize>,
    answer: ResponseTemplate,
}

impl Respond for DevicePost {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match failing {
            Ok(_) => reply(500, json!({"title": "internal"})),
            Err(_) => self.answer.clone(),
        }
    }
}

fn reply(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// A conflict when `conflict`, else created with `created`.
fn created_unless(conflict: bool, created: Value) -> ResponseTemplate {
    if conflict {
        reply(409, json!({"title": "conflict"}))
    } else {
        reply(201, created)
    }
}

/// QI Tech's refusal of a person, in words that quote the name and CPF it was sent.
fn person_echo_refusal(request: &Request) -> ResponseTemplate {
    let sent: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let document = sent["document_number"].as_str().unwrap_or_default();
    let digits: String = document.chars().filter(char::is_ascii_digit).collect();
    let name = sent["person_data"]["name"].as_str().unwrap_or_default();
    reply(
        422,
        json!({
            "title": format!("document_number {document} is registered to {name}"),
            "description": format!("CPF {digits} pertence a {name}"),
            "code": "PERSON_DOCUMENT_CONFLICT",
            "errors": [{"field": "document_number", "message": format!("{name}: {document}")}],
        }),
    )
}

impl Fake {
    /// QI Tech as `qitech` says; Zro's first `zro_failures` risk signals answer 503.
    pub async fn start(qitech: QitechScript, zro_failures: usize) -> Fake {
        let server = MockServer::start().await;
        // Zro: a new token at each sign-in, counted.
        let signins = AtomicUsize::new(0);
        Mock::given(path("/zro/auth/signin"))
            .respond_with(move |_: &Request| {
                let n = signins.fetch_add(1, Ordering::Relaxed) + 1;
                reply(200, json!({ "access_token": format!("token-{n}") }))
            })
            .mount(&server)
            .await;
        if zro_failures > 0 {
            Mock::given(path_regex("^/zro/open-finance/"))
                .respond_with(reply(
                    503,
                    json!({"code": "UNAVAILABLE", "message": "later"}),
                ))
                .up_to_n_times(zro_failures as u64)
                .with_priority(1)
                .mount(&server)
                .await;
        }
        Mock::given(path_regex("^/zro/open-finance/"))
            .respond_with(|_: &Request| reply(200, json!({ "id": Uuid::new_v4() })))
            .mount(&server)
            .await;
        // QI Tech.
        Mock::given(method("POST"))
            .and(path_regex("/device_manager/account$"))
            .respond_with(created_unless(qitech.account_conflict, json!({})))
            .mount(&server)
            .await;
        let person = Mock::given(method("POST")).and(path_regex("/person$"));
        if qitech.person_echo_refusal {
            person
                .respond_with(person_echo_refusal)
                .mount(&server)
                .await;
        } else {
            person
                .respond_with(created_unless(qitech.person_conflict, json!({})))
                .mount(&server)
                .await;
        }
        let device_failures = Arc::new(AtomicUsize::new(qitech.device_failures));
        Mock::given(method("POST"))
            .and(path_regex("/device$"))
            .respond_with(DevicePost {
                failures: device_failures.clone(),
                answer: created_unless(qitech.device_conflict, qitech.device.clone()),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex("/device/"))
            .respond_with(reply(200, qitech.device))
            .mount(&server)
            .await;
        Mock::given(any())
            .respond_with(reply(404, json!({"title": "not found"})))
            .with_priority(u8::MAX)
            .mount(&server)
            .await;
        Fake {
            server,
            device_failures,
        }
    }

    pub fn qitech_url(&self) -> String {
        format!("{}/qitech", self.server.uri())
    }

    pub fn zro_url(&self) -> String {
        format!("{}/zro", self.server.uri())
    }

    /// Every request received, in order.
    pub async fn seen(&self) -> Vec<Seen> {
        let received = self.server.received_requests().await;
        received
            .expect("the fake records requests")
            .into_iter()
            .map(|request| Seen {
                method: request.method.to_string(),
                path: request.url.path().to_owned(),
                body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
                headers: request.headers,
            })
            .collect()
    }

    /// "METHOD path" of every request, in order.
    pub async fn log(&self) -> Vec<String> {
        self.seen()
            .await
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    /// QI Tech registers devices from now on.
    pub fn devices_recover(&self) {
        self.device_failures.store(0, Ordering::SeqCst);
    }
}
