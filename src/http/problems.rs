//! The refusals operations share, described once for the OpenAPI document: those of every
//! authenticated operation (401, 403, 429 and 503, the last two with `Retry-After`), those of
//! every operation that reads a JSON body (400, 413, 415 and 422), and those of every operation
//! that reads parameters from its query string (400 and 422); and the plain 404 and 409 of an
//! operation on one resource. Each is a problem+json.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// Listed in a `#[utoipa::path]`'s `responses(...)`.
pub struct Refusals;

fn problem(description: &str, retry_after: bool) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(utoipa::openapi::schema::Object::with_type(
                    utoipa::openapi::schema::Type::Integer,
                ))
                .description(Some("Seconds to wait before trying again"))
                .build(),
        );
    }
    RefOr::T(response.build())
}

impl utoipa::IntoResponses for Refusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("401".to_owned(), problem("No valid API key", false)),
            ("403".to_owned(), problem("The key lacks the scope", false)),
            (
                "429".to_owned(),
                problem("Too many requests for this key; see Retry-After", true),
            ),
            (
                "503".to_owned(),
                problem(
                    "The database is unreachable or the service is saturated (requests in \
                     progress, submissions being stored, or api.max_replays policy replays \
                     running); see Retry-After",
                    true,
                ),
            ),
        ])
    }
}

fn malformed() -> (String, RefOr<Response>) {
    ("400".to_owned(), problem("The request is malformed", false))
}

fn invalid() -> (String, RefOr<Response>) {
    (
        "422".to_owned(),
        problem("Invalid values, each named by its field", false),
    )
}

/// Listed in the `responses(...)` of an operation that reads parameters from its query string
/// (every list: see `ListQuery`).
pub struct QueryRefusals;

impl utoipa::IntoResponses for QueryRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([malformed(), invalid()])
    }
}

/// Listed in the `responses(...)` of an operation that reads a JSON body.
pub struct BodyRefusals;

impl utoipa::IntoResponses for BodyRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            malformed(),
            ("413".to_owned(), problem("The body is over 2 MiB", false)),
            (
                "415".to_owned(),
                problem("The body is not application/json", false),
            ),
            invalid(),
        ])
    }
}

/// A 404 "Not found", for an operation on one resource named in its path.
pub struct NotFound;

impl utoipa::IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([("404".to_owned(), problem("Not found", false))])
    }
}

/// A 409 "Conflict with the current state", for a change the resource's state refuses.
pub struct Conflict;

impl utoipa::IntoResponses for Conflict {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([(
            "409".to_owned(),
            problem("Conflict with the current state", false),
        )])
    }
}
