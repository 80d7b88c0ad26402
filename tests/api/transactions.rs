//! How many committed write transactions an approved onboarding costs, counted by PostgreSQL:
//! every transaction that writes gets a transaction id, so the ids handed out while the
//! onboardings run are the write transactions they took, provider-call records and timeline
//! events included. And how many statements it sends in all, reads included, counted from
//! sqlx's own log of every statement it runs (target `sqlx::query`). The test runs in a process
//! of its own while no other test has a database, so nothing else takes a transaction id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

/// The promise: an onboarding whose CreateProcess answer is final and whose device QI Tech
/// approves at once is stored, advanced and decided in at most this many transactions.
const MAX_TRANSACTIONS: i64 = 4;

/// And in at most this many statements (COMMIT included; sqlx sends BEGIN without logging it):
/// the request's transaction, whose onboarding INSERT writes its first timeline entry too;
/// CreateProcess's and QI Tech's transactions, neither with a read before it, since the
/// transaction before each hands over the rows it wrote; each of those two transactions'
/// timeline entries, provider calls, finished step, notifications, unico process and finished
/// device registration in one statement at its commit. The answer is built from the deciding
/// transaction's rows, with no read after it. 12.0 measured (14.0 with the process and the
/// registration written on their own, 16.0 with the answer's read too, 25 before the kept writes
/// and the carried rows), besides the runners' looks at the queue, counted apart. Risk memory
/// adds none: the onboarding's INSERT takes the locks on its values, writes its link keys and
/// keeps the figures of the list, velocity and linked-fraud rules (13 while the figures had a
/// statement of their own): 12.
const MAX_STATEMENTS: u64 = 12;

/// Statements run by sqlx in this process for the onboardings themselves.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// The runners' looks at the queue (their claim and their look for the next due step), which
/// come with time rather than with onboardings, counted apart.
static RUNNER_STATEMENTS: AtomicU64 = AtomicU64::new(0);

const RUNNER_SUMMARIES: [&str; 2] = ["UPDATE steps s SET", "SELECT min(run_at) FROM steps"];

struct CountStatements;

/// Reads the `summary` field sqlx logs each statement with (its first words).
struct Summary(String);

impl tracing::field::Visit for Summary {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "summary" {
            self.0 = value.to_owned();
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            let mut summary = Summary(String::new());
            event.record(&mut summary);
            if RUNNER_SUMMARIES.iter().any(|s| summary.0.starts_with(s)) {
                RUNNER_STATEMENTS.fetch_add(1, Ordering::Relaxed);
            } else {
                STATEMENTS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A new person on a new phone: no QI Tech record to find again.
/// A new person each time (CPF, device, phone, e-mail), so the risk-memory rules look up and
/// count without firing.
fn new_person() -> Value {
    static PEOPLE: AtomicU64 = AtomicU64::new(0);
    let person = PEOPLE.fetch_add(1, Ordering::Relaxed) as u32;
    let mut body = onboarding_body(&cpf_from(person));
    body["person"]["phone"] = format!("1197474{person:04}").into();
    body["person"]["email"] = format!("p{person}@example.com").into();
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
    // Counts the server's transaction ids and sqlx's statements through a global subscriber:
    // alone in a process, and no other test's database meanwhile.
    if isolation::own_process(
        module_path!(),
        "an_approved_onboarding_takes_at_most_four_transactions",
        isolation::Server::Alone,
    )
    .await
    {
        return;
    }
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("sqlx::query", tracing::Level::TRACE);
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(CountStatements.with_filter(filter)),
    )
    .unwrap();
    // The default risk-memory rules (config/default.toml), which the test defaults turn off.
    let app = TestApp::builder().config(&[
        (
            "policy.velocity",
            r#"[{"code": "velocity.device_cpfs", "key": "device_id", "distinct": "cpf", "window": "30d", "max": 3, "outcome": "review"},
                {"code": "velocity.cpf_attempts", "key": "cpf", "window": "24h", "max": 5, "outcome": "review"}]"#,
        ),
        (
            "policy.linked_fraud",
            r#"{"keys": ["device_id", "phone", "email"], "window": "180d", "outcome": "review"}"#,
        ),
    ]).spawn()
    .await;
    // One onboarding first, so nothing that happens once per process is counted.
    let warm = app.onboard(&key(), &new_person(), Some(10)).await;
    assert_eq!(warm.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    const N: i64 = 10;
    let before = next_xid(&app).await;
    let statements_before = STATEMENTS.load(Ordering::Relaxed);
    let runner_before = RUNNER_STATEMENTS.load(Ordering::Relaxed);
    for _ in 0..N {
        let response = app.onboard(&key(), &new_person(), Some(10)).await;
        assert_eq!(response.status(), 200);
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], "approved", "{view}");
        assert_eq!(view["device"]["status"], "registered", "{view}");
    }
    // Anything the decisions still set off (there should be nothing) gets time to commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let statements = STATEMENTS.load(Ordering::Relaxed) - statements_before;
    let runner = RUNNER_STATEMENTS.load(Ordering::Relaxed) - runner_before;
    let after = next_xid(&app).await;
    let per_onboarding = (after - before) as f64 / N as f64;
    println!("write transactions per approved onboarding: {per_onboarding:.1}");
    assert!(
        after - before <= MAX_TRANSACTIONS * N,
        "{} write transactions for {N} onboardings ({per_onboarding:.1} each; at most {MAX_TRANSACTIONS})",
        after - before
    );
    let per_onboarding = statements as f64 / N as f64;
    println!(
        "statements per approved onboarding: {per_onboarding:.1} (and the runners' {runner} in all)"
    );
    assert!(
        statements > 0,
        "sqlx's statement log was not seen: the count proves nothing"
    );
    assert!(
        statements <= MAX_STATEMENTS * N as u64,
        "{statements} statements for {N} onboardings ({per_onboarding:.1} each; at most {MAX_STATEMENTS})"
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
    // The rows written at commit with the rest: each process final with unico's answer, out of
    // the polling queue's way, and each registration done with QI Tech's.
    let done: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM unico_processes
                  WHERE final AND finished_at IS NOT NULL AND status = 3
                    AND result ->> 'process_id' = process_id),
                (SELECT count(*) FROM device_registrations
                  WHERE step = 'done' AND finished_at IS NOT NULL AND attempts = 1
                    AND registration ->> 'status' = 'registered')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(done, (N + 1, N + 1), "processes final, registrations done");
    app.stop().await;
}
