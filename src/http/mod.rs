//! The HTTP surface: one file per resource.

pub mod auth;
