//! The audit endpoints: search, explain, export and replay stored decisions.
//!
//! Everything here reads; nothing writes a decision. Personal data leaves only masked unless
//! the key carries `pii:read`. The search and its query parser in `search`, the decision as
//! shown and explained in `view`, the streamed export in `export`, the policy replay in
//! `replay`.

pub mod export;
pub mod replay;
pub mod search;
pub mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::http::state::AppState;

pub(crate) use export::{ExportFormat, export_response};
pub use view::DecisionItem;
pub(crate) use view::Explanation;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/decisions", get(search::list))
        .route("/v1/decisions/export", get(export::export))
        .route("/v1/decisions/replay", post(replay::replay))
        .route("/v1/decisions/{id}", get(view::show))
        .route("/v1/audit-searches", get(search::searches))
}
