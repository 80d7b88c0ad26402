//! The signed-in console user: the session's cookie, its rate and its form token.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::console;

pub(super) const COOKIE: &str = "veredito_console";
pub(super) const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// A signed-in console user. Without a live session every console page sends the browser to
/// the sign-in page. Each request of a session spends the rate of the key it was opened with,
/// as the key's own requests do (429 past it), and a session whose key is no longer configured
/// is over.
pub struct Session {
    pub(crate) caller: Caller,
    pub(crate) csrf: String,
    pub(super) id_sha256: [u8; 32],
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
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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

/// A signed-in user whose key reads decisions (`reviews:write` or `decisions:read`): the
/// review queue, cases, decisions and policies take this instead of a [`Session`]. Without a
/// session the browser goes to the sign-in page; without the scope it gets the 403 page that
/// names it.
pub struct Reader(pub Session);

impl FromRequestParts<AppState> for Reader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let session = <Session as FromRequestParts<AppState>>::from_request_parts(parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        if session.reads_decisions() {
            Ok(Reader(session))
        } else {
            Err(session.refused("reviews:write or decisions:read"))
        }
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
    pub(super) fn home(&self) -> &'static str {
        home_of(&self.caller)
    }

    /// Who the header names: the person, or the key's name.
    pub(super) fn who(&self) -> &str {
        self.person.as_deref().unwrap_or(&self.caller.name)
    }

    /// Whether a person signed in through the identity provider holds the session.
    pub(super) fn is_person(&self) -> bool {
        self.person.is_some()
    }
}

/// The first console page `caller` may see.
pub(super) fn home_of(caller: &Caller) -> &'static str {
    home_of_scopes(caller.scopes())
}

/// The first console page a session with `scopes` may see.
pub(super) fn home_of_scopes(scopes: &[Scope]) -> &'static str {
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
pub(super) fn opens_console(scopes: &[Scope]) -> bool {
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

/// Opens a session named `name` with `scopes` (of a key, or of a person's roles) and answers
/// the cookie that holds it.
pub(super) async fn open_session(
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

pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source works");
    hex::encode(bytes)
}

/// A message for the next page after an action: what was done, or why not.
pub(super) enum Flash {
    Notice(String),
    Error(String),
}

impl Session {
    /// Keeps `flash` for this session's next page (post/redirect/get): the URL holds no message,
    /// so a reload does not show it again.
    pub(super) async fn flash(&self, st: &AppState, flash: Flash) -> Result<(), ApiError> {
        let (kind, text) = match &flash {
            Flash::Notice(text) => ("notice", text),
            Flash::Error(text) => ("error", text),
        };
        crate::store::flashes::set(&st.db, &self.id_sha256, kind, text).await?;
        Ok(())
    }

    /// The message an action kept for this page, gone once read.
    pub(super) async fn take_flash(&self, st: &AppState) -> Result<Option<Flash>, ApiError> {
        Ok(
            match crate::store::flashes::take(&st.db, &self.id_sha256).await? {
                Some((kind, text)) if kind == "error" => Some(Flash::Error(text)),
                Some((_, text)) => Some(Flash::Notice(text)),
                None => None,
            },
        )
    }
}
