//! What a fraud indication is made of: its typology, and the CNPJ of the institution that
//! registers it (Resolução Conjunta nº 6/2023).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of fraud an indication may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Typology {
    IdentityTheft,
    SyntheticIdentity,
    MuleAccount,
    DocumentFraud,
    AccountTakeover,
    Other,
}

impl Typology {
    pub const ALL: [Typology; 6] = [
        Typology::IdentityTheft,
        Typology::SyntheticIdentity,
        Typology::MuleAccount,
        Typology::DocumentFraud,
        Typology::AccountTakeover,
        Typology::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Typology::IdentityTheft => "identity_theft",
            Typology::SyntheticIdentity => "synthetic_identity",
            Typology::MuleAccount => "mule_account",
            Typology::DocumentFraud => "document_fraud",
            Typology::AccountTakeover => "account_takeover",
            Typology::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Typology> {
        Typology::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The message naming the allowed values, for a 422.
    pub const EXPECTED: &'static str = "must be identity_theft, synthetic_identity, mule_account, \
                                        document_fraud, account_takeover or other";
}

impl fmt::Display for Typology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A company's taxpayer number: 14 digits whose last two are check digits. Exists only valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cnpj(String);

impl Cnpj {
    /// Accepts `11222333000181` and `11.222.333/0001-81`; refuses repeated digits.
    pub fn parse(input: &str) -> Option<Cnpj> {
        let input = input.trim();
        let digits: Vec<u32> = input.chars().filter_map(|c| c.to_digit(10)).collect();
        let punctuation_ok = input
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '/' | '-'));
        if digits.len() != 14 || !punctuation_ok || digits.iter().all(|d| *d == digits[0]) {
            return None;
        }
        let check = |body: &[u32]| {
            let weights = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
            let skip = weights.len() - body.len();
            let sum: u32 = body.iter().zip(&weights[skip..]).map(|(d, w)| d * w).sum();
            match sum % 11 {
                0 | 1 => 0,
                r => 11 - r,
            }
        };
        if check(&digits[..12]) != digits[12] || check(&digits[..13]) != digits[13] {
            return None;
        }
        Some(Cnpj(
            digits
                .iter()
                .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
                .collect(),
        ))
    }

    /// The 14 digits.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnpj_check_digits() {
        for (case, text, valid) in [
            ("bare", "11222333000181", true),
            ("punctuated", "11.222.333/0001-81", true),
            ("first check digit wrong", "11222333000191", false),
            ("second check digit wrong", "11222333000182", false),
            ("repeated digits", "00000000000000", false),
            ("too short", "1122233300018", false),
            ("letters", "11.222.333/0001-8a", false),
        ] {
            assert_eq!(Cnpj::parse(text).is_some(), valid, "{case}");
        }
        assert_eq!(
            Cnpj::parse("11.222.333/0001-81").unwrap().digits(),
            "11222333000181"
        );
    }

    #[test]
    fn typologies_round_trip() {
        for t in Typology::ALL {
            assert_eq!(Typology::parse(t.as_str()), Some(t));
        }
        assert_eq!(Typology::parse("fraud"), None);
    }
}
