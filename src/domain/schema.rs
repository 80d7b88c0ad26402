//! The OpenAPI shape of a text that holds one of a few values: a column the store writes as
//! text, or a view's `&'static str`. The answers' derives describe such a field with
//! `#[schema(schema_with = ...)]` and a function that calls one of these.

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

/// A string, one of `values`.
pub fn one_of(values: &[&'static str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// A string, one of `values`, or null.
pub fn one_of_or_null(values: &[&'static str]) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            values
                .iter()
                .map(|v| serde_json::Value::from(*v))
                .chain([serde_json::Value::Null]),
        ))
        .build()
}
