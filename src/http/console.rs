//! The console for reviewers and auditors at `/console`: server-rendered HTML, nothing loaded
//! from outside the service. Signing in with an API key opens a session kept in an HttpOnly,
//! SameSite=Strict cookie; every form that changes something carries the session's token, so a
//! request forged from another site is refused. The sign-in form itself carries a token of the
//! page that showed it (login CSRF), and every answer tells browsers not to keep, frame or
//! extend it (`guard`).

use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::Cpf;
use crate::domain::fraud::Typology;
use crate::http::auth::{ApiKeys, Caller};
use crate::http::decisions::{DecisionItem, Explanation};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::onboarding::fraud::ReviewerFraud;
use crate::onboarding::links::Links;
use crate::onboarding::reviews;
use crate::policy::Outcome;
use crate::store::reviews::{CaseFilter, Refusal};
use crate::store::{audit, console};

const COOKIE: &str = "veredito_console";
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The console's own routes, with `pages` (the pages that build on its session and layout),
/// all behind the console's guard.
pub fn router(pages: Router<AppState>) -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/reviews", get(queue))
        .route("/console/reviews/{id}", get(case_page))
        .route("/console/reviews/{id}/{action}", post(act))
        .route("/console/decisions", get(decisions))
        .route("/console/decisions/{id}", get(decision_page))
        .route("/console/onboardings/{id}", get(onboarding_page))
        .route("/console/policies", get(policies_page))
        .merge(pages)
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
    let mut response = if cross_site {
        ApiError::CrossSite.into_response()
    } else {
        next.run(request).await
    };
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

/// The pages' one stylesheet is allowed by its hash, so no other inline style or script is.
/// The console has no script: `connect-src 'self'` lets nothing new happen, and keeps a page
/// driven from outside (the browser test) able to call the console itself.
static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let digest = crate::crypto::sha256(STYLE.as_bytes());
    format!(
        "default-src 'none'; style-src 'sha256-{}'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
});

/// A signed-in console user. Without a live session every console page sends the browser to
/// the sign-in page. Each request of a session spends the rate of the key it was opened with,
/// as the key's own requests do (429 past it), and a session whose key is no longer configured
/// is over.
pub struct Session {
    pub(crate) caller: Caller,
    pub(crate) csrf: String,
    id_sha256: [u8; 32],
    /// The person's name, for a session opened through the identity provider.
    person: Option<String>,
}

pub enum ToSignIn {
    /// No live session: to the sign-in page.
    SignIn,
    /// The session's key is past its rate.
    Refused(ApiError),
}

impl IntoResponse for ToSignIn {
    fn into_response(self) -> Response {
        match self {
            ToSignIn::SignIn => Redirect::to("/console/sign-in").into_response(),
            ToSignIn::Refused(error) => error.into_response(),
        }
    }
}

/// The value of the cookie `name` the browser sent.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ToSignIn;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ToSignIn> {
        let id = cookie(&parts.headers, COOKIE).ok_or(ToSignIn::SignIn)?;
        let id_sha256 = crate::crypto::sha256(id.as_bytes());
        let row = console::get(&st.db, &id_sha256)
            .await
            .ok()
            .flatten()
            .ok_or(ToSignIn::SignIn)?;
        // A person's session spends the person's rate, and ends when the console no longer
        // signs people in; a key's spends the key's, and ends with the key.
        let rate = match &row.subject {
            Some(subject) if st.oidc.is_some() => st.api_keys.person_request(subject),
            Some(_) => Err(ApiError::Unauthorized),
            None => st.api_keys.session_request(&row.key_name),
        };
        match rate {
            Ok(()) => {}
            Err(ApiError::Unauthorized) => return Err(ToSignIn::SignIn),
            Err(refused) => return Err(ToSignIn::Refused(refused)),
        }
        let scopes = row.scopes.iter().filter_map(|s| Scope::parse(s)).collect();
        Ok(Session {
            caller: Caller::new(&row.key_name, scopes),
            csrf: row.csrf_token,
            id_sha256,
            person: row.subject.and(row.person_name),
        })
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Session as FromRequestParts<AppState>>::from_request_parts(parts, st)
                .await
                .ok(),
        )
    }
}

