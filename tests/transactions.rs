//! How many committed write transactions an approved onboarding costs, counted by PostgreSQL:
//! every transaction that writes gets a transaction id, so the ids handed out while the
//! onboardings run are the write transactions they took, provider-call records and timeline
//! events included. This file holds one test, so no other test of its binary writes meanwhile
//! (test binaries run one after another).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// The promise: an onboarding whose CreateProcess answer is final and whose device QI Tech
/// approves at once is stored, advanced and decided in at most this many transactions.
const MAX_TRANSACTIONS: i64 = 4;

/// A new person on a new phone: no QI Tech record to find again.
fn new_person() -> Value {
    let mut body = onboarding_body("900.000.001-75");
    let n = key();
    body["account"]["account_id"] = format!("acc-{n}").into();
    body["account"]["person_id"] = format!("per-{n}").into();
    body["device"]["device_id"] = format!("dev-{n}").into();
    body
}

async fn next_xid(app: &TestApp) -> i64 {
    // Reading the snapshot assigns no transaction id of its own.
    sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_approved_onboarding_takes_at_most_four_transactions() {
    let app = TestApp::spawn().await;
    // One onboarding first, so nothing that happens once per process is counted.
    let warm = app.onboard(&key(), &new_person(), Some(10)).await;
    assert_eq!(warm.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    const N: i64 = 10;
    let before = next_xid(&app).await;
    for _ in 0..N {
        let response = app.onboard(&key(), &new_person(), Some(10)).await;
        assert_eq!(response.status(), 200);
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], "approved", "{view}");
        assert_eq!(view["device"]["status"], "registered", "{view}");
    }
    // Anything the decisions still set off (there should be nothing) gets time to commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = next_xid(&app).await;
    let per_onboarding = (after - before) as f64 / N as f64;
    println!("write transactions per approved onboarding: {per_onboarding:.1}");
    assert!(
        after - before <= MAX_TRANSACTIONS * N,
        "{} write transactions for {N} onboardings ({per_onboarding:.1} each; at most {MAX_TRANSACTIONS})",
        after - before
    );
    // Nothing was skipped to get there: every call and event is stored.
    let stored: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM provider_calls), (SELECT count(*) FROM onboarding_events)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    // Per onboarding: CreateProcess and QI Tech's account, person and device calls (the token
    // exchange happened once, in the warm-up); five events.
    assert_eq!(stored.0, 1 + 4 * (N + 1), "provider calls stored");
    assert_eq!(stored.1, 5 * (N + 1), "timeline events stored");
    app.stop().await;
}
