//! The values that tie onboardings together (the CPF, the device, the phone, the e-mail), each
//! normalised so that two ways of writing one value give one key, and masked for display. Only
//! their keyed hashes are stored; the masks are what lists and links show.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::Cpf;

/// A kind of value onboardings are linked by, in the order links are listed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LinkKey {
    Cpf,
    DeviceId,
    Phone,
    Email,
}

/// Longest value accepted for a device id or an e-mail.
const LONGEST: usize = 254;

impl LinkKey {
    pub const ALL: [LinkKey; 4] = [
        LinkKey::Cpf,
        LinkKey::DeviceId,
        LinkKey::Phone,
        LinkKey::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkKey::Cpf => "cpf",
            LinkKey::DeviceId => "device_id",
            LinkKey::Phone => "phone",
            LinkKey::Email => "email",
        }
    }

    pub fn parse(text: &str) -> Option<LinkKey> {
        LinkKey::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The value as it is hashed: the CPF's 11 digits, the device id trimmed, the phone's
    /// digits with Brazil's country code 55 in front of a 10- or 11-digit number, the e-mail
    /// trimmed and in lower case. Refused (with why) when it cannot be a value of this key.
    pub fn normalise(self, raw: &str) -> Result<String, &'static str> {
        let raw = raw.trim();
        match self {
            LinkKey::Cpf => Cpf::parse(raw)
                .map(|cpf| cpf.digits())
                .map_err(|_| "must be a CPF with valid check digits"),
            LinkKey::DeviceId => {
                if raw.is_empty() || raw.len() > LONGEST || raw.chars().any(char::is_control) {
                    Err("must be 1 to 254 characters, none of them a control character")
                } else {
                    Ok(raw.to_owned())
                }
            }
            LinkKey::Phone => {
                if raw
                    .chars()
                    .any(|c| !(c.is_ascii_digit() || " +-().".contains(c)))
                {
                    return Err(
                        "must be a phone number: digits, with or without + ( ) - . or spaces",
                    );
                }
                let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
                match digits.len() {
                    10 | 11 => Ok(format!("55{digits}")),
                    12 | 13 => Ok(digits),
                    _ => Err(
                        "must have 10 to 13 digits (area code and number, or with the country code)",
                    ),
                }
            }
            LinkKey::Email => {
                let lower = raw.to_lowercase();
                let valid = lower.len() <= LONGEST
                    && !lower.chars().any(|c| c.is_whitespace() || c.is_control())
                    && lower.split_once('@').is_some_and(|(local, domain)| {
                        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
                    });
                if valid {
                    Ok(lower)
                } else {
                    Err("must be an e-mail address")
                }
            }
        }
    }

    /// What may be shown of a normalised value: the CPF as `***.444.777-**`, the phone and the
    /// device id by their last four characters, the e-mail by its first letter and its domain.
    pub fn mask(self, normalised: &str) -> String {
        match self {
            LinkKey::Cpf => match Cpf::parse(normalised) {
                Ok(cpf) => cpf.masked(),
                Err(_) => "***".into(),
            },
            LinkKey::DeviceId | LinkKey::Phone => {
                let chars: Vec<char> = normalised.chars().collect();
                let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
                format!("***{tail}")
            }
            LinkKey::Email => match normalised.split_once('@') {
                Some((local, domain)) => {
                    let first: String = local.chars().take(1).collect();
                    format!("{first}***@{domain}")
                }
                None => "***".into(),
            },
        }
    }
}

impl fmt::Display for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An onboarding's values, normalised, by key; a value the request did not carry (or that
/// cannot be one of its key, such as a phone without digits) is absent.
pub fn values(
    cpf: &Cpf,
    device_id: &str,
    phone: Option<&str>,
    email: Option<&str>,
) -> Vec<(LinkKey, String)> {
    let mut out = vec![(LinkKey::Cpf, cpf.digits())];
    for (key, raw) in [
        (LinkKey::DeviceId, Some(device_id)),
        (LinkKey::Phone, phone),
        (LinkKey::Email, email),
    ] {
        if let Some(value) = raw.and_then(|raw| key.normalise(raw).ok()) {
            out.push((key, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_normalised_as_the_contract_says() {
        let cases = [
            (LinkKey::Cpf, "111.444.777-35", Ok("11144477735")),
            (LinkKey::Cpf, "111.444.777-36", Err(())),
            (LinkKey::DeviceId, "  dev-1 ", Ok("dev-1")),
            (LinkKey::DeviceId, "   ", Err(())),
            (LinkKey::Phone, "(11) 97474-9090", Ok("5511974749090")),
            (LinkKey::Phone, "+55 11 97474-9090", Ok("5511974749090")),
            (LinkKey::Phone, "1133334444", Ok("551133334444")),
            (LinkKey::Phone, "97474-9090", Err(())),
            (LinkKey::Phone, "call me", Err(())),
            (
                LinkKey::Email,
                " Maria@Example.COM ",
                Ok("maria@example.com"),
            ),
            (LinkKey::Email, "maria.example.com", Err(())),
            (LinkKey::Email, "a@b@c", Err(())),
        ];
        for (key, raw, expected) in cases {
            assert_eq!(
                key.normalise(raw).map_err(|_| ()),
                expected.map(str::to_owned),
                "{key} {raw:?}"
            );
        }
    }

    #[test]
    fn masks_show_only_what_the_contract_allows() {
        assert_eq!(LinkKey::Cpf.mask("11144477735"), "***.444.777-**");
        assert_eq!(LinkKey::Phone.mask("5511974749090"), "***9090");
        assert_eq!(LinkKey::DeviceId.mask("dev-abc-1234"), "***1234");
        assert_eq!(LinkKey::DeviceId.mask("ab"), "***ab");
        assert_eq!(LinkKey::Email.mask("maria@example.com"), "m***@example.com");
    }
}
