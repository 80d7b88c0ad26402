//! The onboarding request as the backend sends it, and its validation into typed values.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::Cpf;
use crate::domain::FieldError;
use crate::domain::evidence::RiskSignals;
use crate::store::onboardings::PersonData;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OnboardingRequest {
    pub reference: Option<String>,
    pub person: PersonInput,
    pub selfie: String,
    pub account: AccountInput,
    pub device: DeviceInput,
    pub open_finance: Option<OpenFinanceInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PersonInput {
    pub cpf: String,
    pub name: String,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AccountInput {
    pub account_id: String,
    pub person_id: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DeviceInput {
    pub device_id: String,
    pub session_id: String,
    pub face_recognition_key: Option<String>,
    pub risk_signals: Option<RiskSignals>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OpenFinanceInput {
    pub enrollment_id: Option<String>,
}

/// A request whose every value has been checked.
pub struct ValidOnboarding {
    pub reference: Option<String>,
    pub cpf: Cpf,
    pub person: PersonData,
    pub selfie: secrecy::SecretString,
    pub account_id: String,
    pub person_id: String,
    pub device: Value,
    pub risk_signals: Option<RiskSignals>,
    pub open_finance: Option<Value>,
}

fn required(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if value.len() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

impl OnboardingRequest {
    pub fn validate(self) -> Result<ValidOnboarding, Vec<FieldError>> {
        let mut errors = Vec::new();
        let cpf = Cpf::parse(&self.person.cpf)
            .map_err(|e| errors.push(FieldError::new("person.cpf", e.to_string())))
            .ok();
        required(&mut errors, "person.name", &self.person.name, 200);
        if self.selfie.trim().is_empty() {
            errors.push(FieldError::new("selfie", "must not be empty"));
        }
        if let Some(date) = &self.person.birth_date {
            if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
                errors.push(FieldError::new(
                    "person.birth_date",
                    "must be a date as YYYY-MM-DD",
                ));
            }
        }
        if let Some(gender) = &self.person.gender {
            if gender != "M" && gender != "F" {
                errors.push(FieldError::new("person.gender", "must be M or F"));
            }
        }
        if let Some(email) = &self.person.email {
            let parts: Vec<&str> = email.split('@').collect();
            if parts.len() != 2
                || parts[0].is_empty()
                || !parts[1].contains('.')
                || email.len() > 254
            {
                errors.push(FieldError::new("person.email", "must be an email address"));
            }
        }
        if let Some(phone) = &self.person.phone {
            if !(10..=15).contains(&phone.len()) || !phone.bytes().all(|b| b.is_ascii_digit()) {
                errors.push(FieldError::new(
                    "person.phone",
                    "must be 10 to 15 digits with country and area code, e.g. 5511974749090",
                ));
            }
        }
        // These three go into QI Tech's URL paths.
        errors.extend(
            [
                ("account.account_id", &self.account.account_id, 100),
                ("account.person_id", &self.account.person_id, 100),
                ("device.device_id", &self.device.device_id, 200),
            ]
            .into_iter()
            .filter_map(|(field, value, max)| crate::domain::field::provider_id(field, value, max)),
        );
        required(
            &mut errors,
            "device.session_id",
            &self.device.session_id,
            200,
        );
        if let Some(reference) = &self.reference {
            if reference.len() > 255 {
                errors.push(FieldError::new(
                    "reference",
                    "must be at most 255 characters",
                ));
            }
        }
        // Zro's URL path carries it.
        let enrollment = self.open_finance.and_then(|of| of.enrollment_id);
        if let Some(id) = &enrollment {
            errors.extend(crate::domain::field::enrollment_id(
                "open_finance.enrollment_id",
                id,
                200,
            ));
        }
        let Some(cpf) = cpf.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        let person = PersonData {
            cpf: cpf.digits(),
            name: Some(self.person.name.trim().to_owned()),
            birth_date: self.person.birth_date,
            gender: self.person.gender,
            email: self.person.email,
            phone: self.person.phone,
        };
        let device = json!({
            "device_id": self.device.device_id,
            "session_id": self.device.session_id,
            "face_recognition_key": self.device.face_recognition_key,
            "risk_signals": self.device.risk_signals,
        });
        Ok(ValidOnboarding {
            reference: self.reference,
            cpf,
            person,
            selfie: self.selfie.into(),
            account_id: self.account.account_id,
            person_id: self.account.person_id,
            device,
            risk_signals: self.device.risk_signals,
            open_finance: enrollment.map(|id| json!({ "enrollment_id": id })),
        })
    }
}

/// A device validation request, checked.
pub struct ValidationRequest {
    pub reference: Option<String>,
    pub account_id: String,
    pub person_id: String,
    pub session_id: String,
    pub face_recognition_key: Option<String>,
}
