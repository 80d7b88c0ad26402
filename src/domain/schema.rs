//! Pieces of the OpenAPI schemas that the answers' types share, whatever layer they live in.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A text field that holds one of `words` (a column kept as text, whose values the code
/// writes), for `#[schema(schema_with = ...)]`. Such a field's doc comment is not read: its
/// description goes here.
pub fn one_of(words: &[&str], description: Option<&str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words.iter().copied()))
        .description(description)
        .build()
}
