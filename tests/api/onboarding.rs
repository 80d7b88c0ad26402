//! The core decision path, driven over HTTP the way the onboarding backend drives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

mod idempotency;
mod requests;
mod storage;
mod verdicts;
mod waiting;
mod webhooks;
