//! Tokens: the assertion the client signs, one exchange for many calls, renewal ahead of
//! expiry, a refused token renewed once, and the identity host's refusals.

use std::sync::atomic::Ordering;
use std::time::Instant as StdInstant;

use base64::Engine;
use serde_json::json;

use super::fake::Fake;
use super::*;

#[tokio::test]
async fn assertion_has_exact_header_claims_and_form() {
    let fake = Fake::start().await;
    let (client, _) = fake.client();
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("get_process");

    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(fake.exchanges(), 1);
    let forms = lock(&fake.identity.forms).clone();
    assert_eq!(forms.len(), 1);
    assert_eq!(
        forms[0][0],
        (
            "grant_type".to_owned(),
            "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()
        )
    );

    // Read the assertion again here, independently of the fake's checks.
    let assertion = &forms[0][1].1;
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |part: &str| -> Value {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&raw).expect("json")
    };
    assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT"}));
    let claims = decode(parts[1]);
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(
        claims,
        json!({"iss": ACCOUNT, "aud": format!("{}/identity", fake.base), "scope": "*", "iat": iat, "exp": iat + 3600})
    );
}

#[tokio::test]
async fn one_exchange_serves_many_calls() {
    let fake = Fake::start().await;
    let (client, recorder) = fake.client();
    for _ in 0..5 {
        client
            .get_process(PROCESS_ID, ctx())
            .await
            .expect("get_process");
    }
    client
        .create_process(&request(), ctx())
        .await
        .expect("create_process");
    assert_eq!(fake.exchanges(), 1);
    let ops: Vec<&str> = recorder.calls().iter().map(|c| c.operation).collect();
    assert_eq!(ops.iter().filter(|op| **op == "token").count(), 1);
    assert_eq!(ops.len(), 7);
}

#[tokio::test]
async fn concurrent_first_calls_share_one_exchange() {
    let fake = Fake::start().await;
    // A slow identity host keeps the exchange in flight while the other calls arrive.
    fake.identity.delay_ms.store(300, Ordering::SeqCst);
    let (client, _) = fake.client();
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get_process(PROCESS_ID, ctx()).await })
    });
    for call in futures_util::future::join_all(calls).await {
        call.expect("task").expect("get_process");
    }
    assert_eq!(fake.exchanges(), 1);
    assert_eq!(fake.seen().await.len(), 8);
}

#[tokio::test]
async fn token_is_renewed_before_it_expires() {
    let fake = Fake::start().await;
    fake.identity.lifetime_secs.store(2, Ordering::SeqCst);
    let (client, _) = fake.client();

    client.get_process(PROCESS_ID, ctx()).await.expect("first");
    client.get_process(PROCESS_ID, ctx()).await.expect("second");
    assert_eq!(fake.exchanges(), 1, "a fresh token is reused");

    // Before the 2 s expiry the old token is still accepted, so only the client's own schedule
    // can cause a second exchange: keep calling until it does, and it must be in time.
    let started = StdInstant::now();
    while fake.exchanges() < 2 {
        assert!(
            started.elapsed() < Duration::from_millis(1900),
            "not renewed ahead of expiry"
        );
        client.get_process(PROCESS_ID, ctx()).await.expect("later");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.exchanges(), 2, "renewed once");
    assert_eq!(
        fake.identity.token_refusals.load(Ordering::SeqCst),
        0,
        "never sent an expired token"
    );
    assert_eq!(
        fake.problems(),
        Vec::<String>::new(),
        "a new assertion for each exchange"
    );

    let seen = fake.seen().await;
    assert_ne!(
        seen[1].authorization,
        seen.last().unwrap().authorization,
        "the last call went out with the new token"
    );
}