impl Session {
    pub(crate) fn check(&self, token: &str) -> Result<(), ApiError> {
        if bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("a form of this console session"))
        }
    }

    /// The review queue, cases, decisions and policies: reviewers' and auditors' pages.
    pub(crate) fn reads_decisions(&self) -> bool {
        self.caller.has(Scope::ReviewsWrite) || self.caller.has(Scope::DecisionsRead)
    }

    /// The lists are read with `decisions:read` or `lists:write`, as through the API.
    pub(crate) fn reads_lists(&self) -> bool {
        self.caller.has(Scope::DecisionsRead) || self.caller.has(Scope::ListsWrite)
    }

    /// Fraud indications are read with `fraud:write` or `decisions:read`, as through the API.
    pub(crate) fn reads_indications(&self) -> bool {
        self.caller.has(Scope::FraudWrite) || self.caller.has(Scope::DecisionsRead)
    }

    /// Where the session starts: the first page its key may see.
    fn home(&self) -> &'static str {
        home_of(&self.caller)
    }

    /// Who the header names: the person, or the key's name.
    fn who(&self) -> &str {
        self.person.as_deref().unwrap_or(&self.caller.name)
    }

    /// A page this session's key may not see: a 403 page saying which scope it takes.
    pub(crate) fn refused(&self, needs: &str) -> Response {
        let body = html! {
            @if self.person.is_some() {
                p.error id="refused" { "Your roles do not allow this: it needs " (needs) "." }
            } @else {
                p.error id="refused" { "This page needs a key with " (needs) "." }
            }
            p { a href=(self.home()) { "Back" } }
        };
        (StatusCode::FORBIDDEN, page("Not allowed", Some(self), body)).into_response()
    }
}

/// The first console page `caller` may see.
fn home_of(caller: &Caller) -> &'static str {
    home_of_scopes(caller.scopes())
}

/// The first console page a session with `scopes` may see.
pub(crate) fn home_of_scopes(scopes: &[Scope]) -> &'static str {
    if scopes.contains(&Scope::ReviewsWrite) || scopes.contains(&Scope::DecisionsRead) {
        "/console/reviews"
    } else if scopes.contains(&Scope::ListsWrite) {
        "/console/lists"
    } else if scopes.contains(&Scope::FraudWrite) {
        "/console/fraud-indications"
    } else {
        "/console/subject-requests"
    }
}

/// Whether `scopes` open any console page.
pub(crate) fn opens_console(scopes: &[Scope]) -> bool {
    [
        Scope::ReviewsWrite,
        Scope::DecisionsRead,
        Scope::ListsWrite,
        Scope::FraudWrite,
        Scope::SubjectsWrite,
    ]
    .iter()
    .any(|s| scopes.contains(s))
}

async fn home(session: Session) -> Redirect {
    Redirect::to(session.home())
}

