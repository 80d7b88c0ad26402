//! Floods, slow clients and exhausted pools: rates per key, request and connection caps, bounded
//! waits, all answered with Retry-After.

use super::*;

mod connections;
mod pool;
mod rates;
mod replays;
