//! Times what risk memory costs over a large store (bench/run --memory-only drives it).
//!
//!     bench_memory DATABASE_URL BASE_URL SAMPLES
//!
//! On a database that bench/run filled (`bench_ids (n, id)` numbers the stored onboardings):
//! 1. the figures statement the request's transaction runs (lists, velocity and linked-fraud
//!    lookups of the configured first policy version, plus one list), for SAMPLES random
//!    onboardings, one at a time;
//! 2. `GET /v1/onboardings/{id}/links` against the service at BASE_URL, for SAMPLES random ones;
//! 3. one `POST /v1/lists/{name}/entries` of 10,000 values.
//!
//! Prints one JSON line with the latencies in milliseconds.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;
use veredito::config::{Settings, Sources};

fn percentiles(mut samples: Vec<Duration>) -> Value {
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() - 1) as f64 * p).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    json!({"samples": samples.len(), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

async fn random_id(db: &sqlx::PgPool, count: i64) -> Uuid {
    let n = fastrand::i64(1..=count);
    sqlx::query_scalar("SELECT id FROM bench_ids WHERE n = $1")
        .bind(n)
        .fetch_one(db)
        .await
        .expect("a numbered onboarding")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (database, base) = (args[1].clone(), args[2].clone());
    let samples: usize = args[3].parse().expect("a number of samples");
    let db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&database)
        .await
        .expect("the benchmark's database");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_ids")
        .fetch_one(&db)
        .await
        .unwrap();

    // The questions of the first version the configuration seeds, with one list on the device.
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let settings = Settings::load(&Sources {
        config_dir: Some(root.join("config")),
        file: None,
        overrides: vec![
            ("database.url".into(), database.clone()),
            ("sandbox.enabled".into(), "true".into()),
        ],
        ignore_env: true,
        environment: None,
    })
    .expect("the configuration loads");
    let mut questions = veredito::app::policy_from(&settings).memory.questions();
    questions.lists.push("bench_devices".into());

    let mut figures = Vec::with_capacity(samples);
    for _ in 0..samples {
        let id = random_id(&db, count).await;
        let started = Instant::now();
        veredito::store::links::figures_as_of(&db, id, chrono::Utc::now(), &questions)
            .await
            .expect("figures");
        figures.push(started.elapsed());
    }

    // The generated rows carry no real sealed personal data; the links answer unseals that of
    // every onboarding it shows (for the masked CPF), so the probes and everything linked to
    // them are sealed properly first, untimed.
    let cipher = veredito::crypto::PiiCipher::from_settings(&settings.pii).expect("the PII keys");
    let mut probes = Vec::with_capacity(samples);
    for _ in 0..samples {
        probes.push(random_id(&db, count).await);
    }
    let shown: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT o.onboarding_id FROM onboarding_links me
           JOIN onboarding_links o ON o.key = me.key AND o.hash = me.hash
          WHERE me.onboarding_id = ANY($1)",
    )
    .bind(&probes)
    .fetch_all(&db)
    .await
    .unwrap();
    let person = serde_json::to_vec(&json!({
        "cpf": "11144477735", "name": "Pessoa de Teste", "birth_date": "1990-01-01",
        "gender": null, "email": "pessoa@example.com", "phone": "+5511999990000"}))
    .unwrap();
    let mut key_ids = Vec::with_capacity(shown.len());
    let mut sealed = Vec::with_capacity(shown.len());
    for id in &shown {
        let (key_id, ciphertext) = cipher.encrypt(&person, id.as_bytes()).expect("sealed");
        key_ids.push(key_id);
        sealed.push(ciphertext);
    }
    sqlx::query(
        "UPDATE onboardings o SET pii_key_id = s.key_id, pii_ciphertext = s.sealed
           FROM unnest($1::uuid[], $2::text[], $3::bytea[]) AS s(id, key_id, sealed)
          WHERE o.id = s.id",
    )
    .bind(&shown)
    .bind(&key_ids)
    .bind(&sealed)
    .execute(&db)
    .await
    .unwrap();

    let http = reqwest::Client::new();
    let mut links = Vec::with_capacity(samples);
    for id in probes {
        let started = Instant::now();
        let response = http
            .get(format!("{base}/v1/onboardings/{id}/links"))
            .bearer_auth("vrd_sandbox_auditor")
            .send()
            .await
            .expect("links answered");
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        links.push(started.elapsed());
    }

    let entries: Vec<Value> = (0..10_000)
        .map(|i| json!({"value": format!("bench-device-new-{i}"), "reason": "benchmark"}))
        .collect();
    let started = Instant::now();
    let response = http
        .post(format!("{base}/v1/lists/bench_devices/entries"))
        .bearer_auth("vrd_sandbox_risk")
        .json(&json!({ "entries": entries }))
        .send()
        .await
        .expect("entries answered");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let bulk = started.elapsed();
    assert_eq!(status, 200, "{answer}");

    println!(
        "{}",
        json!({
            "onboardings": count,
            "figures": percentiles(figures),
            "links": percentiles(links),
            "bulk_10000_ms": bulk.as_secs_f64() * 1000.0,
            "bulk_answer": answer,
        })
    );
}
