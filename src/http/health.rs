//! Liveness, readiness and metrics: no key needed.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
}

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    operation_id = "live",
    responses(
        (status = 200, description = "The process answers", body = Object),
    ),
    security(()),
)]
async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers within a second: an orchestrator asking while the database
/// is down gets its answer before its own probe times out.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    operation_id = "ready",
    responses(
        (status = 200, description = "The database answers", body = Object),
        (status = 503, description = "The database did not answer within 1 s", body = Object),
    ),
    security(()),
)]
async fn ready(State(st): State<AppState>) -> impl IntoResponse {
    let probe = sqlx::query_scalar!("SELECT 1 AS one").fetch_one(&st.db);
    match tokio::time::timeout(std::time::Duration::from_secs(1), probe).await {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "ok" })),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
        }
        Err(_) => {
            tracing::warn!("readiness: the database did not answer within 1 s");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
        }
    }
}

/// The counters kept in memory, and the backlog read from the database (left at its last
/// figures when the database does not answer within a second).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "OpenMetrics text", content((String = "application/openmetrics-text; version=1.0.0; charset=utf-8"))),
    ),
    security(()),
)]
async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let backlog = crate::store::gauges::backlog(&st.db);
    if let Ok(Ok(backlog)) = tokio::time::timeout(std::time::Duration::from_secs(1), backlog).await
    {
        crate::metrics::backlog(&backlog);
    }
    crate::metrics::pool(
        st.db.size(),
        st.db.num_idle(),
        st.settings.database.max_connections,
        crate::store::waiters(),
    );
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(),
    )
}
