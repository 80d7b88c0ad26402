//! What an attacker or an auditor would try: searching by CPF without `pii:read`, reading who
//! searched for what, NUL characters anywhere, wrong content types, forged webhooks piling up.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::*;
use crate::device_support;

mod access_records;
mod app_role;
mod console;
mod input;
mod limits;
mod personal_data;

const AUDITOR_PII_KEY: &str = "vrd_sandbox_auditor_pii";
/// A sandbox CPF whose unico process finishes after `sandbox.processing_delay`, then approves.
const ASYNC_APPROVED: &str = "900.000.007-60";
