//! `limit` and `cursor`, read the same way by every list, and the page they answer: `{"items":
//! [...], "next_cursor": "opaque or null"}`.
//!
//! A list reads its query string once through [`ListQuery`]: a query string that cannot be read
//! is answered 400 before the handler runs; a bad `limit` or `cursor` becomes a mistake named by
//! its field, answered 422 together with the handler's own (a wrong filter and a wrong limit are
//! named at once).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::http::error::{ApiError, FieldError};

/// Where the next page starts. Opaque to clients by contract.
pub trait Cursor: Sized {
    fn encode(&self) -> String;
    fn decode(text: &str) -> Option<Self>;
}

/// The last row's sort key: a time and the row's id. A page never depends on the rows before
/// it, so inserts while paging neither shift nor repeat anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor for Keyset {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.at.timestamp_micros(), self.id))
    }

    fn decode(text: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        // `/` is how the decisions' cursors were written before they joined this one.
        let (micros, id) = raw.split_once(['|', '/'])?;
        Some(Keyset {
            at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// A row number: the last row's id, for lists kept in insertion order.
impl Cursor for i64 {
    fn encode(&self) -> String {
        self.to_string()
    }

    fn decode(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// How many rows a page of one list holds: `DEFAULT` when `limit` is not given, at most `MAX`.
#[derive(Debug)]
pub struct Page<C, const MAX: i64, const DEFAULT: i64> {
    pub limit: i64,
    pub cursor: Option<C>,
    /// Whether the query gave `limit` (the decisions' search log keeps it).
    pub limit_given: bool,
}

impl<C: Cursor, const MAX: i64, const DEFAULT: i64> Page<C, MAX, DEFAULT> {
    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts `rows` (fetched with [`Page::fetch`]) to the page, and answers the cursor of the
    /// next page when there is one.
    pub fn cut<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> C) -> Option<String> {
        if rows.len() as i64 > self.limit {
            rows.truncate(self.limit as usize);
            rows.last().map(|row| key(row).encode())
        } else {
            None
        }
    }
}

/// The answer of a list.
pub fn answer<T: Serialize>(
    items: T,
    next_cursor: Option<String>,
) -> axum::Json<serde_json::Value> {
    axum::Json(json!({ "items": items, "next_cursor": next_cursor }))
}

/// A list's query string: the page read, the other parameters left for the handler in the
/// order given, with the mistakes found so far.
#[derive(Debug)]
pub struct ListQuery<C, const MAX: i64 = 200, const DEFAULT: i64 = 50> {
    pub page: Page<C, MAX, DEFAULT>,
    pub rest: Vec<(String, String)>,
    pub errors: Vec<FieldError>,
}

impl<C: Cursor, const MAX: i64, const DEFAULT: i64> ListQuery<C, MAX, DEFAULT> {
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs = pairs(query)?;
        let mut page = Page {
            limit: DEFAULT,
            cursor: None,
            limit_given: false,
        };
        let mut errors = Vec::new();
        let mut rest = Vec::new();
        let mut cursor_given = false;
        for (name, value) in pairs {
            let repeated = match name.as_str() {
                "limit" => std::mem::replace(&mut page.limit_given, true),
                "cursor" => std::mem::replace(&mut cursor_given, true),
                _ => false,
            };
            if repeated {
                errors.push(FieldError::new(name, "given more than once"));
                continue;
            }
            match name.as_str() {
                "limit" => match value.parse::<i64>() {
                    Ok(n) if (1..=MAX).contains(&n) => page.limit = n,
                    _ => errors.push(FieldError::new(
                        "limit",
                        format!("must be a whole number from 1 to {MAX}"),
                    )),
                },
                "cursor" => match C::decode(&value) {
                    Some(c) => page.cursor = Some(c),
                    None => errors.push(FieldError::new(
                        "cursor",
                        "is not a cursor this service handed out",
                    )),
                },
                _ => rest.push((name, value)),
            }
        }
        Ok(ListQuery { page, rest, errors })
    }

    /// The page of a list that takes no other parameter: any other is refused.
    pub fn only_page(self) -> Result<Page<C, MAX, DEFAULT>, ApiError> {
        let mut errors = self.errors;
        for (name, _) in self.rest {
            errors.push(FieldError::new(name, "unknown parameter"));
        }
        finish(errors)?;
        Ok(self.page)
    }
}

/// `limit` and `cursor` as the OpenAPI document describes them, from the list's own bounds:
/// `params(ListQuery<...>)` in a `#[utoipa::path]`, after the list's other parameters.
impl<C, const MAX: i64, const DEFAULT: i64> utoipa::IntoParams for ListQuery<C, MAX, DEFAULT> {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let query = |name: &str, description: String, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema.build()))
                .build()
        };
        vec![
            query(
                "limit",
                format!("1 to {MAX}, default {DEFAULT}"),
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
            ),
            query(
                "cursor",
                "next_cursor of the previous page".to_owned(),
                ObjectBuilder::new().schema_type(Type::String),
            ),
        ]
    }
}

