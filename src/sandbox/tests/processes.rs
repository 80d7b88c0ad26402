//! The processes API's credentials and CreateProcess's checks on the body.

use super::*;

#[tokio::test]
async fn processes_require_a_token_and_the_api_key() {
    let sandbox = Sandbox::start(fast()).await;
    let token = sandbox.token().await;
    let body = Some(process("90000000175").to_string());
    let post = reqwest::Method::POST;
    let path = "/processes/v1";
    let cases = [
        (None, Some(API_KEY), 400, "20001"),
        (Some(token.as_str()), None, 400, "20002"),
        (Some(token.as_str()), Some("wrong-key"), 403, "10201"),
        (Some("not-issued-here"), Some(API_KEY), 403, "10501"),
    ];
    for (token, key, status, code) in cases {
        let (got, answer) = sandbox
            .call(post.clone(), path, token, key, body.clone())
            .await;
        assert_eq!((got, error_code(&answer)), (status, code), "{answer}");
        assert!(answer["error"]["description"].is_string());
    }
    let (status, answer) = sandbox
        .call(
            reqwest::Method::GET,
            "/processes/v1/x",
            None,
            Some(API_KEY),
            None,
        )
        .await;
    assert_eq!((status, error_code(&answer)), (400, "20001"));
}

#[tokio::test]
async fn expired_tokens_are_told_apart_from_unknown_ones() {
    let mut state = unico::Unico::new(fast());
    state.token_ttl = Duration::from_millis(100);
    let sandbox = Sandbox::at(serve(unico::router(Arc::new(state))).await);
    let token = sandbox.token().await;
    let (status, _) = sandbox.create(&token, process("90000000175")).await;
    assert_eq!(status, 200);
    // Refused as expired (not as unknown) once its lifetime is over.
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = sandbox.create(&token, process("90000000175")).await;
        if status != 200 || started.elapsed() > Duration::from_secs(5) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "not before its lifetime"
    );
    assert_eq!((status, error_code(&body)), (403, "10502"), "{body}");
}

#[tokio::test]
async fn create_process_validates_the_body_like_unico() {
    let sandbox = Sandbox::start(fast()).await;
    let token = sandbox.token().await;
    let (status, body) = sandbox
        .call(
            reqwest::Method::POST,
            "/processes/v1",
            Some(&token),
            Some(API_KEY),
            Some("{not json".to_owned()),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "20003"));

    let good = process("90000000175");
    let without = |pointer: &str, key: &str| {
        let mut body = good.clone();
        body.pointer_mut(pointer)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        body
    };
    let set = |pointer: &str, value: Value| {
        let mut body = good.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let cases = [
        (without("", "subject"), "20004"),
        (without("/subject", "code"), "20005"),
        (without("/subject", "name"), "20006"),
        (set("/subject/code", json!("90000000176")), "20507"),
        (set("/subject/code", json!("900.000.001-75")), "20507"),
        (set("/subject/code", json!("11111111111")), "20507"),
        (set("/subject/gender", json!("X")), "20508"),
        (set("/subject/birthDate", json!("01/04/1990")), "20019"),
        (set("/subject/birthDate", json!("1990-02-30")), "20019"),
        (without("", "imageBase64"), "20009"),
        (set("/imageBase64", json!("")), "20009"),
    ];
    for (body, code) in cases {
        let (status, answer) = sandbox.create(&token, body.clone()).await;
        assert_eq!((status, error_code(&answer)), (400, code), "{body}");
    }
    // Optional fields may be left out altogether.
    let minimal = json!({"subject": {"code": "90000000175", "name": "Maria"}, "imageBase64": "x"});
    let (status, _) = sandbox.create(&token, minimal).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_refused_selfie_is_error_20505() {
    let sandbox = Sandbox::start(fast()).await;
    let token = sandbox.token().await;
    let (status, body) = sandbox.create(&token, process("90000002461")).await;
    assert_eq!((status, error_code(&body)), (400, "20505"), "{body}");
}
