//! The benchmark's load generator, a process of its own so the service's figures are its own.
//! Driven by `bench/run`; prints one JSON line per run.
//!
//!     bench_client BASE_URL sync|async|search CONCURRENCY SECONDS [ANSWERS_FILE]
//!     bench_client BASE_URL waiting COUNT WAIT_SECONDS
//!     bench_client BASE_URL paced|paced-async RATE SECONDS [ANSWERS_FILE]
//!     bench_client BASE_URL soak FROM COUNT CONCURRENCY
//!
//! `sync`: new people onboarded with a CPF the sandbox decides from CreateProcess (approved, with
//! the QI Tech registration), `Prefer: wait=10`. `async`: new people whose CPF the sandbox finishes later and
//! announces by webhook (the benchmark's sandbox runs with `sandbox.unlisted_cpf_scenario = 8`), `Prefer: wait=30`. `search`: `GET /v1/decisions` first pages under the
//! documented filters. `waiting`: COUNT asynchronous onboardings sent at once, each holding its
//! connection for up to WAIT_SECONDS. `soak`: onboardings FROM..FROM+COUNT, half decided from
//! CreateProcess and half by webhook, `Prefer: respond-async`, each with a key and body fixed by
//! its number, so one refused or cut off (a restart, a 503) is sent again until it is accepted.
//! `paced` and `paced-async`: `sync` and `async` onboardings sent open loop, RATE a second
//! whatever the answers take, so they arrive spread over time as a sign-up peak's do, not in
//! step with each other as a fixed number of connections sends them.
//! With ANSWERS_FILE, each decided onboarding's id and the wall-clock time its answer arrived
//! (milliseconds since the epoch) are written there, a line each, to be set against the time the
//! service received unico's webhook.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ONBOARDING_KEY: &str = "vrd_sandbox_onboarding";
const AUDITOR_KEY: &str = "vrd_sandbox_auditor";

/// A valid CPF of the sandbox's "any other" scenario (approved at once), a new one per call,
/// as real traffic brings a new person per onboarding.
fn random_cpf() -> String {
    let mut digits: Vec<u32> = (0..9)
        .map(|i| {
            if i == 0 {
                fastrand::u32(1..9)
            } else {
                fastrand::u32(0..10)
            }
        })
        .collect();
    for len in [9, 10] {
        let sum: u32 = digits
            .iter()
            .take(len)
            .enumerate()
            .map(|(i, d)| d * (len as u32 + 1 - i as u32))
            .sum();
        let check = (sum * 10) % 11 % 10;
        digits.push(check);
    }
    digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .collect()
}

/// One person's onboarding: the device, e-mail and phone are each person's own, as in real
/// traffic (risk memory serialises the onboardings that share a value, and counts them).
fn body(cpf: &str, n: u64) -> Value {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let phone = format!("55119{:08}", uuid::Uuid::new_v4().as_u128() % 100_000_000);
    json!({
        "reference": format!("bench-{n}-{id}"),
        "person": {"cpf": cpf, "name": "Pessoa de Carga", "birth_date": "1990-01-31", "gender": "F",
                   "email": format!("carga-{id}@example.com"), "phone": phone},
        "selfie": "c2VsZmllLWJ5dGVzLW5vdC1hLXJlYWwtaW1hZ2U=",
        "account": {"account_id": format!("acc-{id}"), "person_id": format!("per-{id}")},
        "device": {"device_id": format!("dev-{id}"), "session_id": "scan-bench",
                   "risk_signals": {"os_version": "14", "is_emulated": false}}
    })
}