pub(crate) fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · veredito" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "veredito" }
                    @if let Some(session) = session {
                        nav {
                            @if session.reads_decisions() {
                                a href="/console/reviews" { "Review queue" }
                                a href="/console/decisions" { "Decisions" }
                                a href="/console/policies" { "Policies" }
                            }
                            @if session.reads_lists() { a href="/console/lists" { "Lists" } }
                            @if session.reads_indications() {
                                a href="/console/fraud-indications" { "Fraud indications" }
                            }
                            @if session.caller.has(Scope::SubjectsWrite) {
                                a href="/console/subject-requests" { "Subject requests" }
                            }
                        }
                        span.who id="who" { (session.who()) }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{display:flex;gap:1.2em;align-items:center;padding:.6em 1.5em;background:#1d2330;color:#fff}
header a{color:#cfe0ff;margin-right:1em}header form{margin:0}.who{margin-left:auto}
main{max-width:1100px;margin:1.5em auto;padding:0 1.5em}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:.35em .6em;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
.overdue{color:#b00020;font-weight:600}.muted{color:#667}.box{background:#fff;padding:1em;margin:1em 0;border:1px solid #e3e6eb}
pre{white-space:pre-wrap;word-break:break-all;font-size:13px;margin:0}.fired{font-weight:600}.notice{background:#e8f4ea;padding:.6em 1em}
.error{background:#fdecee;padding:.6em 1em}a.button{display:inline-block;padding:.5em 1em;background:#1d2330;color:#fff;text-decoration:none}form.inline{display:inline}label{display:block;margin:.4em 0}label.inline{display:inline-block;margin-right:1em}
textarea{width:100%;min-height:5em}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}";

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

/// Opens a session named `name` with `scopes` (of a key, or of a person's roles) and answers
/// the cookie that holds it.
pub(crate) async fn open_session(
    st: &AppState,
    name: &str,
    scopes: &[Scope],
    person: Option<console::Person<'_>>,
) -> Result<String, ApiError> {
    let id = random_token();
    let csrf = random_token();
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    console::create(
        &st.db,
        &crate::crypto::sha256(id.as_bytes()),
        name,
        &scopes,
        &csrf,
        SESSION_LIFETIME,
        person,
    )
    .await?;
    Ok(format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    ))
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source works");
    hex::encode(bytes)
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

#[derive(Deserialize, Default)]
struct QueueQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    overdue: Option<String>,
}

async fn queue(
    State(st): State<AppState>,
    session: Session,
    Query(query): Query<QueueQuery>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let status = query
        .status
        .filter(|s| matches!(s.as_str(), "open" | "claimed" | "resolved"));
    let filter = CaseFilter {
        status: status.clone(),
        assignee: None,
        reason: query
            .reason
            .clone()
            .filter(|r| !r.is_empty() && !r.contains('\0')),
        overdue: query.overdue.as_deref() == Some("on"),
    };
    let mut cases = crate::store::reviews::list(&st.db, &filter, None, 200).await?;
    if status.is_none() {
        // The queue is what is left to do; resolved cases are one filter away.
        cases.retain(|c| c.status != "resolved");
    }
    let statements = session.caller.has(Scope::ReviewsWrite) || session.caller.has(Scope::PiiRead);
    let cases: Vec<CaseView> = cases
        .into_iter()
        .map(|c| CaseView::of(c, &st.cipher, statements))
        .collect();
    let body = html! {
        form method="get" action="/console/reviews" {
            label.inline { "Status "
                select name="status" {
                    option value="" { "open and claimed" }
                    @for s in ["open", "claimed", "resolved"] {
                        option value=(s) selected[status.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            label.inline { "Reason " input name="reason" value=(query.reason.as_deref().unwrap_or("")); }
            label.inline { input type="checkbox" name="overdue" checked[filter.overdue]; " overdue only" }
            button type="submit" { "Filter" }
        }
        @if cases.is_empty() {
            p.muted { "No case matches." }
        } @else {
            table id="queue" {
                thead { tr { th { "Due" } th { "Status" } th { "Opened by" } th { "Reasons" } th { "Assignee" } th { "Case" } } }
                tbody {
                    @for case in &cases {
                        tr {
                            td class=[case.overdue.then_some("overdue")] {
                                (case.due_at.format("%Y-%m-%d %H:%M UTC")) @if case.overdue { " (overdue)" }
                            }
                            td { (case.status) }
                            td { (case.opened_by) }
                            td { (case.reasons.join(", ")) }
                            td { (case.assignee.as_deref().unwrap_or("—")) }
                            td { a.case href={ "/console/reviews/" (case.id) } { "Open" } }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Review queue", Some(&session), body).into_response())
}

#[derive(Deserialize, Default)]
struct CaseQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// What the reviewer typed into the resolution form, shown again beside what is wrong with it.
#[derive(Default)]
struct Typed {
    outcome: String,
    note: String,
    fraud_typology: String,
    fraud_description: String,
}

async fn case_page(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<CaseQuery>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("review case"))?;
    let body = case_body(&st, &session, id, &query, &Typed::default()).await?;
    Ok(page("Review case", Some(&session), body).into_response())
}

/// The case with its forms; `typed` fills the resolution form in.
async fn case_body(
    st: &AppState,
    session: &Session,
    id: Uuid,
    query: &CaseQuery,
    typed: &Typed,
) -> Result<Markup, ApiError> {
    // The page shows the person's statement, the decision and, with pii:read, the CPF, the name
    // and where the phone was: recorded like the API's reads of the same.
    audit::record_search(
        &st.db,
        &session.caller.name,
        "console /console/reviews/{id}",
        &serde_json::json!({ "case_id": id }),
    )
    .await?;
    let case = crate::store::reviews::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("review case"))?;
    let pii = session.caller.has(Scope::PiiRead);
    let reviewer = session.caller.has(Scope::ReviewsWrite);
    let view = CaseView::of(case.clone(), &st.cipher, reviewer || pii);
    let row = audit::get(&st.db, case.decision_id)
        .await?
        .ok_or(ApiError::NotFound("decision"))?;
    let explanation =
        serde_json::to_value(Explanation::load(st, row, pii).await?).unwrap_or(Value::Null);
    let latest = crate::store::decisions::for_onboarding(&st.db, case.onboarding_id).await?;
    let links = crate::onboarding::links::of(&st.flow, case.onboarding_id, LINKS_WINDOW_SECS)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    let holds = view.assignee.as_deref() == Some(session.caller.name.as_ref());
    // The person contests this reviewer's own decision: the case is for someone else.
    let contested = view.opened_by == "subject_request"
        && explanation["reviewer"].as_str() == Some(session.caller.name.as_ref());
    let body = html! {
        @if let Some(done) = &query.done { p.notice { (done) } }
        @if let Some(error) = &query.error { p.error id="error" { (error) } }
        div.box id="summary" {
            p { "Status: " strong id="status" { (view.status) }
                @if let Some(assignee) = &view.assignee { " · held by " span id="assignee" { (assignee) } } }
            p { "Opened by " (view.opened_by) " on " (view.opened_at.format("%Y-%m-%d %H:%M UTC"))
                " · due " span class=[view.overdue.then_some("overdue")] { (view.due_at.format("%Y-%m-%d %H:%M UTC")) } }
            p { "CPF: " span id="cpf" { (explanation["cpf"].as_str().unwrap_or("erased")) }
                @if let Some(name) = explanation["name"].as_str() { " · " (name) } }
            p { "Automatic decision: " strong id="automatic" { (explanation["outcome"].as_str().unwrap_or("")) }
                " — reasons " span id="reasons" { (view.reasons.join(", ")) } }
            @if let Some(statement) = &view.statement { p { "The person wrote: " q { (statement) } } }
            @if let Some(latest) = &latest {
                p id="verdict" { "Current verdict: " strong { (latest.outcome) } " (decided by " (latest.decided_by)
                    @if let Some(r) = &latest.reviewer { ", " (r) } ")" }
            }
            @if let Some(resolution) = &view.resolution {
                p id="resolution" { "Resolved " (resolution.outcome) " by " (resolution.reviewer) ": " (resolution.note) }
            }
        }
        @if reviewer && view.status != "resolved" {
            div.box id="actions" {
                @if contested {
                    p.muted id="contested" { "You made the decision this person contests (LGPD Art. 20): another reviewer must review the request." }
                    @if holds {
                        form.inline method="post" action={ "/console/reviews/" (view.id) "/release" } {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button id="release" type="submit" { "Release" }
                        }
                    }
                } @else if !holds {
                    form.inline method="post" action={ "/console/reviews/" (view.id) "/claim" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button id="claim" type="submit" { "Claim" }
                    }
                } @else {
                    form.inline method="post" action={ "/console/reviews/" (view.id) "/release" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button id="release" type="submit" { "Release" }
                    }
                    form id="resolve" method="post" action={ "/console/reviews/" (view.id) "/resolution" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label { "Outcome "
                            select name="outcome" {
                                @for (value, text) in [("approved", "approved"), ("rejected", "rejected"), ("retry", "retry (new capture)")] {
                                    option value=(value) selected[typed.outcome == value] { (text) }
                                }
                            }
                        }
                        label { "Note " textarea name="note" required maxlength="2000" { (typed.note) } }
                        fieldset id="fraud" {
                            legend { "Fraud (with a rejected outcome only)" }
                            label { "Typology "
                                select name="fraud_typology" {
                                    option value="" { "no fraud" }
                                    @for t in Typology::ALL {
                                        option value=(t.as_str()) selected[typed.fraud_typology == t.as_str()] { (t.as_str()) }
                                    }
                                }
                            }
                            label { "Description " textarea name="fraud_description" maxlength="2000" { (typed.fraud_description) } }
                            p.muted { "A typology records a fraud indication with the rejection, shared with the sharing system within 24 hours." }
                        }
                        button type="submit" { "Resolve" }
                    }
                }
            }
        }
        (links_section(&links))
        (explained(&explanation))
    };
    Ok(body)
}

/// How far back the console looks for linked onboardings: the API's default.
const LINKS_WINDOW_SECS: i64 = 180 * 24 * 3600;

/// For each of an onboarding's values, the other onboardings sharing it (newest first), each
/// with its verdict and a link to its case or decision.
fn links_section(links: &Links) -> Markup {
    html! {
        h2 { "Linked onboardings (last 180 days)" }
        div id="links" {
            @if links.items.iter().all(|k| k.count == 0) {
                p.muted { "No other onboarding shares its CPF, device, phone or e-mail." }
            }
            @for of_key in links.items.iter().filter(|k| k.count > 0) {
                h3 { "Same " (of_key.key.as_str()) ": " span.count { (of_key.count) } }
                @if of_key.count > of_key.onboardings.len() as i64 {
                    p.muted { "The newest " (of_key.onboardings.len()) " are shown." }
                }
                table.links data-key=(of_key.key.as_str()) {
                    thead { tr { th { "Created" } th { "CPF" } th { "Status" } th { "Outcome" } th { "By" } th { "Reasons" } th { "Reference" } th { "" } } }
                    tbody {
                        @for linked in &of_key.onboardings {
                            tr.linked {
                                td { (linked.created_at.format("%Y-%m-%d %H:%M UTC")) }
                                td { (linked.cpf.as_deref().unwrap_or("erased")) }
                                td { (linked.status) }
                                td.outcome { (linked.outcome.as_deref().unwrap_or("—")) }
                                td { (linked.decided_by.as_deref().unwrap_or("—")) }
                                td { (linked.reasons.join(", ")) }
                                td { (linked.reference.as_deref().unwrap_or("")) }
                                td { a.open href={ "/console/onboardings/" (linked.id) } { "Open" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A decision's explanation as the API answers it: every rule with its inputs, the evidence,
/// the timeline and the provider calls.
fn explained(explanation: &Value) -> Markup {
    html! {
        h2 { "Rules evaluated" }
        table id="rules" {
            thead { tr { th { "Rule" } th { "Outcome" } th { "Fired" } th { "Inputs" } } }
            tbody {
                @for rule in explanation["evaluations"].as_array().into_iter().flatten() {
                    tr class=[rule["fired"].as_bool().unwrap_or(false).then_some("fired")] {
                        td { (rule["code"].as_str().unwrap_or("")) }
                        td { (rule["outcome"].as_str().unwrap_or("")) }
                        td { @if rule["fired"].as_bool().unwrap_or(false) { "yes" } @else { "no" } }
                        td { pre { (rule["inputs"].to_string()) } }
                    }
                }
            }
        }
        h2 { "Evidence" }
        div.box { pre id="evidence" { (serde_json::to_string_pretty(&explanation["evidence"]).unwrap_or_default()) } }
        h2 { "Timeline" }
        table id="timeline" {
            tbody {
                @for event in explanation["timeline"].as_array().into_iter().flatten() {
                    tr { td { (event["at"].as_str().unwrap_or("")) } td { (event["kind"].as_str().unwrap_or("")) }
                         td { pre { (event["detail"].to_string()) } } }
                }
            }
        }
        h2 { "Provider calls" }
        table id="calls" {
            tbody {
                @for call in explanation["provider_calls"].as_array().into_iter().flatten() {
                    tr { td { (call["provider"].as_str().unwrap_or("")) } td { (call["operation"].as_str().unwrap_or("")) }
                         td { (call["http_status"].to_string()) } td { (call["latency_ms"].to_string()) " ms" } }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    fraud_typology: String,
    #[serde(default)]
    fraud_description: String,
}

async fn act(
    State(st): State<AppState>,
    session: Session,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, ApiError> {
    session.check(&form.csrf)?;
    if !session.caller.has(Scope::ReviewsWrite) {
        return Ok(session.refused("reviews:write"));
    }
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("review case"))?;
    let reviewer: &str = &session.caller.name;
    let result = match action.as_str() {
        "claim" => reviews::claim(&st.flow, id, reviewer)
            .await?
            .map(|_| "Claimed."),
        "release" => reviews::release(&st.flow, id, reviewer)
            .await?
            .map(|_| "Released."),
        "resolution" => {
            let typed = Typed {
                outcome: form.outcome,
                note: form.note,
                fraud_typology: form.fraud_typology,
                fraud_description: form.fraud_description,
            };
            let (outcome, note, fraud) = match resolution(&typed) {
                Ok(resolution) => resolution,
                Err(error) => {
                    // The page again, with what is wrong and what was typed.
                    let query = CaseQuery {
                        done: None,
                        error: Some(error),
                    };
                    let body = case_body(&st, &session, id, &query, &typed).await?;
                    let markup = page("Review case", Some(&session), body);
                    return Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response());
                }
            };
            reviews::resolve(&st.flow, id, reviewer, outcome, note, fraud)
                .await?
                .map(|_| "Resolved.")
        }
        _ => return Err(ApiError::NotFound("console action")),
    };
    Ok(back(
        id,
        result.map_err(|refusal| match refusal {
            Refusal::NotFound => "No such case.",
            Refusal::Resolved => "The case is resolved.",
            Refusal::HeldBy(_) => "Another reviewer holds this case.",
            Refusal::NotAssignee => "Only the reviewer holding the case may do that.",
            Refusal::ContestedDecisionMaker => {
                "You may not review this request: you made the decision this person contests \
                 (LGPD Art. 20). Another reviewer must review it."
            }
        }),
    ))
}

/// An outcome, a note and what a rejection records as fraud.
type Resolution<'a> = (Outcome, &'a str, Option<(Typology, String)>);

/// The resolution the form asks for, as the API takes it (`POST /v1/reviews/{id}/resolution`),
/// or what the page says is wrong with it. A fraud typology or description makes the
/// resolution carry `fraud`, which only a rejection may.
fn resolution(typed: &Typed) -> Result<Resolution<'_>, String> {
    let outcome = match typed.outcome.as_str() {
        "approved" => Outcome::Approved,
        "rejected" => Outcome::Rejected,
        "retry" => Outcome::Retry,
        _ => return Err("Choose an outcome.".into()),
    };
    let note = typed.note.trim();
    if note.is_empty() || note.chars().count() > 2000 || note.contains('\0') {
        return Err("Write a note of 1 to 2000 characters.".into());
    }
    let (typology, description) = (typed.fraud_typology.trim(), typed.fraud_description.trim());
    if typology.is_empty() && description.is_empty() {
        return Ok((outcome, note, None));
    }
    if outcome != Outcome::Rejected {
        return Err("Fraud is recorded only with a rejected outcome.".into());
    }
    let fraud = ReviewerFraud {
        typology: typology.to_owned(),
        description: description.to_owned(),
    };
    match fraud.parse() {
        Ok(parsed) => Ok((outcome, note, Some(parsed))),
        Err(errors) => Err(errors
            .iter()
            .map(|e| format!("The {} {}.", e.field.replace('.', " "), e.message))
            .collect::<Vec<_>>()
            .join(" ")),
    }
}

fn back(id: Uuid, result: Result<&str, &str>) -> Response {
    let (key, text) = match result {
        Ok(text) => ("done", text),
        Err(text) => ("error", text),
    };
    let query = serde_urlencoded::to_string([(key, text)]).unwrap_or_default();
    Redirect::to(&format!("/console/reviews/{id}?{query}")).into_response()
}

#[derive(Deserialize, Default)]
struct DecisionQuery {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    cpf: Option<String>,
}

async fn decisions(
    State(st): State<AppState>,
    session: Session,
    Query(query): Query<DecisionQuery>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let pii = session.caller.has(Scope::PiiRead);
    let clean = |v: &Option<String>| v.clone().filter(|s| !s.is_empty() && !s.contains('\0'));
    let mut filter = audit::DecisionFilter {
        outcome: clean(&query.outcome)
            .filter(|o| matches!(o.as_str(), "approved" | "rejected" | "review" | "retry")),
        reason: clean(&query.reason),
        reference: clean(&query.reference),
        ..Default::default()
    };
    let mut notice = None;
    if let Some(cpf) = clean(&query.cpf) {
        match (pii, Cpf::parse(&cpf)) {
            (true, Ok(cpf)) => filter.cpf_hash = Some(st.cipher.cpf_hash(&cpf.digits())),
            (true, Err(_)) => notice = Some("Not a valid CPF."),
            (false, _) => notice = Some("Searching by CPF needs the pii:read scope."),
        }
    }
    let rows = if notice.is_some() {
        Vec::new()
    } else {
        // Recorded like the API's searches: the filters, a CPF only as its keyed hash.
        let logged = serde_json::json!({
            "outcome": filter.outcome,
            "reason": filter.reason,
            "reference": filter.reference,
            "cpf": filter.cpf_hash.as_ref().map(|h| serde_json::json!({ "hmac": hex::encode(h) })),
        });
        audit::record_search(
            &st.db,
            &session.caller.name,
            "console /console/decisions",
            &logged,
        )
        .await?;
        audit::search(&st.reads, &filter, None, 100).await?
    };
    let items: Vec<DecisionItem> = rows
        .iter()
        .map(|r| DecisionItem::new(&st, r, pii))
        .collect();
    let body = html! {
        form method="get" action="/console/decisions" {
            label.inline { "Outcome "
                select name="outcome" {
                    option value="" { "any" }
                    @for o in ["approved", "rejected", "review", "retry"] {
                        option value=(o) selected[filter.outcome.as_deref() == Some(o)] { (o) }
                    }
                }
            }
            label.inline { "Reason " input name="reason" value=(query.reason.as_deref().unwrap_or("")); }
            label.inline { "Reference " input name="reference" value=(query.reference.as_deref().unwrap_or("")); }
            @if pii { label.inline { "CPF " input name="cpf" value=(query.cpf.as_deref().unwrap_or("")); } }
            button type="submit" { "Search" }
        }
        @if let Some(notice) = notice { p.error { (notice) } }
        table id="decisions" {
            thead { tr { th { "Decided" } th { "Outcome" } th { "By" } th { "Reasons" } th { "CPF" } th { "Reference" } } }
            tbody {
                @for d in &items {
                    tr {
                        td { a.decision href={ "/console/decisions/" (d.id) } { (d.decided_at.format("%Y-%m-%d %H:%M:%S UTC")) } }
                        td { (d.outcome) }
                        td { (d.decided_by) @if let Some(r) = &d.reviewer { " (" (r) ")" } }
                        td { @for r in d.reasons.as_array().into_iter().flatten() { (r["code"].as_str().unwrap_or("")) " " } }
                        td { (d.cpf.as_deref().unwrap_or("erased")) }
                        td { (d.reference.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(page("Decisions", Some(&session), body).into_response())
}

/// One decision as the API explains it, with the onboardings linked to its onboarding.
/// Recorded in the access record like the API's read of a decision.
async fn decision_page(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("decision"))?;
    audit::record_search(
        &st.db,
        &session.caller.name,
        "console /console/decisions/{id}",
        &serde_json::json!({ "decision_id": id }),
    )
    .await?;
    let row = audit::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("decision"))?;
    let onboarding_id = row.onboarding_id;
    let pii = session.caller.has(Scope::PiiRead);
    let explanation =
        serde_json::to_value(Explanation::load(&st, row, pii).await?).unwrap_or(Value::Null);
    let links = crate::onboarding::links::of(&st.flow, onboarding_id, LINKS_WINDOW_SECS)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    let codes: Vec<&str> = explanation["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["code"].as_str())
        .collect();
    let body = html! {
        div.box id="summary" {
            p { "Outcome: " strong id="outcome" { (explanation["outcome"].as_str().unwrap_or("")) }
                " — reasons " span id="reasons" { (codes.join(", ")) } }
            p { "Decided by " (explanation["decided_by"].as_str().unwrap_or(""))
                @if let Some(reviewer) = explanation["reviewer"].as_str() { " (" (reviewer) ")" }
                " on " (explanation["decided_at"].as_str().unwrap_or(""))
                " under policy " (explanation["policy_version"].as_str().unwrap_or("")) }
            p { "CPF: " span id="cpf" { (explanation["cpf"].as_str().unwrap_or("erased")) }
                @if let Some(name) = explanation["name"].as_str() { " · " (name) }
                @if let Some(reference) = explanation["reference"].as_str() { " · reference " (reference) } }
        }
        (links_section(&links))
        (explained(&explanation))
    };
    Ok(page("Decision", Some(&session), body).into_response())
}

/// An onboarding, from a link: its review case when it had one, otherwise its latest decision.
async fn onboarding_page(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("onboarding"))?;
    let cases = crate::store::reviews::of_onboardings(&st.db, &[id]).await?;
    if let Some(case) = cases.last() {
        return Ok(Redirect::to(&format!("/console/reviews/{}", case.id)).into_response());
    }
    if let Some(decision) = crate::store::decisions::for_onboarding(&st.db, id).await? {
        return Ok(Redirect::to(&format!("/console/decisions/{}", decision.id)).into_response());
    }
    if crate::store::onboardings::state(&st.db, id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("onboarding"));
    }
    let body = html! { p.muted id="undecided" { "This onboarding has no decision yet." } };
    Ok(page("Onboarding", Some(&session), body).into_response())
}

#[derive(Deserialize, Default)]
struct PoliciesQuery {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    days: Option<i64>,
}

/// The versions, and for one of them its replay over recent decisions beside its shadow report.
async fn policies_page(
    State(st): State<AppState>,
    session: Session,
    Query(query): Query<PoliciesQuery>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let versions = crate::store::policies::list(&st.db).await?;
    let days = query.days.unwrap_or(7).clamp(1, 90);
    let chosen = query
        .version
        .clone()
        .filter(|v| versions.iter().any(|r| &r.version == v))
        .or_else(|| {
            versions
                .iter()
                .find(|r| r.status == "shadow" || r.status == "draft")
                .map(|r| r.version.clone())
        });
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::days(days);
    let mut compared = None;
    if let Some(version) = &chosen {
        let row = versions.iter().find(|r| &r.version == version);
        if let Some(policy) = row
            .and_then(|r| r.document().ok())
            .and_then(|d| d.parse().ok())
        {
            let replay =
                crate::onboarding::replay::run(&st.flow, from, to, 10_000, version, |_| {
                    policy.clone()
                })
                .await?;
            let shadow =
                crate::onboarding::policies::shadow_report(&st.flow, version, from, to).await?;
            compared = Some((replay, shadow));
        }
    }
    let body = html! {
        table id="versions" {
            thead { tr { th { "Version" } th { "Status" } th { "Created by" } th { "Published by" } th { "" } } }
            tbody {
                @for v in &versions {
                    tr {
                        td { (v.version) }
                        td { (v.status) }
                        td { (v.created_by) " · " (v.created_at.format("%Y-%m-%d %H:%M")) }
                        td { (v.published_by.as_deref().unwrap_or("—")) }
                        td { a href={ "/console/policies?version=" (v.version) "&days=" (days) } { "Compare" } }
                    }
                }
            }
        }
        @if let (Some(version), Some((replay, shadow))) = (&chosen, &compared) {
            h2 { "Version " (version) " over the last " (days) " days" }
            div.pair {
                div.box id="replay" {
                    h3 { "Replay over stored decisions" }
                    p { (replay.evaluated) " evaluated · " strong { (replay.changed) } " would change · "
                        (replay.reasons_changed) " with other reasons" }
                    table { tbody { @for (transition, n) in &replay.by_transition { tr { td { (transition) } td { (n) } } } } }
                }
                div.box id="shadow" {
                    h3 { "Shadow on live traffic" }
                    p { (shadow.evaluated) " evaluated · " strong { (shadow.agreed) } " agreed" }
                    table { tbody { @for pair in &shadow.pairs { tr { td { (pair.live) "->" (pair.shadow) } td { (pair.count) } } } } }
                }
            }
        }
        p.muted { "Drafting, shadowing and publishing happen through /v1/policies with a policies:write key; publishing takes a second key." }
    };
    Ok(page("Policies", Some(&session), body).into_response())
}
