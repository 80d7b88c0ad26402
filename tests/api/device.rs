//! The device half over HTTP: risk signals, QI Tech device registration, device validations and
//! the Open Finance risk signal, against the sandbox and against provider fakes.

use std::time::Duration;

use crate::common::*;
use crate::device_support::*;
use serde_json::{Value, json};
use uuid::Uuid;

mod open_finance;
mod registration;
mod risk_signals;
mod validations;

const LIMIT: Duration = Duration::from_secs(10);
