//! The risk team's lists (`lists:write` to change, `decisions:read` to read) and the links
//! between onboardings.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::http::json::JsonBody;
use crate::http::page::{Cursor, ListQuery, finish};
use crate::http::state::AppState;
use crate::onboarding::links::Links;
use crate::onboarding::lists::{
    self, Added, EntryView, ListView, Lookup, NewEntries, NewList, Outcome, Removal,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/lists", get(list).post(create))
        .route("/v1/lists/{name}/entries", get(entries).post(add))
        .route("/v1/lists/{name}/entries/removal", post(remove))
        .route("/v1/onboardings/{id}/links", get(links))
}

fn refused<T>(outcome: Outcome<T>, what: &'static str) -> Result<T, ApiError> {
    match outcome {
        Outcome::Done(done) => Ok(done),
        Outcome::NotFound => Err(ApiError::NotFound(what)),
        Outcome::Invalid(errors) => Err(ApiError::Validation(errors)),
        Outcome::Exists => Err(ApiError::Conflict("a list of this name exists".into())),
    }
}

#[utoipa::path(
    post,
    path = "/v1/lists",
    tag = "lists",
    operation_id = "createList",
    request_body(content = NewList, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = ListView),
        (status = 409, description = "A list of this name exists", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<JsonBody<NewList>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ListsWrite)?;
    let view = refused(
        lists::create(&st.flow, body?.value, &caller.name).await?,
        "list",
    )?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/lists",
    tag = "lists",
    operation_id = "listLists",
    responses(
        (status = 200, description = "Every list with its count of live entries", body = ListPage),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn list(State(st): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_any(&[Scope::DecisionsRead, Scope::ListsWrite])?;
    let items = lists::all(&st.flow).await?;
    Ok(Json(ListPage {
        items,
        next_cursor: None,
    })
    .into_response())
}

/// Every list, on one page: `next_cursor` is always null.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ListPage {
    items: Vec<ListView>,
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/lists/{name}/entries",
    tag = "lists",
    operation_id = "addListEntries",
    params(("name" = String, Path, description = "The list")),
    request_body(content = NewEntries, content_type = "application/json"),
    responses(
        (status = 200, description = "Added, in one statement; values already listed are counted apart", body = Added),
        crate::http::problems::NotFound,
        crate::http::problems::BodyRefusals,
        (status = 422, description = "Invalid values, each named by its field (entries[i].value); nothing added", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn add(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<JsonBody<NewEntries>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ListsWrite)?;
    let added = refused(
        lists::add(&st.flow, &name, body?.value, &caller.name).await?,
        "list",
    )?;
    Ok(Json(added).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/lists/{name}/entries/removal",
    tag = "lists",
    operation_id = "removeListEntry",
    params(("name" = String, Path, description = "The list")),
    request_body(content = Removal, content_type = "application/json"),
    responses(
        (status = 200, description = "Removed; the removal is kept in the value's history", body = ListEntryRemoved),
        (status = 404, description = "No such list, or the value is not listed", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<JsonBody<Removal>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ListsWrite)?;
    refused(
        lists::remove(&st.flow, &name, body?.value, &caller.name).await?,
        "listed value",
    )?;
    Ok(Json(ListEntryRemoved { removed: true }).into_response())
}

/// The answer of a removal: always `{"removed": true}` (a value not listed is a 404).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ListEntryRemoved {
    removed: bool,
}

#[utoipa::path(
    get,
    path = "/v1/lists/{name}/entries",
    tag = "lists",
    operation_id = "listEntries",
    params(
        ("name" = String, Path, description = "The list"),
        ("value" = Option<String>, Query, description = "One value: whether it is listed, its entry and its history"),
        crate::http::page::ListQuery<i64, 500, 100>,
    ),
    responses(
        (status = 200, description = "With value: {listed, entry, history}; without: the live entries, masked, newest first", body = ListEntries),
        crate::http::problems::NotFound,
        crate::http::problems::QueryRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn entries(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    query: ListQuery<i64, 500, 100>,
) -> Result<Response, ApiError> {
    caller.require_any(&[Scope::DecisionsRead, Scope::ListsWrite])?;
    let ListQuery {
        page,
        rest,
        mut errors,
    } = query;
    let mut value = None;
    for (name, given) in rest {
        if name == "value" && value.is_none() {
            value = Some(given);
        } else {
            errors.push(FieldError::new(
                name,
                "the parameters are value, or limit and cursor",
            ));
        }
    }
    finish(errors)?;
    if let Some(value) = value {
        let (lookup, masked, hash) =
            refused(lists::lookup(&st.flow, &name, &value).await?, "list")?;
        // A lookup by value is a search for a person's data: it leaves an access record, with
        // the value masked and as its keyed hash.
        crate::store::audit::record_search(
            &st.db,
            &caller.name,
            "GET /v1/lists/{name}/entries",
            &json!({ "list": name, "value": masked, "value_hash": hex(&hash) }),
        )
        .await?;
        return Ok(Json(ListEntries::Value(lookup)).into_response());
    }
    let (items, next) = refused(
        lists::live(&st.flow, &name, page.cursor, page.limit).await?,
        "list",
    )?;
    Ok(Json(ListEntries::Page(ListEntryPage {
        items,
        next_cursor: next.map(|id| id.encode()),
    }))
    .into_response())
}

/// A list's entries: with `value`, that value's lookup; without, a page of the live entries.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ListEntries {
    Page(ListEntryPage),
    Value(Lookup),
}

/// A page of a list's live entries, masked, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ListEntryPage {
    items: Vec<EntryView>,
    /// Where the next page starts; null on the last page
    #[schema(required = true)]
    next_cursor: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksQuery {
    window: Option<String>,
}

/// The longest window links look back over.
const LONGEST_WINDOW: Duration = Duration::from_secs(400 * 24 * 3600);

#[utoipa::path(
    get,
    path = "/v1/onboardings/{id}/links",
    tag = "onboardings",
    operation_id = "getOnboardingLinks",
    params(
        ("id" = Uuid, Path, description = "The onboarding"),
        ("window" = Option<String>, Query, description = "How far back, from now: 1m to 400d (default 180d)"),
    ),
    responses(
        (status = 200, description = "For each of its values, the other onboardings sharing it, newest first, 50 at most with the count of all", body = Links),
        crate::http::problems::NotFound,
        (status = 422, description = "Invalid values, each named by its field", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn links(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<LinksQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::DecisionsRead)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("onboarding"))?;
    let Query(query) =
        query.map_err(|_| ApiError::validation("window", "the one parameter is window"))?;
    let window = match query.window.as_deref() {
        None => Duration::from_secs(180 * 24 * 3600),
        Some(text) => humantime::parse_duration(text.trim())
            .ok()
            .filter(|d| (Duration::from_secs(60)..=LONGEST_WINDOW).contains(d))
            .ok_or_else(|| ApiError::validation("window", "must be a duration from 1m to 400d"))?,
    };
    let links = crate::onboarding::links::of(&st.flow, id, window.as_secs() as i64)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    crate::store::audit::record_search(
        &st.db,
        &caller.name,
        "GET /v1/onboardings/{id}/links",
        &json!({ "onboarding_id": id, "window": humantime::format_duration(window).to_string() }),
    )
    .await?;
    Ok(Json(links).into_response())
}
