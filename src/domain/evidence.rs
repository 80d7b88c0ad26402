//! What a decision is made from: unico's process result, the phone's risk signals and QI Tech's
//! device registration answer. These are stored with every decision, so they are plain data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::LinkKey;

/// unico process status: 1 processing, 2 divergence (still open), 3 finished, 4 cancelled, 5 error.
pub mod process_status {
    pub const PROCESSING: i32 = 1;
    pub const DIVERGENCE: i32 = 2;
    pub const FINISHED: i32 = 3;
    pub const CANCELLED: i32 = 4;
    pub const ERROR: i32 = 5;

    /// 3, 4 and 5 are final: unico will not change them.
    pub fn is_final(status: i32) -> bool {
        matches!(status, FINISHED | CANCELLED | ERROR)
    }
}

/// A unico process as received from CreateProcess or GetProcess. Result strings are kept as unico
/// sent them (lowercased), so a value the policy does not know stays visible as evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Biometrics)]
pub struct BiometricResult {
    pub process_id: String,
    pub status: i32,
    /// `unicoId.result`: yes, no, inconclusive.
    pub unico_id: Option<String>,
    /// 1 live, 2 not live.
    pub liveness: Option<i32>,
    /// `identityFraudsters.result`: yes, inconclusive, suspicious.
    pub identity_fraudsters: Option<String>,
    /// Risk score, -100..=100; 0 means a capture error.
    pub score: Option<i32>,
}

impl BiometricResult {
    pub fn is_final(&self) -> bool {
        process_status::is_final(self.status)
    }
}

/// The phone's risk signals, as the Open Finance enrollment risk signal (Zro) names them.
/// Unknown fields are refused at the edge so a misspelt flag is never silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskSignals {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_time_zone_offset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_tenure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_time_since_boot: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_rooted_device: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_brightness: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_longitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_geolocation_type: Option<GeolocationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_call_in_progress: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_dev_mode_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_mock_gps: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_emulated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_monkey_runner: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_charging: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub antenna_information: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_usb_connected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_app_integrity_verdict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_integrity_verdict: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum GeolocationType {
    Coarse,
    Fine,
    Inferred,
}

/// QI Tech's answer to a device registration (or its read-back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRegistration {
    /// registered, not_registered, deactivated.
    pub status: String,
    /// automatically_approved, automatically_reproved, pending.
    pub analysis_status: String,
    pub reason: Option<String>,
    pub reason_description: Option<String>,
}

/// Where the device registration stands when the policy looks at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceEvidence {
    /// Not attempted (the rest did not approve, or registration is not part of this decision).
    NotRun,
    /// QI Tech answered; `pending` is still possible here while the deadline has not passed.
    Answered(DeviceRegistration),
    /// Still `pending` when `policy.device_deadline` passed.
    PendingPastDeadline(DeviceRegistration),
}

/// Where the biometric process stands when the policy looks at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BiometricEvidence {
    /// unico has not been asked (for instance, the device was rejected first).
    NotRun,
    /// unico's latest answer; decided on only when its status is final.
    Received(BiometricResult),
    /// No final status within `policy.biometrics_deadline`; the last answer, if any, is kept.
    TimedOut(Option<BiometricResult>),
    /// CreateProcess refused the capture itself (unsupported, too small, expired or reused
    /// selfie: unico's error `code`), so no process exists and a new capture is needed.
    CaptureRefused { code: String },
}

/// Everything the policy reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub risk_signals: Option<RiskSignals>,
    pub biometrics: BiometricEvidence,
    pub device: DeviceEvidence,
    /// What veredito already knew of the onboarding's values when it was received; absent
    /// when no version in force had a list, velocity or linked-fraud rule then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryEvidence>,
}

/// The figures the risk-memory rules judge, as the store computed them when the onboarding
/// was received, for the rules of the versions in force then. Masked values and ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEvidence {
    /// When they were taken: list entries live then, onboardings stored up to this one.
    pub as_of: DateTime<Utc>,
    #[serde(default)]
    pub lists: Vec<ListFigure>,
    #[serde(default)]
    pub velocity: Vec<VelocityFigure>,
    #[serde(default)]
    pub linked: Vec<LinkedFigure>,
    #[serde(default)]
    pub shared: Vec<SharedFigure>,
}

impl MemoryEvidence {
    /// Whether these figures hold an answer for every question: the lists by name, velocity by
    /// (key, distinct, window), linked fraud by (keys, window).
    pub fn answers(
        &self,
        lists: &[String],
        velocity: &[(LinkKey, Option<LinkKey>, u64)],
        linked: &[(Vec<LinkKey>, u64)],
        shared: &[u64],
    ) -> bool {
        lists
            .iter()
            .all(|name| self.lists.iter().any(|l| &l.list == name))
            && velocity.iter().all(|(key, distinct, window)| {
                self.velocity
                    .iter()
                    .any(|v| v.key == *key && v.distinct == *distinct && v.window_secs == *window)
            })
            && linked.iter().all(|(keys, window)| {
                self.linked
                    .iter()
                    .any(|l| &l.keys == keys && l.window_secs == *window)
            })
            && shared
                .iter()
                .all(|window| self.shared.iter().any(|s| s.window_secs == *window))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFigure {
    pub list: String,
    /// The list's key; None when no such list exists.
    pub key: Option<LinkKey>,
    /// The live entry holding the onboarding's value, if any.
    pub hit: Option<ListHit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListHit {
    pub entry_id: i64,
    pub value: String,
    pub reason: String,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VelocityFigure {
    pub key: LinkKey,
    pub distinct: Option<LinkKey>,
    pub window_secs: u64,
    /// Onboardings (or distinct values) counted, this one included; None when the onboarding
    /// has no value of `key`.
    pub count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedFigure {
    pub keys: Vec<LinkKey>,
    pub window_secs: u64,
    /// Earlier onboardings within the window sharing one of `keys` whose latest decision is a
    /// rejection for fraud.
    pub onboardings: Vec<LinkedOnboarding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedOnboarding {
    pub onboarding_id: Uuid,
    pub key: LinkKey,
    pub decision_id: Uuid,
    pub reasons: Vec<String>,
}

/// Indications other institutions shared about the onboarding's CPF, identified within the
/// window and live (received and not withdrawn) when the figures were taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedFigure {
    pub window_secs: u64,
    pub indications: Vec<SharedIndication>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedIndication {
    pub source: String,
    pub external_id: String,
    pub typology: String,
    pub identified_at: DateTime<Utc>,
}

/// Decimal places a decision's record keeps of the phone's coordinates: two, about a kilometre,
/// enough to tell a region; no rule reads them, and the record outlives personal-data retention.
const RECORDED_COORDINATE_DECIMALS: i32 = 2;

impl Evidence {
    /// The evidence as a decision stores it: the coordinates reduced to a region.
    pub fn for_the_record(&self) -> Evidence {
        let round = |v: Option<f64>| {
            let scale = 10f64.powi(RECORDED_COORDINATE_DECIMALS);
            v.map(|v| (v * scale).round() / scale)
        };
        Evidence {
            risk_signals: self.risk_signals.clone().map(|signals| RiskSignals {
                device_latitude: round(signals.device_latitude),
                device_longitude: round(signals.device_longitude),
                ..signals
            }),
            biometrics: self.biometrics.clone(),
            device: self.device.clone(),
            memory: self.memory.clone(),
        }
    }
}
