//! The console for reviewers and auditors at `/console`: server-rendered HTML, nothing loaded
//! from outside the service. Signing in with an API key opens a session kept in an HttpOnly,
//! SameSite=Strict cookie; every form that changes something carries the session's token, so a
//! request forged from another site is refused. The sign-in form itself carries a token of the
//! page that showed it (login CSRF), and every answer tells browsers not to keep, frame or
//! extend it (`guard`).
//!
//! One file per page; `session` holds the signed-in user and `layout` the frame every page
//! shares.

mod case;
mod decisions;
mod explanation;
mod fraud_indications;
mod layout;
mod lists;
mod policies;
mod queue;
mod session;
mod sign_in;
mod sign_in_oidc;
mod subject_requests;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;

use crate::http::error::ApiError;
use crate::http::state::AppState;

use session::Session;

/// The console's routes, all behind the console's guard.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route(layout::SCRIPT_PATH, get(script))
        .route("/console/{*rest}", get(no_such_page))
        .merge(sign_in::router())
        .merge(sign_in_oidc::router())
        .merge(queue::router())
        .merge(case::router())
        .merge(decisions::router())
        .merge(policies::router())
        .merge(lists::router())
        .merge(subject_requests::router())
        .merge(fraud_indications::router())
        .layer(middleware::from_fn(guard))
}

/// The console's pages hold personal data and its forms change cases. Every answer, errors and
/// redirects included: not stored by browsers or proxies, never framed (clickjacking), no
/// content sniffing, no referrer (a decision search's URL may hold a CPF), and a policy that
/// lets the page load nothing and run nothing but its own stylesheet. A POST that the browser
/// says comes from another site (`Sec-Fetch-Site`) is refused before any handler reads it.
async fn guard(request: Request, next: Next) -> Response {
    let cross_site = request.method() == Method::POST
        && request
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"));
    let response = if cross_site {
        ApiError::CrossSite.into_response()
    } else {
        next.run(request).await
    };
    let mut response = as_page(response).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A page with a stylesheet of its own (the subject's printable report) brings a policy as
    // strict, naming that stylesheet's hash instead.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(policy) = HeaderValue::from_str(&CONTENT_SECURITY_POLICY) {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
    }
    response
}

/// A problem+json answer (a bad id, a form of an expired session, a case that does not exist)
/// as a page a person can read, with a way back; the status stays.
async fn as_page(response: Response) -> Response {
    let problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes() == b"application/problem+json");
    if !problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let problem: Problem = serde_json::from_slice(&bytes).unwrap_or_default();
    let detail = match parts.status {
        StatusCode::FORBIDDEN if problem.detail.contains("a form of this console session") => {
            "This form is from a session that has ended or from another page. Reload the page and \
             try again."
                .to_owned()
        }
        StatusCode::NOT_FOUND => format!("There is no such {}.", problem.not_found()),
        _ => problem.detail,
    };
    let mut page = layout::error_page(parts.status, &problem.title, &detail);
    for name in [header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            page.headers_mut().insert(name, value.clone());
        }
    }
    page
}

/// What the page needs of a problem.
#[derive(serde::Deserialize, Default)]
struct Problem {
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
}

impl Problem {
    /// The thing a 404 names ("review case not found": "review case").
    fn not_found(&self) -> &str {
        self.detail.strip_suffix(" not found").unwrap_or("page")
    }
}

/// A console address that leads nowhere: a page with a way back, not the API's problem+json.
async fn no_such_page() -> Response {
    layout::error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the console.",
    )
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        layout::SCRIPT,
    )
        .into_response()
}

/// The pages' one stylesheet is allowed by its hash, so no other inline style is; the one
/// script is the console's own file (keyboard shortcuts), so no inline script runs.
/// `connect-src 'self'` keeps a page driven from outside (the browser test) able to call the
/// console itself.
static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let digest = crate::crypto::sha256(layout::STYLE.as_bytes());
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
});

async fn home(session: Session) -> Redirect {
    Redirect::to(session.home())
}
