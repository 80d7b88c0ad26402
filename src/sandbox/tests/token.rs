//! The identity token endpoint: what assertion gets a token, and every way one is refused.

use super::*;

#[tokio::test]
async fn valid_assertion_gets_a_bearer_token() {
    let sandbox = Sandbox::start(fast()).await;
    let (status, body) = sandbox.exchange(JWT_BEARER, &sign(&claims())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().len() >= 32);
    assert_eq!(body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn claims_beyond_the_documented_five_are_refused() {
    let sandbox = Sandbox::start(fast()).await;
    for (claim, value) in [
        ("sub", json!(ACCOUNT)),
        ("jti", json!("a5f1")),
        ("nbf", json!(now())),
        ("tenant", json!("x")),
    ] {
        let (status, body) = sandbox
            .exchange(JWT_BEARER, &sign(&with(claims(), claim, value)))
            .await;
        assert_eq!(status, 401, "{claim}: {body}");
        assert_eq!(body["error"], "server_error");
        assert_eq!(
            auth_failure(&body),
            "Falha na autenticação 1.2.22",
            "{claim}"
        );
    }
}

#[tokio::test]
async fn wrong_audience_issuer_or_scope_is_refused() {
    let sandbox = Sandbox::start(fast()).await;
    let cases = [
        (
            with(claims(), "aud", json!(format!("{AUDIENCE}/"))),
            "1.2.5",
        ),
        (
            with(claims(), "aud", json!("https://identity.acesso.io")),
            "1.2.5",
        ),
        (
            with(claims(), "iss", json!("other@tenant.iam.acesso.io")),
            "1.0.1",
        ),
        (with(claims(), "scope", json!("read")), "1.2.5"),
    ];
    for (claims, code) in cases {
        let (status, body) = sandbox.exchange(JWT_BEARER, &sign(&claims)).await;
        assert_eq!(status, 401, "{claims}: {body}");
        assert_eq!(auth_failure(&body), format!("Falha na autenticação {code}"));
    }
    let mut no_scope = claims();
    no_scope.as_object_mut().unwrap().remove("scope");
    let (_, body) = sandbox.exchange(JWT_BEARER, &sign(&no_scope)).await;
    assert_eq!(auth_failure(&body), "Falha na autenticação 1.1.1");
}

#[tokio::test]
async fn expired_overlong_or_future_assertions_are_refused() {
    let sandbox = Sandbox::start(fast()).await;
    let t = now();
    let cases = [
        (
            json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": t - 4000, "exp": t - 400}),
            "1.2.4",
        ),
        (
            json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": t, "exp": t + 3601}),
            "1.2.5",
        ),
        (
            json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": t + 600, "exp": t + 1200}),
            "1.2.5",
        ),
        (
            json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": "now", "exp": t + 60}),
            "1.2.21",
        ),
    ];
    for (claims, code) in cases {
        let (status, body) = sandbox.exchange(JWT_BEARER, &sign(&claims)).await;
        assert_eq!(status, 401, "{claims}: {body}");
        assert_eq!(auth_failure(&body), format!("Falha na autenticação {code}"));
    }
}

#[tokio::test]
async fn forged_signatures_are_refused() {
    let sandbox = Sandbox::start(fast()).await;
    // The signature of one set of claims glued onto another.
    let genuine = sign(&claims());
    let other = sign(&with(claims(), "exp", json!(now() + 60)));
    let mut parts: Vec<&str> = genuine.split('.').collect();
    parts[1] = other.split('.').nth(1).unwrap();
    let spliced = parts.join(".");
    // The classic algorithm confusion: HMAC keyed with the public key.
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(PUBLIC_PEM.as_bytes()),
    )
    .unwrap();
    for assertion in [spliced.as_str(), hs256.as_str()] {
        let (status, body) = sandbox.exchange(JWT_BEARER, assertion).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(auth_failure(&body), "Falha na autenticação 1.2.5");
    }
    let (status, body) = sandbox.exchange(JWT_BEARER, "not-a-jwt").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(auth_failure(&body), "Falha na autenticação 1.2.20");
}

#[tokio::test]
async fn an_assertion_is_good_for_one_token_only() {
    let sandbox = Sandbox::start(fast()).await;
    let assertion = sign(&claims());
    let (first, _) = sandbox.exchange(JWT_BEARER, &assertion).await;
    assert_eq!(first, 200);
    let (status, body) = sandbox.exchange(JWT_BEARER, &assertion).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(auth_failure(&body), "Falha na autenticação 1.2.7");
    // RS256 signatures are deterministic, so a "new" assertion with the same claims in the
    // same second is the same assertion; one that differs in any claim is fresh.
    let fresh = with(claims(), "exp", json!(now() + 3599));
    let (status, _) = sandbox.exchange(JWT_BEARER, &sign(&fresh)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn other_grant_types_are_bad_requests() {
    let sandbox = Sandbox::start(fast()).await;
    let (status, body) = sandbox
        .exchange("client_credentials", &sign(&claims()))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(auth_failure(&body).starts_with("Falha na autenticação 1.2."));
    let (status, _) = sandbox.exchange(JWT_BEARER, "").await;
    assert_eq!(status, 400);
}
