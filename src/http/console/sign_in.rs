//! Signing in with an API key, and out.

use std::time::Duration;

use axum::Form;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::http::auth::ApiKeys;
use crate::http::console::layout::page;
use crate::http::console::session::{
    COOKIE, Session, cookie, home_of, open_session, opens_console, random_token,
};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::console;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
}

/// The cookie that ties a sign-in form to the browser that was shown it.
const SIGN_IN_COOKIE: &str = "veredito_sign_in";
const SIGN_IN_LIFETIME: Duration = Duration::from_secs(3600);

async fn sign_in_page(State(st): State<AppState>, session: Option<Session>) -> Response {
    if let Some(session) = session {
        return Redirect::to(session.home()).into_response();
    }
    sign_in_form(&st, StatusCode::OK, None)
}

/// Whether the sign-in page takes API keys (`console.key_sign_in`).
fn key_sign_in(st: &AppState) -> bool {
    st.settings.console.key_sign_in(st.settings.sandbox.enabled)
}

/// The sign-in form with a new pre-session token, both in the form and in a SameSite=Strict
/// cookie: a page of another site can post a form here but can neither read the token nor make
/// the browser send the cookie with it, so it cannot sign the browser in under its own key.
fn sign_in_form(st: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let token = random_token();
    let keys = key_sign_in(st);
    let markup = page(
        "Sign in",
        None,
        html! {
            @if let Some(error) = error { p.error { (error) } }
            @if let Some(oidc) = &st.oidc {
                p { a.button id="oidc" href="/console/oidc/start" { "Sign in with " (oidc.settings().display_name()) } }
            }
            @if keys {
                @if st.oidc.is_some() { p.muted { "Or, in the sandbox, with an API key:" } }
                form method="post" action="/console/sign-in" {
                    input type="hidden" name="sign_in_token" value=(token);
                    label { "API key " input type="password" name="api_key" autocomplete="off" required; }
                    button type="submit" { "Sign in" }
                }
                p.muted { "Reviewers sign in with a key that has reviews:write; auditors with decisions:read; the risk team with lists:write; the compliance team with fraud:write; the data-protection officer with subjects:write." }
            }
        },
    );
    let mut response = (status, markup).into_response();
    let cookie = format!(
        "{SIGN_IN_COOKIE}={token}; Path=/console/sign-in; HttpOnly; SameSite=Strict; Max-Age={}",
        SIGN_IN_LIFETIME.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct SignIn {
    api_key: String,
    #[serde(default)]
    sign_in_token: String,
}

async fn sign_in(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, ApiError> {
    let shown = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    let same_page =
        !shown.is_empty() && bool::from(shown.as_bytes().ct_eq(form.sign_in_token.as_bytes()));
    if !same_page {
        return Ok(sign_in_form(
            &st,
            StatusCode::FORBIDDEN,
            Some("This sign-in form expired or was not shown by this console. Sign in again."),
        ));
    }
    if !key_sign_in(&st) {
        return Ok(sign_in_form(
            &st,
            StatusCode::FORBIDDEN,
            Some("This console signs people in through the identity provider, not with keys."),
        ));
    }
    let keys = std::sync::Arc::<ApiKeys>::from_ref(&st);
    let known = match keys.authenticate(form.api_key.trim()) {
        Ok(caller) => Some(caller),
        Err(ApiError::Unauthorized) => None,
        Err(other) => return Err(other),
    };
    let Some(caller) = known.filter(|c| opens_console(c.scopes())) else {
        return Ok(sign_in_form(
            &st,
            StatusCode::UNAUTHORIZED,
            Some("That key cannot open the console."),
        ));
    };
    let cookies = [
        open_session(&st, &caller.name, caller.scopes(), None).await?,
        format!("{SIGN_IN_COOKIE}=; Path=/console/sign-in; HttpOnly; SameSite=Strict; Max-Age=0"),
    ];
    let mut response = Redirect::to(home_of(&caller)).into_response();
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(
    State(st): State<AppState>,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    session.check(&form.csrf)?;
    console::delete(&st.db, &session.id_sha256).await?;
    let mut response = Redirect::to("/console/sign-in").into_response();
    let expired = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
