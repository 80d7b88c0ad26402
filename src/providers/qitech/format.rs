//! How values are written for QI Tech: dates in Brasília time, phones in its three parts, ids
//! kept inside one path segment.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

use super::wire;

/// Dates go out in Brasília time with the offset written, as QI Tech's examples show. Brazil
/// has kept UTC-3 all year since 2019.
pub fn qitech_date(at: DateTime<Utc>) -> String {
    let brasilia = FixedOffset::west_opt(3 * 3600).expect("a three-hour offset is valid");
    at.with_timezone(&brasilia)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// `5511974749090` -> dial code 55, area 11, number 974749090. Numbers without a country code
/// (10 or 11 digits) are taken as Brazilian.
pub(super) fn split_phone(digits: &str) -> Option<wire::PhoneBody> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (dial, rest) = match digits.len() {
        10 | 11 => ("55", digits),
        12 | 13 => digits.split_at(2),
        _ => return None,
    };
    let (area, number) = rest.split_at(2);
    Some(wire::PhoneBody {
        international_dial_code: dial.to_owned(),
        area_code: area.to_owned(),
        number: number.to_owned(),
    })
}

pub(super) fn encode(segment: &str) -> String {
    // Ids come from callers; keep them inside one path segment whatever they contain.
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_is_split_into_qitech_parts() {
        let p = split_phone("5511974749090").unwrap();
        assert_eq!(
            (
                p.international_dial_code.as_str(),
                p.area_code.as_str(),
                p.number.as_str()
            ),
            ("55", "11", "974749090")
        );
        let p = split_phone("11974749090").unwrap();
        assert_eq!(
            (
                p.international_dial_code.as_str(),
                p.area_code.as_str(),
                p.number.as_str()
            ),
            ("55", "11", "974749090")
        );
        assert!(split_phone("123").is_none());
    }

    #[test]
    fn dates_carry_the_brasilia_offset() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T15:00:00.120Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(qitech_date(at), "2026-01-02T12:00:00.120-03:00");
    }
}
