//! Signing in to the console through the bank's identity provider (`console.oidc`).
//!
//! `/console/oidc/start` keeps the hash of a new random secret for ten minutes and gives the
//! secret to the browser in an HttpOnly cookie (SameSite=Lax, so that it comes back on the
//! provider's redirect); the request's `state`, `nonce` and PKCE verifier are derived from it.
//! `/console/oidc/callback` takes that sign-in once, checks the `state`, exchanges the code and
//! checks the ID token (`http::oidc`), maps the person's roles to scopes and opens a session in
//! the person's name: `oidc:<subject> (<name>)` is the reviewer, the note's author and the
//! reader recorded. Every way it can go wrong answers a page with a way back.

use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::http::console::layout::page;
use crate::http::console::session::{self, cookie, random_token};
use crate::http::error::ApiError;
use crate::http::oidc::{Attempt, OidcError, oauth_code};
use crate::http::state::AppState;
use crate::store;

/// The cookie holding the secret of a sign-in on its way through the provider.
const ATTEMPT_COOKIE: &str = "veredito_oidc";
const ATTEMPT_LIFETIME: Duration = Duration::from_secs(600);

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/oidc/start", get(start))
        .route("/console/oidc/callback", get(callback))
}

async fn start(State(st): State<AppState>) -> Result<Response, ApiError> {
    let Some(oidc) = st.oidc.clone() else {
        return Ok(Redirect::to("/console/sign-in").into_response());
    };
    let secret = random_token();
    let attempt = Attempt::of(&secret);
    let url = match oidc.authorization_url(&attempt).await {
        Ok(url) => url,
        Err(error) => return Ok(failed(&error)),
    };
    store::console::begin_sign_in(
        &st.db,
        &crate::crypto::sha256(secret.as_bytes()),
        ATTEMPT_LIFETIME,
    )
    .await?;
    let mut response = Redirect::to(&url).into_response();
    set_cookie(
        &mut response,
        &format!(
            "{ATTEMPT_COOKIE}={secret}; Path=/console/oidc; HttpOnly; SameSite=Lax; Max-Age={}",
            ATTEMPT_LIFETIME.as_secs()
        ),
    );
    Ok(response)
}

#[derive(Deserialize, Default)]
struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    iss: Option<String>,
}

async fn callback(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Result<Response, ApiError> {
    // A query that does not parse is answered as one without a state.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let mut response = signed_in(&st, &headers, query).await?;
    // The sign-in is over, whichever way it went.
    set_cookie(
        &mut response,
        &format!("{ATTEMPT_COOKIE}=; Path=/console/oidc; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(response)
}

async fn signed_in(
    st: &AppState,
    headers: &HeaderMap,
    query: Callback,
) -> Result<Response, ApiError> {
    let Some(oidc) = st.oidc.clone() else {
        return Ok(Redirect::to("/console/sign-in").into_response());
    };
    let Some(secret) = cookie(headers, ATTEMPT_COOKIE).filter(|s| !s.is_empty()) else {
        tracing::info!("console sign-in refused: no sign-in of this browser");
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started in this browser, or took longer than ten minutes. \
             Sign in again.",
        ));
    };
    if !store::console::take_sign_in(&st.db, &crate::crypto::sha256(secret.as_bytes())).await? {
        tracing::info!("console sign-in refused: used already or expired");
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "This sign-in was used already or took longer than ten minutes. Sign in again.",
        ));
    }
    let attempt = Attempt::of(&secret);
    let state = query.state.unwrap_or_default();
    if !bool::from(state.as_bytes().ct_eq(attempt.state.as_bytes())) {
        tracing::warn!("console sign-in refused: the state is not this browser's sign-in's");
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "The identity provider's answer does not belong to this sign-in. Sign in again.",
        ));
    }
    // RFC 9207: an answer that names another issuer was meant for another client.
    if query.iss.as_deref().is_some_and(|iss| iss != oidc.issuer()) {
        tracing::warn!("console sign-in refused: the answer names another issuer");
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "The answer came from another identity provider. Sign in again.",
        ));
    }
    if let Some(error) = query.error {
        let code = oauth_code(&error);
        tracing::info!(error = %code, "console sign-in not granted by the identity provider");
        return Ok(if code == "access_denied" {
            refusal(
                StatusCode::FORBIDDEN,
                "The identity provider did not grant the sign-in (access_denied).",
            )
        } else {
            refusal(
                StatusCode::BAD_REQUEST,
                &format!("The identity provider did not sign you in ({code})."),
            )
        });
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "The identity provider's answer carries no code. Sign in again.",
        ));
    };
    let person = match oidc.finish(&attempt, &code).await {
        Ok(person) => person,
        Err(error) => return Ok(failed(&error)),
    };
    let scopes = oidc.settings().roles.scopes_of(&person.roles);
    if !session::opens_console(&scopes) {
        tracing::info!("console sign-in refused: the person holds no role mapped to veredito's");
        return Ok(refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "{}, your account holds none of veredito's roles (in the {} claim). Ask for one \
                 at the identity provider: reviewer, auditor, risk, compliance or privacy.",
                person.name,
                oidc.settings().roles_claim
            ),
        ));
    }
    tracing::info!(
        roles = person.roles.len(),
        "console sign-in through the identity provider"
    );
    let name = format!("oidc:{} ({})", person.subject, person.name);
    let cookie = session::open_session(
        st,
        &name,
        &scopes,
        Some(store::console::Person {
            subject: &person.subject,
            name: &person.name,
        }),
    )
    .await?;
    // The session's cookie is SameSite=Strict, and this answer comes at the end of a navigation
    // that started at the provider's site: a redirect would carry it without the cookie. The
    // page moves on by itself, from this site.
    let home = session::home_of_scopes(&scopes);
    let markup = page(
        "Signed in",
        None,
        html! {
            meta http-equiv="refresh" content={ "0; url=" (home) };
            p.notice id="signed-in" { "Signed in as " (person.name) "." }
            p { a href=(home) { "Continue to the console" } }
        },
    );
    let mut response = (StatusCode::OK, markup).into_response();
    set_cookie(&mut response, &cookie);
    Ok(response)
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The provider could not be used: the cause to the log, a page to the person.
fn failed(error: &OidcError) -> Response {
    tracing::warn!(error = %error, "console sign-in through the identity provider failed");
    match error {
        OidcError::Unreachable(_) => refusal(
            StatusCode::BAD_GATEWAY,
            "The identity provider cannot be reached now. Try again in a moment.",
        ),
        OidcError::Refused(code) => refusal(
            StatusCode::BAD_REQUEST,
            &format!("The identity provider did not accept this sign-in ({code}). Sign in again."),
        ),
        OidcError::BadToken(_) => refusal(
            StatusCode::BAD_REQUEST,
            "The identity provider's answer could not be verified. Sign in again.",
        ),
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    let body = html! {
        p.error id="sign-in-failed" { (message) }
        p { a href="/console/sign-in" { "Back to sign-in" } }
    };
    (status, page("Not signed in", None, body)).into_response()
}
