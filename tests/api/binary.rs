//! The `veredito` binary as an operator runs it: `serve` creates its database, applies
//! migrations and serves; its logs never carry personal data or secrets; `migrate` and
//! configuration errors behave as documented; a replica stopped with SIGTERM or killed with
//! SIGKILL leaves nothing undone.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

mod commands;
mod crashes;
mod serve;
mod shutdown;
