//! The client's checks, each against what a provider or an attacker could send.

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::attempt::b64;
use super::id_token::{allowed_algorithms, printable};
use super::*;

#[test]
fn roles_come_from_a_list_a_string_or_a_nested_claim() {
    let claims = json!({
        "roles": ["reviewer", "pii", 7],
        "groups": "audit  staff",
        "realm_access": {"roles": ["risk"]},
    });
    assert_eq!(role_names(&claims, "roles"), ["reviewer", "pii"]);
    assert_eq!(role_names(&claims, "groups"), ["audit", "staff"]);
    assert_eq!(role_names(&claims, "realm_access.roles"), ["risk"]);
    assert!(role_names(&claims, "missing").is_empty());
    assert!(role_names(&claims, "realm_access").is_empty());
}

#[test]
fn each_sign_in_has_its_own_state_nonce_and_verifier() {
    let one = Attempt::of("a");
    let other = Attempt::of("b");
    assert_ne!(one.state, other.state);
    assert_ne!(one.nonce, other.nonce);
    assert_ne!(one.state, one.nonce);
    assert_ne!(one.verifier, one.state);
    // RFC 7636 4.1: 43 to 128 unreserved characters.
    assert_eq!(one.verifier.len(), 43);
    assert!(
        one.verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    // The same secret gives the same values, so nothing of them needs keeping.
    assert_eq!(Attempt::of("a").state, one.state);
}

#[test]
fn the_pkce_challenge_is_the_rfc_7636_s256_of_the_verifier() {
    // RFC 7636 Appendix B.
    let attempt = Attempt {
        state: String::new(),
        nonce: String::new(),
        verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
    };
    assert_eq!(
        attempt.challenge(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn hmac_and_unknown_algorithms_are_never_allowed() {
    let metadata = |algs: Option<Vec<&str>>| Metadata {
        issuer: String::new(),
        authorization_endpoint: String::new(),
        token_endpoint: String::new(),
        jwks_uri: String::new(),
        code_challenge_methods_supported: None,
        token_endpoint_auth_methods_supported: None,
        id_token_signing_alg_values_supported: algs
            .map(|a| a.into_iter().map(str::to_owned).collect()),
    };
    assert_eq!(allowed_algorithms(&metadata(None)), [Algorithm::RS256]);
    assert_eq!(
        allowed_algorithms(&metadata(Some(vec!["HS256", "ES256", "none", "RS256"]))),
        [Algorithm::RS256, Algorithm::ES256]
    );
}

use jsonwebtoken::{EncodingKey, Header};
use ring::signature::KeyPair;

const ISSUER: &str = "https://login.bank.example/realms/staff";
const CLIENT: &str = "veredito-console";

/// An Ed25519 key: the signing half, and the public half as the provider publishes it.
fn ed25519(kid: &str) -> (EncodingKey, Value) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = json!({
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
        "x": b64(pair.public_key().as_ref()),
    });
    (EncodingKey::from_ed_der(pkcs8.as_ref()), public)
}

fn metadata() -> Metadata {
    Metadata {
        issuer: ISSUER.into(),
        authorization_endpoint: format!("{ISSUER}/auth"),
        token_endpoint: format!("{ISSUER}/token"),
        // Never fetched: the keys are in the cache, fetched "just now".
        jwks_uri: "http://127.0.0.1:9/jwks".into(),
        code_challenge_methods_supported: Some(vec!["S256".into()]),
        token_endpoint_auth_methods_supported: None,
        id_token_signing_alg_values_supported: Some(vec!["EdDSA".into(), "RS256".into()]),
    }
}

fn client(roles_claim: &str) -> Oidc {
    Oidc::new(OidcSettings {
        issuer: ISSUER.into(),
        name: None,
        client_id: CLIENT.into(),
        client_secret: "s3cret".to_owned().into(),
        redirect_url: "https://veredito.bank.example/console/oidc/callback".into(),
        scopes: vec!["openid".into()],
        roles_claim: roles_claim.into(),
        roles: Default::default(),
    })
    .unwrap()
}

async fn client_knowing(keys: Vec<Value>) -> Oidc {
    let oidc = client("roles");
    let jwks: JwkSet = serde_json::from_value(json!({ "keys": keys })).unwrap();
    *oidc.jwks.write().await = Some((Instant::now(), Arc::new(jwks)));
    oidc
}

fn claims(change: impl FnOnce(&mut Value)) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "ana.souza", "nonce": "n-1",
        "iat": now, "exp": now + 300, "name": "Ana Souza", "roles": ["analyst"],
    });
    change(&mut claims);
    claims
}

