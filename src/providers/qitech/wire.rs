//! QI Tech CaaS JSON, as its documentation spells it. Nothing outside this client sees these.

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub(super) struct AccountBody<'a> {
    pub account_id: &'a str,
    pub account_type: &'static str,
    pub registration_date: String,
    pub account_data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub(super) struct PersonBody<'a> {
    pub person_id: &'a str,
    pub document_number: &'a str,
    pub registration_date: String,
    pub person_data: PersonDataBody<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct PersonDataBody<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneBody>,
}

/// QI Tech wants every part of the phone as a string.
#[derive(Debug, Serialize)]
pub(super) struct PhoneBody {
    pub international_dial_code: String,
    pub area_code: String,
    pub number: String,
}

#[derive(Debug, Serialize)]
pub(super) struct DeviceBody<'a> {
    pub device_id: &'a str,
    pub session_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_recognition_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_number: Option<&'a str>,
    pub mfa_status: &'static str,
    pub registration_date: String,
}

/// The device as QI Tech answers it. Fields beyond these may appear and are ignored, among them
/// `reason_description`: free text that may echo what QI Tech was sent.
#[derive(Debug, Deserialize)]
pub(super) struct DeviceAnswer {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub analysis_status: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct ValidationBody<'a> {
    pub id: String,
    pub account_id: &'a str,
    pub person_id: &'a str,
    pub session_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_recognition_key: Option<&'a str>,
    pub event_date: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ValidationAnswer {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub analysis_status: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}