#[tokio::test]
async fn refused_token_is_renewed_and_the_call_retried_once() {
    let fake = Fake::start().await;
    let (client, recorder) = fake.client();
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("warm up");

    fake.identity.refuse_tokens.store(1, Ordering::SeqCst);
    let result = client
        .create_process(&request(), ctx())
        .await
        .expect("retried");
    assert_eq!(result.process_id, PROCESS_ID);
    assert_eq!(fake.exchanges(), 2);
    assert_eq!(
        recorder.operations(),
        [
            ("token", Some(200)),
            ("get_process", Some(200)),
            ("create_process", Some(403)),
            ("token", Some(200)),
            ("create_process", Some(200)),
        ]
    );
    let seen = fake.seen().await;
    assert_ne!(
        seen[1].authorization, seen[2].authorization,
        "the retry carries the new token"
    );
    assert_eq!(seen[1].body, seen[2].body, "the same body is sent again");
}

#[tokio::test]
async fn a_second_refusal_is_returned_not_retried() {
    let fake = Fake::start().await;
    fake.identity.refuse_tokens.store(5, Ordering::SeqCst);
    let (client, _) = fake.client();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("refused twice");
    assert_eq!(
        error,
        UnicoError::Business {
            http_status: 403,
            code: "10502".into(),
            description: "token refused".into()
        }
    );
    assert_eq!(fake.seen().await.len(), 2);
    assert_eq!(fake.exchanges(), 2);
}

#[tokio::test]
async fn identity_refusal_is_an_auth_error() {
    let fake = Fake::start().await;
    fake.identity_answers(
        401,
        json!({"error": "server_error", "error_description": "Falha na autenticação 1.2.5"}),
    );
    let (client, recorder) = fake.client();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("auth");
    assert_eq!(
        error,
        UnicoError::Auth {
            http_status: Some(401),
            description: "server_error: Falha na autenticação 1.2.5".into()
        }
    );
    assert!(!error.is_transient());
    assert!(fake.seen().await.is_empty(), "no API call without a token");
    assert_eq!(recorder.operations(), [("token", Some(401))]);

    // unico also answers auth failures as 5xx with an OAuth body: still Auth, not Server.
    fake.identity_answers(
        500,
        json!({"error": "server_error", "error_description": "Falha na autenticação 1.2.7"}),
    );
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("auth");
    assert!(
        matches!(
            error,
            UnicoError::Auth {
                http_status: Some(500),
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn token_exchange_record_holds_no_assertion_or_token() {
    let fake = Fake::start().await;
    let (client, recorder) = fake.client();
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("get_process");
    let token_call = recorder
        .calls()
        .into_iter()
        .find(|c| c.operation == "token")
        .expect("token record");
    assert_eq!(token_call.method, "POST");
    assert_eq!(token_call.path, "/identity/oauth2/token");
    assert_eq!(
        token_call.request,
        Some(
            json!({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "[redacted]"})
        )
    );
    assert_eq!(
        token_call.response,
        Some(json!({"expires_in": 3600, "token_type": "Bearer"}))
    );
    let said = token_call.said.expect("the answer, to be sealed").0;
    assert_eq!(
        said["body"],
        json!({"access_token": "[redacted]", "expires_in": 3600, "token_type": "Bearer"})
    );
}

#[test]
fn bad_keys_fail_at_construction_and_pkcs1_is_accepted() {
    let config = |pem: &str| UnicoConfig {
        base_url: "https://api.id.uat.unico.app".into(),
        identity_url: "https://identityhomolog.acesso.io".into(),
        api_key: SecretString::from(API_KEY),
        service_account: ACCOUNT.into(),
        private_key_pem: SecretString::from(pem),
        timeout: Duration::from_secs(5),
    };
    let sink: SharedSink = Arc::new(crate::providers::DiscardCalls);
    for pem in [
        "not a pem",
        PUBLIC_KEY,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        let result = UnicoClient::new(config(pem), sink.clone());
        assert!(matches!(result, Err(UnicoError::Config(_))), "{pem}");
    }
    assert!(UnicoClient::new(config(PRIVATE_KEY), sink.clone()).is_ok());
    assert!(UnicoClient::new(config(PRIVATE_KEY_PKCS1), sink.clone()).is_ok());
    let mut bad_url = config(PRIVATE_KEY);
    bad_url.base_url = "api.id.unico.app".into();
    assert!(matches!(
        UnicoClient::new(bad_url, sink),
        Err(UnicoError::Config(_))
    ));
}
