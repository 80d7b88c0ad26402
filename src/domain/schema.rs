//! Pieces of the OpenAPI schemas that the answers' types share, whatever layer they live in: the
//! shape of a text that holds one of a few values (a column the store writes as text, or a
//! view's `&'static str`). The answers' derives describe such a field with
//! `#[schema(schema_with = ...)]` and a function that calls one of these. Such a field's doc
//! comment is not read: its description goes here.

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

/// A string, one of `words`.
pub fn one_of(words: &[&str], description: Option<&str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words.iter().copied()))
        .description(description)
        .build()
}

/// A string, one of `words`, or null.
pub fn one_of_or_null(words: &[&str], description: Option<&str>) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            words
                .iter()
                .map(|v| serde_json::Value::from(*v))
                .chain([serde_json::Value::Null]),
        ))
        .description(description)
        .build()
}
