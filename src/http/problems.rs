//! The refusals operations share, described once for the OpenAPI document: those of every
//! authenticated operation (401, 403, 429 and 503, the last two with `Retry-After`), and those of
//! every operation that reads a JSON body (400, 413, 415 and 422). Each is a problem+json.

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

/// Listed in the `responses(...)` of an operation that reads a JSON body.
pub struct BodyRefusals;

impl utoipa::IntoResponses for BodyRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("400".to_owned(), problem("The request is malformed", false)),
            ("413".to_owned(), problem("The body is over 2 MiB", false)),
            (
                "415".to_owned(),
                problem("The body is not application/json", false),
            ),
            (
                "422".to_owned(),
                problem("Invalid values, each named by its field", false),
            ),
        ])
    }
}
