//! QI Tech's answers read into what veredito keeps: statuses, and reasons only when they read
//! as codes, never QI Tech's free text.

use serde_json::Value;

use super::wire;
use super::{QitechError, ValidationResult};
use crate::domain::evidence::DeviceRegistration;
use crate::providers::is_code;

pub(super) fn device_registration(answer: Value) -> Result<DeviceRegistration, QitechError> {
    let answer: wire::DeviceAnswer =
        serde_json::from_value(answer).map_err(|e| QitechError::Decode(e.to_string()))?;
    // Both fields decide the outcome: without them there is nothing to map, and guessing could
    // only err towards approving.
    match (answer.status, answer.analysis_status) {
        (Some(status), Some(analysis_status)) => Ok(DeviceRegistration {
            status: status.to_ascii_lowercase(),
            analysis_status: analysis_status.to_ascii_lowercase(),
            // The reason is kept when it reads as a code; the description is QI Tech's free
            // text, which may echo what it was sent (names, documents), and is never kept.
            reason: answer.reason.filter(|r| is_code(r)),
            reason_description: None,
        }),
        _ => Err(QitechError::Decode(
            "the device answer lacks status or analysis_status".into(),
        )),
    }
}

pub(super) fn validation_result(answer: Value) -> Result<ValidationResult, QitechError> {
    let answer: wire::ValidationAnswer =
        serde_json::from_value(answer).map_err(|e| QitechError::Decode(e.to_string()))?;
    let _ = answer.id;
    let analysis_status = answer
        .analysis_status
        .ok_or_else(|| QitechError::Decode("the event answer lacks analysis_status".into()))?;
    Ok(ValidationResult {
        analysis_status: analysis_status.to_ascii_lowercase(),
        // As for devices: a reason that is not a code is QI Tech's free text, never kept.
        reason: answer.reason.filter(|r| is_code(r)),
    })
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever QI Tech answers for a device, reading it is total, and what is kept is
        /// codes only: no free text a person could be named in.
        #[test]
        fn any_device_answer_keeps_codes_only(body in crate::testing::json()) {
            if let Ok(registration) = device_registration(body) {
                prop_assert!(registration.reason_description.is_none());
                if let Some(reason) = &registration.reason {
                    prop_assert!(is_code(reason), "{}", reason);
                }
                prop_assert_eq!(
                    &registration.status,
                    &registration.status.to_ascii_lowercase()
                );
            }
        }
    }
}
