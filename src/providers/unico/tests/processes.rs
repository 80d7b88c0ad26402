//! CreateProcess and GetProcess: what the client sends, and how it reads each kind of answer.

use std::time::Instant as StdInstant;

use serde_json::json;

use super::fake::{Answer, Fake};
use super::*;

#[tokio::test]
async fn sends_bearer_token_and_apikey() {
    let fake = Fake::start().await;
    let (client, _) = fake.client();
    client
        .create_process(&request(), ctx())
        .await
        .expect("create_process");
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("get_process");
    let token = lock(&fake.identity.tokens)
        .keys()
        .next()
        .cloned()
        .expect("issued token");
    for seen in fake.seen().await {
        assert_eq!(
            seen.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str()),
            "{seen:?}"
        );
        assert_eq!(seen.api_key.as_deref(), Some(API_KEY), "{seen:?}");
    }
}

#[tokio::test]
async fn create_process_body_has_the_documented_shape() {
    let fake = Fake::start().await;
    let (client, _) = fake.client();
    let result = client
        .create_process(&request(), ctx())
        .await
        .expect("create_process");
    assert_eq!(result.status, 1);
    client
        .create_process(&minimal_request(), ctx())
        .await
        .expect("create_process");

    let seen = fake.seen().await;
    assert_eq!(seen[0].raw_path, "/api/processes/v1");
    assert_eq!(
        seen[0].body,
        Some(json!({
            "subject": {"code": CPF, "name": NAME, "gender": "F", "birthDate": BIRTH_DATE, "email": EMAIL, "phone": PHONE},
            "imageBase64": SELFIE
        }))
    );
    assert_eq!(
        seen[1].body,
        Some(json!({"subject": {"code": CPF, "name": NAME}, "imageBase64": SELFIE}))
    );
}

#[tokio::test]
async fn get_process_percent_encodes_the_id() {
    let fake = Fake::start().await;
    let (client, recorder) = fake.client();
    let hostile = "../v2/x y?z#w";
    client
        .get_process(hostile, ctx())
        .await
        .expect("get_process");
    let seen = fake.seen().await;
    assert_eq!(seen[0].id.as_deref(), Some(hostile));
    assert_eq!(
        seen[0].raw_path,
        "/api/processes/v1/..%2Fv2%2Fx%20y%3Fz%23w"
    );
    let get = recorder
        .calls()
        .into_iter()
        .find(|c| c.operation == "get_process")
        .expect("record");
    assert_eq!(get.path, seen[0].raw_path);
    assert_eq!(get.method, "GET");
    assert_eq!(get.request, None);
}

#[tokio::test]
async fn reads_both_key_spellings_and_ignores_unknown_fields() {
    let fake = Fake::start().await;
    fake.answer(Answer::Json(
        200,
        json!({"id": PROCESS_ID, "status": 3, "unicoId": {"result": "Inconclusive"}, "liveness": 1,
               "identityFraudsters": {"result": "SUSPICIOUS"}, "score": -40, "novidade": {"a": [1]}}),
    )).await;
    fake.answer(Answer::Json(
        200,
        json!({"Id": PROCESS_ID, "Status": 3, "UnicoId": {"Result": "YES"},
               "IdentityFraudsters": {"Result": "inconclusive"}, "Extra": null}),
    ))
    .await;
    let (client, _) = fake.client();
    let camel = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("camelCase");
    assert_eq!(
        camel,
        BiometricResult {
            process_id: PROCESS_ID.into(),
            status: 3,
            unico_id: Some("inconclusive".into()),
            liveness: Some(1),
            identity_fraudsters: Some("suspicious".into()),
            score: Some(-40),
        }
    );
    let pascal = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("PascalCase");
    assert_eq!(
        pascal,
        BiometricResult {
            process_id: PROCESS_ID.into(),
            status: 3,
            unico_id: Some("yes".into()),
            liveness: None,
            identity_fraudsters: Some("inconclusive".into()),
            score: None,
        }
    );
}

