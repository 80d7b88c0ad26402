//! The Brazilian individual taxpayer number. A `Cpf` exists only with valid check digits.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Cpf([u8; 11]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpfError {
    #[error("must have 11 digits, with or without the usual punctuation")]
    Format,
    #[error("check digits do not match")]
    CheckDigits,
}

impl Cpf {
    /// Accepts `11144477735` and `111.444.777-35`; rejects repeated digits such as `111.111.111-11`.
    pub fn parse(input: &str) -> Result<Self, CpfError> {
        let input = input.trim();
        let mut digits = [0u8; 11];
        let mut count = 0;
        for (i, ch) in input.chars().enumerate() {
            match ch {
                '0'..='9' => {
                    if count == 11 {
                        return Err(CpfError::Format);
                    }
                    digits[count] = ch as u8 - b'0';
                    count += 1;
                }
                '.' if i == 3 || i == 7 => {}
                '-' if i == 11 => {}
                _ => return Err(CpfError::Format),
            }
        }
        if count != 11 || (input.len() != 11 && input.len() != 14) {
            return Err(CpfError::Format);
        }
        if digits.iter().all(|d| *d == digits[0]) {
            return Err(CpfError::CheckDigits);
        }
        if check_digit(&digits[..9]) != digits[9] || check_digit(&digits[..10]) != digits[10] {
            return Err(CpfError::CheckDigits);
        }
        Ok(Cpf(digits))
    }

    /// The 11 digits, as unico's `subject.code` wants them.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// `111.444.777-35`, as QI Tech's `document_number` wants it.
    pub fn punctuated(&self) -> String {
        let d = self.digits();
        format!("{}.{}.{}-{}", &d[0..3], &d[3..6], &d[6..9], &d[9..11])
    }

    /// `***.444.777-**`: what responses show to readers without the `pii:read` scope.
    pub fn masked(&self) -> String {
        let d = self.digits();
        format!("***.{}.{}-**", &d[3..6], &d[6..9])
    }
}

fn check_digit(digits: &[u8]) -> u8 {
    let weight_start = digits.len() as u32 + 1;
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * (weight_start - i as u32))
        .sum();
    let rest = (sum * 10) % 11;
    if rest == 10 { 0 } else { rest as u8 }
}

/// Never prints the number: logs and panics see the mask only.
impl fmt::Debug for Cpf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cpf({})", self.masked())
    }
}

impl fmt::Display for Cpf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_punctuated_forms() {
        let plain = Cpf::parse("11144477735").unwrap();
        let punctuated = Cpf::parse("111.444.777-35").unwrap();
        assert_eq!(plain, punctuated);
        assert_eq!(plain.digits(), "11144477735");
        assert_eq!(plain.punctuated(), "111.444.777-35");
        assert_eq!(plain.masked(), "***.444.777-**");
    }

    #[test]
    fn check_digit_of_zero_when_rest_is_ten() {
        // 900.000.005-07: the first check digit is 0 because (sum*10) % 11 == 10.
        assert!(Cpf::parse("900.000.005-07").is_ok());
    }

    #[test]
    fn rejects_wrong_check_digits() {
        assert_eq!(Cpf::parse("111.444.777-36"), Err(CpfError::CheckDigits));
        assert_eq!(Cpf::parse("11144477745"), Err(CpfError::CheckDigits));
    }

    #[test]
    fn rejects_repeated_digits() {
        assert_eq!(Cpf::parse("111.111.111-11"), Err(CpfError::CheckDigits));
        assert_eq!(Cpf::parse("00000000000"), Err(CpfError::CheckDigits));
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "",
            "1114447773",
            "111444777350",
            "111-444-777.35",
            "111.444.77735",
            "abc.def.ghi-jk",
            "111 444 777 35",
        ] {
            assert_eq!(Cpf::parse(bad), Err(CpfError::Format), "{bad:?}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_number() {
        let cpf = Cpf::parse("111.444.777-35").unwrap();
        assert!(!format!("{cpf:?}").contains("111444"));
        assert!(!format!("{cpf}").contains("111"));
    }
}