/// Sends soak onboarding `n` until the service accepts it (200 or 202), for at most two
/// minutes: the same Idempotency-Key and body each time, so a retry never makes a second one.
async fn soak_one(http: &reqwest::Client, base: &str, n: u64, retries: &AtomicU64) -> bool {
    let cpf = if n % 2 == 0 {
        "900.000.001-75"
    } else {
        "900.000.007-60"
    };
    let body = json!({
        "reference": format!("soak-{n}"),
        "person": {"cpf": cpf, "name": "Pessoa de Carga", "birth_date": "1990-01-31", "gender": "F"},
        "selfie": "c2VsZmllLWJ5dGVzLW5vdC1hLXJlYWwtaW1hZ2U=",
        "account": {"account_id": format!("acc-soak-{n}"), "person_id": format!("per-soak-{n}")},
        "device": {"device_id": format!("dev-soak-{n}"), "session_id": "scan-soak",
                   "risk_signals": {"os_version": "14", "is_emulated": false}}
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let sent = http
            .post(format!("{base}/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", format!("soak-{n}"))
            .header("Prefer", "respond-async")
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(response) if matches!(response.status().as_u16(), 200 | 202) => return true,
            Ok(response) if response.status().is_client_error() && response.status() != 429 => {
                eprintln!("soak {n}: refused with {}", response.status());
                return false;
            }
            _ => {
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    false
}

/// One request of `scenario`; answers whether it got what the scenario expects, and, for a
/// decided onboarding, its id and when the answer arrived (ms since the epoch).
async fn one(
    http: &reqwest::Client,
    base: &str,
    scenario: &str,
    n: u64,
) -> (bool, Option<(String, f64)>) {
    let request = match scenario {
        "sync" => http
            .post(format!("{base}/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .header("Prefer", "wait=10")
            .json(&body(&random_cpf(), n)),
        "async" => http
            .post(format!("{base}/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .header("Prefer", "wait=30")
            .json(&body(&random_cpf(), n)),
        "search" => {
            const FILTERS: [&str; 6] = [
                "",
                "outcome=rejected",
                "reason=device.rooted",
                "policy_version=2025-12-01.2",
                "reason=score.capture_error&outcome=retry",
                "reference=ref-4242",
            ];
            // Every seventh search is a page from ten days back.
            let filter = match FILTERS.get(n as usize % (FILTERS.len() + 1)) {
                Some(filter) => (*filter).to_owned(),
                None => {
                    let then = chrono::Utc::now() - chrono::Duration::days(10);
                    format!("decided_to={}", then.format("%Y-%m-%dT%H:%M:%SZ"))
                }
            };
            http.get(format!("{base}/v1/decisions?{filter}"))
                .bearer_auth(AUDITOR_KEY)
        }
        other => panic!("unknown scenario {other}"),
    };
    let Ok(response) = request.send().await else {
        return (false, None);
    };
    if response.status() != 200 {
        return (false, None);
    }
    if scenario == "search" {
        return (true, None);
    }
    let Ok(answer) = response.json::<Value>().await else {
        return (false, None);
    };
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0;
    let id = answer["id"].as_str().map(|id| (id.to_owned(), at));
    (answer["status"] == "decided", id)
}

/// Each decided onboarding's id and when its answer arrived, a line each.
fn write_answers(path: &str, answered: &[(String, f64)]) {
    let lines: String = answered
        .iter()
        .map(|(id, at)| format!("{id}\t{at:.3}\n"))
        .collect();
    std::fs::write(path, lines).expect("the answers file is writable");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, scenario) = (args[1].clone(), args[2].clone());
    let first: u64 = args[3].parse().expect("a number");
    let second: u64 = args[4].parse().expect("a number");
    // VEREDITO_BENCH_HTTP2=1: every request as a stream of an HTTP/2 connection (h2c); the
    // waiting run then spreads its requests over ten clients, ten connections.
    let http2 = std::env::var("VEREDITO_BENCH_HTTP2").is_ok_and(|v| v == "1");
    let client = || {
        // reqwest's defaults (keepalive after 15 s idle, TCP_USER_TIMEOUT 30 s) end a connection
        // on its side, with ETIMEDOUT, once its request has been held about 30 s: a waiting
        // request is held up to a minute, so the user timeout is off.
        let builder = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .tcp_user_timeout(None)
            .timeout(Duration::from_secs(120));
        let builder = if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder
        };
        builder.build().unwrap()
    };
    let http = client();

    if scenario == "soak" {
        let concurrency: u64 = args[5].parse().expect("a number");
        let (from, count) = (first, second);
        let next = Arc::new(AtomicU64::new(from));
        let retries = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (http, base) = (http.clone(), base.clone());
                let (next, retries, failed) = (next.clone(), retries.clone(), failed.clone());
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= from + count {
                            return;
                        }
                        if !soak_one(&http, &base, n, &retries).await {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
        println!(
            "{}",
            json!({"scenario": "soak", "from": from, "count": count,
                   "failed": failed.load(Ordering::Relaxed), "retries": retries.load(Ordering::Relaxed),
                   "seconds": started.elapsed().as_secs_f64()})
        );
        return;
    }

    if scenario == "waiting" {
        let clients: Vec<reqwest::Client> = if http2 {
            (0..10).map(|_| client()).collect()
        } else {
            vec![http.clone()]
        };
        let started = Instant::now();
        let tasks: Vec<_> = (0..first)
            .map(|n| {
                let http = clients[n as usize % clients.len()].clone();
                let base = base.clone();
                tokio::spawn(async move {
                    http.post(format!("{base}/v1/onboardings"))
                        .bearer_auth(ONBOARDING_KEY)
                        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                        .header("Prefer", format!("wait={second}"))
                        .json(&body(&random_cpf(), n))
                        .send()
                        .await
                        .map(|r| r.status().to_string())
                        .unwrap_or_else(|e| {
                            let kind = if e.is_connect() {
                                "no connection"
                            } else if e.is_timeout() {
                                "timed out"
                            } else {
                                "cut off"
                            };
                            // The first failure of each kind, with its causes, on stderr.
                            static SEEN: std::sync::Mutex<Vec<&str>> =
                                std::sync::Mutex::new(Vec::new());
                            let mut seen = SEEN.lock().unwrap();
                            if !seen.contains(&kind) {
                                seen.push(kind);
                                let mut causes = format!("{e}");
                                let mut source = std::error::Error::source(&e);
                                while let Some(cause) = source {
                                    causes.push_str(&format!(": {cause}"));
                                    source = cause.source();
                                }
                                eprintln!(
                                    "{kind} after {:.1} s: {causes}",
                                    started.elapsed().as_secs_f64()
                                );
                            }
                            kind.to_owned()
                        })
                })
            })
            .collect();
        let mut by_status = std::collections::BTreeMap::<String, u64>::new();
        for task in tasks {
            let status = task.await.unwrap_or_else(|_| "panicked".to_owned());
            *by_status.entry(status).or_default() += 1;
        }
        println!(
            "{}",
            json!({"scenario": "waiting", "sent": first, "by_status": by_status,
                   "seconds": started.elapsed().as_secs_f64()})
        );
        return;
    }

    if scenario == "paced" || scenario == "paced-async" {
        // Open loop: onboardings sent at a fixed rate whatever the answers take.
        let (rate, seconds) = (first.max(1), second);
        let each = if scenario == "paced" { "sync" } else { "async" };
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let started = Instant::now();
        let mut ticker = tokio::time::interval(interval);
        let mut tasks = Vec::new();
        for n in 0..rate * seconds {
            ticker.tick().await;
            let (http, base) = (http.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let (ok, answer) = one(&http, &base, each, n).await;
                (
                    t.elapsed().as_secs_f64() * 1000.0,
                    ok,
                    answer.filter(|_| ok),
                )
            }));
        }
        let mut latencies = Vec::new();
        let mut answered = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (ms, ok, answer) = task.await.unwrap();
            latencies.push(ms);
            errors += u64::from(!ok);
            answered.extend(answer);
        }
        if let Some(path) = args.get(5) {
            write_answers(path, &answered);
        }
        latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"scenario": scenario, "concurrency": rate, "requests": latencies.len(), "errors": errors,
                   "seconds": elapsed, "throughput": latencies.len() as f64 / elapsed,
                   "p50_ms": percentile(&latencies, 0.50), "p99_ms": percentile(&latencies, 0.99),
                   "p999_ms": percentile(&latencies, 0.999)})
        );
        return;
    }

    let (concurrency, seconds) = (first, second);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // BASE_URL may name several replicas, comma-separated: the connections are spread over them.
    let bases: Vec<String> = base.split(',').map(str::to_owned).collect();
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let base = bases[worker as usize % bases.len()].clone();
            let (http, scenario) = (http.clone(), scenario.clone());
            let (counter, errors) = (counter.clone(), errors.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut answered = Vec::new();
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    let (ok, answer) = one(&http, &base, &scenario, n).await;
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    answered.extend(answer.filter(|_| ok));
                }
                (latencies, answered)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut answered = Vec::new();
    for worker in workers {
        let (l, a) = worker.await.unwrap();
        latencies.extend(l);
        answered.extend(a);
    }
    if let Some(path) = args.get(5) {
        write_answers(path, &answered);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{}",
        json!({
            "scenario": scenario, "concurrency": concurrency, "requests": latencies.len(),
            "errors": errors.load(Ordering::Relaxed), "seconds": elapsed,
            "throughput": latencies.len() as f64 / elapsed,
            "p50_ms": percentile(&latencies, 0.50), "p99_ms": percentile(&latencies, 0.99),
            "p999_ms": percentile(&latencies, 0.999),
        })
    );
}
