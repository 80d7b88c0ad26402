//! Load benchmark: starts veredito in-process with the sandbox on a fresh database and drives
//! onboardings through it over HTTP, then prints throughput, latency percentiles and peak memory.
//!
//!     cargo run --release --example load -- [onboardings=400] [concurrency=32]
//!
//! The mix is three quarters synchronous sandbox CPFs (decided from CreateProcess) and one
//! quarter asynchronous ones (decided after the sandbox's processing delay, by webhook and poll).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;
use veredito::config::{Settings, Sources};

const SYNC: &[&str] = &[
    "900.000.001-75",
    "900.000.003-37",
    "900.000.006-80",
    "111.444.777-35",
];
const ASYNC: &[&str] = &["900.000.007-60", "900.000.008-41", "900.000.018-13"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(400);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(32);
    let server = std::env::var("VEREDITO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("veredito_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;

    let settings = Settings::load(&Sources {
        config_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")),
        overrides: vec![
            ("server.addr".into(), "127.0.0.1:0".into()),
            ("database.url".into(), format!("{server}/{name}")),
            ("database.max_connections".into(), "20".into()),
            ("sandbox.processing_delay".into(), "500ms".into()),
            ("sandbox.webhook_delay".into(), "20ms".into()),
            ("unico.poll_initial".into(), "1s".into()),
        ],
        ..Sources::default()
    })?;
    let app = veredito::app::App::build(settings).await?;
    let base = format!("http://{}", app.addr());
    let stop = CancellationToken::new();
    let server_task = tokio::spawn(app.run(stop.clone()));
    let http = reqwest::Client::new();

    let started = Instant::now();
    let results: Vec<(Duration, u16, bool)> = futures_util::stream::iter(0..total)
        .map(|i| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let is_async = i % 4 == 3;
                let cpf = if is_async {
                    ASYNC[i % ASYNC.len()]
                } else {
                    SYNC[i % SYNC.len()]
                };
                let body = json!({
                    "person": {"cpf": cpf, "name": "Carga Teste"},
                    "selfie": "c2VsZmll",
                    "account": {"account_id": format!("acc-{i}"), "person_id": format!("per-{i}")},
                    "device": {"device_id": format!("dev-{i}"), "session_id": format!("s-{i}")}
                });
                let sent = Instant::now();
                let status = http
                    .post(format!("{base}/v1/onboardings"))
                    .bearer_auth("vrd_sandbox_onboarding")
                    .header("Idempotency-Key", format!("load-{i}"))
                    .header("Prefer", "wait=30")
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                (sent.elapsed(), status, is_async)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = server_task.await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;

    let ok = results.iter().filter(|r| r.1 == 200).count();
    println!("onboardings: {total}, concurrency: {concurrency}, answered 200: {ok}");
    println!(
        "wall time: {:.2} s, throughput: {:.1} onboardings/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    for (label, want_async) in [
        ("sync (decided from CreateProcess)", false),
        ("async (webhook + GetProcess)", true),
    ] {
        let mut latencies: Vec<Duration> = results
            .iter()
            .filter(|r| r.2 == want_async)
            .map(|r| r.0)
            .collect();
        latencies.sort();
        if latencies.is_empty() {
            continue;
        }
        let pct = |p: f64| {
            latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
        };
        println!(
            "{label}: n={} p50={:.1} ms p95={:.1} ms p99={:.1} ms max={:.1} ms",
            latencies.len(),
            pct(0.5),
            pct(0.95),
            pct(0.99),
            pct(1.0)
        );
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        {
            println!("{}", line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    Ok(())
}
