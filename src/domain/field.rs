//! A value the caller sent that cannot be used, named by its field.

use serde::Serialize;

/// One invalid value, named by its field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An id that travels in a provider's URL path (QI Tech's account, person and device): 1 to
/// `max` letters, digits, `.`, `_` or `-`, and not only dots, so it can never step out of its
/// path segment (`..`), whatever the URL parser makes of it.
pub fn provider_id(field: &str, value: &str, max: usize) -> Option<FieldError> {
    segment(
        field,
        value,
        max,
        b"._-",
        "letters, digits, '.', '_' or '-' (and not only dots)",
    )
}

/// An Open Finance enrollment id, which travels in Zro's URL path: as `provider_id`, and `:` as
/// well, since Open Finance Brasil writes enrollment ids as URNs (`urn:bank:C1DD93123`). No
/// `/`, `?`, `#`, `%` or dot segment can reach the URL, where Zro's bearer token goes.
pub fn enrollment_id(field: &str, value: &str, max: usize) -> Option<FieldError> {
    segment(
        field,
        value,
        max,
        b"._-:",
        "letters, digits, '.', '_', '-' or ':' (and not only dots)",
    )
}

fn segment(
    field: &str,
    value: &str,
    max: usize,
    punctuation: &[u8],
    allowed: &str,
) -> Option<FieldError> {
    if value.is_empty() {
        return Some(FieldError::new(field, "must not be empty"));
    }
    if value.len() > max {
        return Some(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let safe = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || punctuation.contains(&b));
    if !safe || value.bytes().all(|b| b == b'.') {
        return Some(FieldError::new(field, format!("must be {allowed}")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_stay_inside_their_path_segment() {
        for good in ["acc-1", "per_1", "dev.1", "A9", "a..b"] {
            assert_eq!(provider_id("x", good, 100), None, "{good}");
        }
        for bad in [
            "", ".", "..", "...", "a/b", "a b", "a%2e", "a?b", "a#b", "é", "a\u{0}",
        ] {
            assert!(provider_id("x", bad, 100).is_some(), "{bad}");
        }
        assert!(provider_id("x", &"a".repeat(101), 100).is_some());
    }

    #[test]
    fn enrollment_ids_may_be_urns_but_never_leave_their_path_segment() {
        for good in ["enr-42", "urn:bancoex:C1DD93123", "a..b"] {
            assert_eq!(enrollment_id("x", good, 200), None, "{good}");
        }
        for bad in [
            "", ".", "..", "a/b", "../x", "a?b", "a#b", "%2e%2e", "a%2Fb", "a b", "é",
        ] {
            assert!(enrollment_id("x", bad, 200).is_some(), "{bad}");
        }
    }
}