#[tokio::test]
async fn answer_without_id_or_status_is_a_decode_error() {
    let fake = Fake::start().await;
    fake.answer(Answer::Json(200, json!({"status": 3}))).await;
    fake.answer(Answer::Json(200, json!({"id": PROCESS_ID})))
        .await;
    fake.answer(Answer::Raw(
        200,
        vec![("content-type", "text/html")],
        "<html>ok</html>",
    ))
    .await;
    let (client, _) = fake.client();
    for _ in 0..3 {
        let error = client
            .get_process(PROCESS_ID, ctx())
            .await
            .expect_err("decode");
        assert!(matches!(error, UnicoError::Decode(_)), "{error:?}");
    }
}

#[tokio::test]
async fn business_errors_are_typed_with_their_code() {
    let fake = Fake::start().await;
    fake.answer(Answer::Json(
        400,
        json!({"error": {"code": "20507", "description": "CPF inválido"}}),
    ))
    .await;
    fake.answer(Answer::Json(
        400,
        json!({"error": {"code": 20506, "description": "imagem acima de 800KB"}}),
    ))
    .await;
    fake.answer(Answer::Raw(404, vec![], "not found")).await;
    let (client, _) = fake.client();

    let error = client
        .create_process(&request(), ctx())
        .await
        .expect_err("20507");
    assert_eq!(
        error,
        UnicoError::Business {
            http_status: 400,
            code: "20507".into(),
            description: "CPF inválido".into()
        }
    );
    assert!(error.capture_problem().is_none() && !error.is_transient());

    let error = client
        .create_process(&request(), ctx())
        .await
        .expect_err("20506");
    assert!(
        matches!(&error, UnicoError::Business { code, .. } if code == "20506"),
        "{error:?}"
    );
    assert_eq!(error.capture_problem(), Some("20506"));

    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("404");
    assert!(
        matches!(&error, UnicoError::Business { http_status: 404, code, .. } if code.is_empty()),
        "{error:?}"
    );
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let fake = Fake::start().await;
    fake.answer(Answer::Raw(429, vec![("retry-after", "7")], ""))
        .await;
    fake.answer(Answer::Raw(429, vec![], "{}")).await;
    let (client, recorder) = fake.client();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("429");
    assert_eq!(
        error,
        UnicoError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(error.is_transient());
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("429");
    assert_eq!(error, UnicoError::RateLimited { retry_after: None });
    assert_eq!(
        recorder.calls().last().and_then(|c| c.http_status),
        Some(429)
    );
}

#[tokio::test]
async fn server_errors_are_transient() {
    let fake = Fake::start().await;
    fake.answer(Answer::Raw(503, vec![], "<html>bad gateway</html>"))
        .await;
    fake.answer(Answer::Json(
        500,
        json!({"error": {"code": "99999", "description": "oops"}}),
    ))
    .await;
    let (client, _) = fake.client();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("503");
    assert_eq!(error, UnicoError::Server { http_status: 503 });
    assert!(error.is_transient());
    let error = client
        .create_process(&request(), ctx())
        .await
        .expect_err("500");
    assert_eq!(error, UnicoError::Server { http_status: 500 });
}

#[tokio::test]
async fn slow_answer_times_out() {
    let fake = Fake::start().await;
    fake.answer(Answer::Late(Duration::from_secs(3))).await;
    let (client, recorder) = fake.client_with(fake.config(Duration::from_millis(400)));
    let started = StdInstant::now();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("timeout");
    assert_eq!(error, UnicoError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    let last = recorder.calls().pop().expect("record");
    assert_eq!((last.operation, last.http_status), ("get_process", None));
    assert!(last.error.is_some());
}

#[tokio::test]
async fn unreachable_host_is_a_transport_error() {
    let _shared = LOG_CAPTURE.read().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let recorder = Arc::new(Recorder::default());
    let config = UnicoConfig {
        base_url: format!("http://{addr}/api"),
        identity_url: format!("http://{addr}/identity"),
        api_key: SecretString::from(API_KEY),
        service_account: ACCOUNT.into(),
        private_key_pem: SecretString::from(PRIVATE_KEY),
        timeout: Duration::from_secs(2),
    };
    let client = UnicoClient::new(config, recorder.clone()).expect("client");
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("refused");
    assert!(matches!(&error, UnicoError::Transport(_)), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(recorder.operations(), [("token", None)]);
}
