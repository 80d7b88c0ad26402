//! The month's figures for the declaration of conformity, counted over Brasília's calendar month.

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::fraud_indications::{self as store, MonthFigures};

/// Brasília's offset: UTC-3 all year (no daylight saving time since 2019).
fn brasilia() -> FixedOffset {
    const BRT: FixedOffset = match FixedOffset::west_opt(3 * 3600) {
        Some(offset) => offset,
        None => panic!("UTC-3 is a valid offset"),
    };
    BRT
}

/// The bounds of a calendar month in Brasília, from `YYYY-MM`.
pub fn month_bounds(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let (year, month): (i32, u32) = (year.parse().ok()?, month.parse().ok()?);
    let start = brasilia()
        .with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()?;
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let end = brasilia()
        .with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0)
        .single()?;
    Some((start.with_timezone(&Utc), end.with_timezone(&Utc)))
}

/// The figures of the indications identified in a month, for the declaration of conformity.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = FraudIndicationReport)]
pub struct MonthReport {
    /// YYYY-MM, a calendar month in Brasília time
    #[schema(examples("2026-11"))]
    pub month: String,
    pub identified: i64,
    /// Registered with the sharing system within 24 hours of being identified
    pub registered_within_24h: i64,
    /// Registered more than 24 hours after being identified
    pub registered_late: i64,
    /// Neither registered, confidential nor withdrawn
    pub pending: i64,
    pub withdrawn: i64,
    /// Kept and never shared
    pub confidential: i64,
    /// The ids of those registered late, oldest identified first
    pub late: Vec<Uuid>,
}

pub async fn report(flow: &Services, month: &str) -> Result<Option<MonthReport>, FlowError> {
    let Some((from, to)) = month_bounds(month) else {
        return Ok(None);
    };
    let MonthFigures {
        identified,
        registered_within_24h,
        registered_late,
        pending,
        withdrawn,
        confidential,
        late,
    } = store::month(&flow.db, from, to).await?;
    let start = from.with_timezone(&brasilia());
    Ok(Some(MonthReport {
        month: format!("{:04}-{:02}", start.year(), start.month()),
        identified,
        registered_within_24h,
        registered_late,
        pending,
        withdrawn,
        confidential,
        late,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_brasilias_calendar_month() {
        let (from, to) = month_bounds("2026-11").unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-01T03:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-12-01T03:00:00+00:00");
        let (_, to) = month_bounds("2026-12").unwrap();
        assert_eq!(to.to_rfc3339(), "2027-01-01T03:00:00+00:00");
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00"] {
            assert!(month_bounds(bad).is_none(), "{bad}");
        }
    }
}