/// The query string's name and value pairs, in the order given; 400 when it cannot be read.
pub fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))
}

/// Every mistake found, answered at once; none, and the request goes on.
pub fn finish(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

impl<S, C, const MAX: i64, const DEFAULT: i64> FromRequestParts<S> for ListQuery<C, MAX, DEFAULT>
where
    S: Send + Sync,
    C: Cursor + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        ListQuery::parse(parts.uri.query())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Query = ListQuery<Keyset, 200, 50>;

    fn fields(query: &str) -> Vec<String> {
        Query::parse(Some(query))
            .unwrap()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn limit_and_cursor_are_read_alike_for_every_list() {
        let keyset = Keyset {
            at: DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap(),
            id: Uuid::nil(),
        };
        let parsed = Query::parse(Some(&format!(
            "status=open&limit=7&cursor={}",
            keyset.encode()
        )))
        .unwrap();
        assert_eq!(parsed.page.limit, 7);
        assert_eq!(parsed.page.cursor, Some(keyset));
        assert_eq!(parsed.rest, [("status".to_owned(), "open".to_owned())]);
        assert!(parsed.errors.is_empty());
        assert_eq!(Query::parse(None).unwrap().page.limit, 50);
        for (case, query, expected) in [
            ("zero", "limit=0", vec!["limit"]),
            ("above the list's maximum", "limit=201", vec!["limit"]),
            ("not a number", "limit=ten", vec!["limit"]),
            ("not base64", "cursor=%21%21", vec!["cursor"]),
            ("base64 of no key", "cursor=bm90LWEta2V5", vec!["cursor"]),
            ("both", "limit=-1&cursor=x", vec!["limit", "cursor"]),
            ("twice", "limit=5&limit=6", vec!["limit"]),
            ("the maximum", "limit=200", vec![]),
        ] {
            assert_eq!(fields(query), expected, "{case}");
        }
        // The decisions' cursors as they were written before still read.
        let old = URL_SAFE_NO_PAD.encode(format!("1767225600123456/{}", Uuid::nil()));
        assert_eq!(Keyset::decode(&old), Some(keyset));
    }

    #[test]
    fn a_page_is_cut_with_the_next_cursor_only_when_more_follow() {
        let page: Page<i64, 500, 100> = Page {
            limit: 2,
            cursor: None,
            limit_given: true,
        };
        let mut rows = vec![9, 8, 7];
        assert_eq!(page.cut(&mut rows, |r| *r), Some("8".to_owned()));
        assert_eq!(rows, [9, 8]);
        let mut rows = vec![9, 8];
        assert_eq!(page.cut(&mut rows, |r| *r), None);
        let refused = Query::parse(Some("colour=red")).unwrap().only_page();
        assert!(matches!(refused, Err(ApiError::Validation(e)) if e[0].field == "colour"));
    }
}