fn signed(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn an_id_token_is_taken_only_when_every_check_passes() {
    let (key, public) = ed25519("k1");
    let (other_key, _) = ed25519("k1");
    let oidc = client_knowing(vec![public]).await;
    let metadata = metadata();
    let good = signed(&key, "k1", &claims(|_| {}));
    let taken = oidc.verify(&metadata, &good, "n-1").await.unwrap();
    let person = oidc.person(&taken).unwrap();
    assert_eq!(
        (person.subject.as_str(), person.name.as_str()),
        ("ana.souza", "Ana Souza")
    );
    assert_eq!(person.roles, ["analyst"]);

    let now = jsonwebtoken::get_current_timestamp();
    let hmac = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(
            &header,
            &claims(|_| {}),
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap()
    };
    let refused = [
        ("another sign-in's nonce", good.clone(), "n-2"),
        (
            "another client's",
            signed(&key, "k1", &claims(|c| c["aud"] = json!("other-client"))),
            "n-1",
        ),
        (
            "another issuer's",
            signed(
                &key,
                "k1",
                &claims(|c| c["iss"] = json!("https://evil.example")),
            ),
            "n-1",
        ),
        (
            "expired",
            signed(&key, "k1", &claims(|c| c["exp"] = json!(now - 3600))),
            "n-1",
        ),
        (
            "for two clients, authorized for the other",
            signed(
                &key,
                "k1",
                &claims(|c| {
                    c["aud"] = json!([CLIENT, "other-client"]);
                    c["azp"] = json!("other-client");
                }),
            ),
            "n-1",
        ),
        (
            "without a subject",
            signed(
                &key,
                "k1",
                &claims(|c| {
                    c.as_object_mut().unwrap().remove("sub");
                }),
            ),
            "n-1",
        ),
        (
            "signed by a key the provider does not publish",
            signed(&key, "k2", &claims(|_| {})),
            "n-1",
        ),
        (
            "signed by another key under a published kid",
            signed(&other_key, "k1", &claims(|_| {})),
            "n-1",
        ),
        ("signed with the client secret (HS256)", hmac, "n-1"),
        ("not a token", "a.b.c".to_owned(), "n-1"),
    ];
    for (case, token, nonce) in refused {
        match oidc.verify(&metadata, &token, nonce).await {
            Err(OidcError::BadToken(_)) => {}
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[test]
fn a_person_is_named_by_name_then_preferred_username_then_subject() {
    let oidc = client("realm_access.roles");
    let named = |claims: Value| oidc.person(&claims).unwrap().name;
    assert_eq!(
        named(json!({"sub": "s1", "name": "Ana", "preferred_username": "ana"})),
        "Ana"
    );
    assert_eq!(
        named(json!({"sub": "s1", "name": " ", "preferred_username": "ana"})),
        "ana"
    );
    assert_eq!(named(json!({"sub": "s1"})), "s1");
    let roles = oidc
        .person(&json!({"sub": "s1", "realm_access": {"roles": ["risk"]}}))
        .unwrap()
        .roles;
    assert_eq!(roles, ["risk"]);
    assert!(oidc.person(&json!({"sub": ""})).is_err());
}

#[test]
fn names_are_kept_printable_and_short_and_codes_to_their_characters() {
    assert_eq!(printable(" Ana\u{0007} Souza\n"), "Ana Souza");
    assert_eq!(printable(&"x".repeat(300)).len(), 100);
    assert_eq!(oauth_code("access_denied<script>"), "access_deniedscript");
    assert_eq!(form_encoded("a b:c%"), "a+b%3Ac%25");
}
