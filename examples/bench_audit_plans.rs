//! The audit searches' plans over a large store: generates decisions in a scratch database,
//! then prints, per search the API offers, how many rows its first page holds, its best time of
//! five and the plan PostgreSQL ran it with, then times a replay page and a retention pass.
//! Exits 1 when a search is not answered from an index (what docs/audit.md relies on).
//!
//!     bench/audit-plans [ROWS]        # 200,000 decisions unless said
//!
//! or `cargo run --release --example bench_audit_plans -- SERVER_URL [ROWS]`, SERVER_URL being
//! a PostgreSQL server (`postgres://postgres@127.0.0.1:5432`) where it may create a database.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;
use veredito::store;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let server = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned());
    let rows: i64 = args
        .get(2)
        .map(|n| n.parse().expect("a number of decisions"))
        .unwrap_or(200_000);
    let name = format!("veredito_audit_plans_{}", std::process::id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{server}/postgres"))
        .await
        .expect("the PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("a scratch database");
    let db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&format!("{server}/{name}"))
        .await
        .expect("the scratch database");
    store::migrate(&db).await.expect("the migrations");
    let failed = measure(&db, rows).await;
    db.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("the scratch database dropped");
    if !failed.is_empty() {
        eprintln!("searches not answered from an index: {failed:?}");
        std::process::exit(1);
    }
}

/// Fills `db` with `rows` decisions and measures; answers the searches whose plan is not read
/// off an index.
async fn measure(db: &sqlx::PgPool, rows: i64) -> Vec<&'static str> {
    let started = std::time::Instant::now();
    sqlx::query(
        "WITH gen AS (
             SELECT i, gen_random_uuid() AS oid, now() - make_interval(secs => i * 13) AS created
               FROM generate_series(1, $1) AS i
         ), ins AS (
             INSERT INTO onboardings (id, client_name, idempotency_key, request_hash, reference, cpf_hash, pii_key_id,
                                      pii_ciphertext, account_id, person_id, device, state, created_at, decided_at)
             SELECT oid, 'bench', 'k' || i, '\\x00', 'ref-' || i, decode(md5('cpf' || i), 'hex'), 'sandbox-1',
                    decode(md5('pii' || i) || md5('x' || i), 'hex'), 'acc', 'per', '{}', 'decided', created,
                    created + interval '4 seconds'
               FROM gen
             RETURNING id, created_at
         )
         INSERT INTO decisions (id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds,
                                evidence, evaluations, decided_at)
         SELECT gen_random_uuid(), id,
                (ARRAY['approved','approved','approved','approved','approved','approved','review','review','rejected','retry'])[1 + (abs(hashtext(id::text)) % 10)],
                '[]', 
                CASE abs(hashtext(id::text)) % 10
                     WHEN 6 THEN ARRAY['score.uncertain'] WHEN 7 THEN ARRAY['device.rooted','identity.confirmed']
                     WHEN 8 THEN ARRAY['score.high_risk'] WHEN 9 THEN ARRAY['score.capture_error']
                     ELSE ARRAY['identity.confirmed'] END,
                (ARRAY['2026-11-23.1','2026-06-01.1','2025-12-01.2'])[1 + (abs(hashtext(id::text || 'v')) % 3)],
                '{\"score_reject_max\":-40,\"score_approve_min\":50}',
                '{\"biometrics\":{\"state\":\"received\",\"status\":3,\"unico_id\":\"yes\"},\"device\":{\"state\":\"not_run\"}}',
                '[]', created_at + interval '4 seconds'
           FROM ins",
    )
    .bind(rows)
    .execute(db)
    .await
    .unwrap();
    sqlx::query("ANALYZE onboardings")
        .execute(db)
        .await
        .unwrap();
    sqlx::query("ANALYZE decisions").execute(db).await.unwrap();
    println!("generated {rows} decisions in {:?}", started.elapsed());

    let some: (Vec<u8>, DateTime<Utc>, Uuid) = sqlx::query_as(
        "SELECT o.cpf_hash, d.decided_at, d.id FROM onboardings o JOIN decisions d ON d.onboarding_id = o.id
          ORDER BY d.decided_at DESC OFFSET 1000 LIMIT 1",
    )
    .fetch_one(db)
    .await
    .unwrap();
    let week_ago = Utc::now() - chrono::Duration::days(7);
    let cursor = store::audit::Cursor {
        decided_at: some.1,
        id: some.2,
    };
    use store::audit::DecisionFilter as F;
    let cases: Vec<(&str, F, Option<store::audit::Cursor>)> = vec![
        ("no filter, first page", F::default(), None),
        (
            "no filter, page after a cursor 1000 rows deep",
            F::default(),
            Some(cursor),
        ),
        (
            "outcome=rejected",
            F {
                outcome: Some("rejected".into()),
                ..F::default()
            },
            None,
        ),
        (
            "reason=device.rooted",
            F {
                reason: Some("device.rooted".into()),
                ..F::default()
            },
            None,
        ),
        (
            "reason=score.capture_error + outcome=retry",
            F {
                reason: Some("score.capture_error".into()),
                outcome: Some("retry".into()),
                ..F::default()
            },
            None,
        ),
        (
            "cpf (hash)",
            F {
                cpf_hash: Some(some.0.clone()),
                ..F::default()
            },
            None,
        ),
        (
            "reference",
            F {
                reference: Some("ref-4242".into()),
                ..F::default()
            },
            None,
        ),
        (
            "policy_version=2025-12-01.2",
            F {
                policy_version: Some("2025-12-01.2".into()),
                ..F::default()
            },
            None,
        ),
        (
            "decided in the last 7 days",
            F {
                decided_from: Some(week_ago),
                ..F::default()
            },
            None,
        ),
        (
            "decided before 7 days ago",
            F {
                decided_to: Some(week_ago),
                ..F::default()
            },
            None,
        ),
        (
            "created in the last 7 days",
            F {
                created_from: Some(week_ago),
                ..F::default()
            },
            None,
        ),
        (
            "created before 7 days ago + outcome=review",
            F {
                created_to: Some(week_ago),
                outcome: Some("review".into()),
                ..F::default()
            },
            None,
        ),
    ];
    let mut failed = Vec::new();
    for (name, filter, after) in cases {
        let mut best = std::time::Duration::MAX;
        let mut found = 0;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            found = store::audit::search(db, &filter, after, 51)
                .await
                .unwrap()
                .len();
            best = best.min(t.elapsed());
        }
        let plan = store::audit::explain_search(db, &filter, after, 51)
            .await
            .unwrap();
        println!(
            "\n### {name}: {found} rows, best of 5: {:.2} ms\n```\n{plan}\n```",
            best.as_secs_f64() * 1000.0
        );
        // What docs/audit.md relies on: every search is answered from an index, never by
        // reading the decisions table whole, and the first page needs no sort of all rows.
        if plan.contains("Seq Scan on decisions") || !plan.contains("Index") {
            println!("^ {name}: not answered from an index");
            failed.push(name);
        }
    }
    let t = std::time::Instant::now();
    let replayed = store::audit::replay_page(db, week_ago, Utc::now(), None, 1000)
        .await
        .unwrap()
        .len();
    println!(
        "\nreplay page of {replayed}: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = std::time::Instant::now();
    let erased = store::audit::erase_expired_pii(db, 365 * 10, 500)
        .await
        .unwrap()
        .len();
    println!(
        "retention pass with nothing due ({erased}): {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    failed
}
