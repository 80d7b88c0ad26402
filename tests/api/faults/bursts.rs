//! Bursts: past the inline bound they are left to the runners, toward unico they are paced, and
//! at unico's rate a webhook is answered before new processes are created.

use super::*;

#[tokio::test]
async fn a_burst_past_the_inline_bound_is_left_to_the_runners_and_all_decided() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "a_burst_past_the_inline_bound_is_left_to_the_runners_and_all_decided",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    // Each CreateProcess takes 4 s, so 150 requests at once hold more steps than a replica
    // runs inline (64): the rest go to the runners through the queue.
    let (fake, url) = Fake::start(Script {
        creates: std::iter::repeat_n(Create::SlowOk(Duration::from_millis(4000)), 150).collect(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let ids: Vec<String> = futures_util::future::join_all((0..150).map(|_| async {
        let response = app
            .http
            .post(app.url("/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", key())
            .header("Prefer", "respond-async")
            .json(&onboarding_body("111.444.777-35"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }))
    .await;
    for id in &ids {
        let view = app.until_decided(id, Duration::from_secs(30)).await;
        assert_eq!(view["outcome"], "approved");
        assert_eq!(
            app.unico_calls(id, "create_process").await,
            1,
            "one process each"
        );
    }
    assert_eq!(fake.created_count(), 150);
    let metrics = app.metrics().await;
    let handed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("veredito_steps_handed_to_runners_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        handed > 0.0,
        "some steps were handed to the runners: {handed} {}",
        metrics
            .lines()
            .filter(|l| l.contains("handed"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_burst_toward_unico_is_paced_instead_of_refused() {
    let (fake, url) = Fake::start(Script::default()).await;
    let app = app_on(&url, &[("unico.requests_per_second", "5")]).await;
    let requests = (0..10).map(|n| {
        let app = &app;
        async move {
            let response = app
                .onboard(&key(), &onboarding_body(&cpf_from(700 + n)), Some(15))
                .await;
            assert_eq!(response.status(), 200);
        }
    });
    futures_util::future::join_all(requests).await;
    let creates = fake.creates();
    assert_eq!(
        creates.len(),
        10,
        "each onboarding created once, none refused"
    );
    // 5 a second: ten calls (and the token exchange) spread over more than a second and a half.
    let span = creates[9] - creates[0];
    assert!(span >= Duration::from_millis(1500), "10 calls in {span:?}");
    for pair in creates.windows(6) {
        assert!(
            pair[5] - pair[0] >= Duration::from_millis(900),
            "six calls within {:?}",
            pair[5] - pair[0]
        );
    }
    app.stop().await;
}

/// At unico's documented 10 requests a second, 40 onboardings at once: the GetProcess that a
/// webhook asks for goes before the CreateProcess calls still waiting, so each decision follows
/// its webhook within 1.5 s while the burst's new processes are still being created.
#[tokio::test]
async fn at_unicos_rate_a_webhook_is_answered_before_new_processes_are_created() {
    let app = TestApp::builder()
        .config(&[
            ("unico.requests_per_second", "10"),
            ("sandbox.processing_delay", "1s"),
            // Polling is the fallback; here the webhooks drive every decision.
            ("unico.poll_initial", "20s"),
            ("unico.poll_max", "30s"),
        ])
        .spawn()
        .await;
    let asynchronous = [
        "900.000.007-60",
        "900.000.008-41",
        "900.000.009-22",
        "900.000.012-28",
        "900.000.015-70",
        "900.000.016-51",
        "900.000.018-13",
        "900.000.019-02",
    ];
    let ids = futures_util::future::join_all((0..40).map(|n| {
        let app = &app;
        async move {
            app.start_onboarding(&onboarding_body(asynchronous[n % asynchronous.len()]))
                .await
        }
    }))
    .await;
    for id in &ids {
        app.until_decided(id, Duration::from_secs(30)).await;
    }
    let lags: Vec<(String, f64, i64)> = sqlx::query_as(
        "SELECT d.onboarding_id::text,
                extract(epoch FROM d.decided_at - w.at)::float8,
                (SELECT count(*) FROM onboarding_events e
                  WHERE e.onboarding_id = d.onboarding_id AND e.kind = 'webhook_received')
           FROM decisions d
           JOIN LATERAL (SELECT min(at) AS at FROM onboarding_events e
                          WHERE e.onboarding_id = d.onboarding_id
                            AND e.kind = 'webhook_received') w ON true",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(lags.len(), 40);
    assert!(
        lags.iter().all(|(_, _, webhooks)| *webhooks >= 1),
        "every decision followed a webhook: {lags:?}"
    );
    let slowest = lags.iter().map(|(_, lag, _)| *lag).fold(0.0, f64::max);
    // The last CreateProcess went out about 4 s after the first: the burst was still being
    // created while the first webhooks came.
    let created: (f64,) = sqlx::query_as(
        "SELECT extract(epoch FROM max(created_at) - min(created_at))::float8 FROM unico_processes",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    eprintln!(
        "webhook to decision, slowest of 40: {slowest:.3} s; processes created over {:.1} s",
        created.0
    );
    assert!(created.0 > 3.0, "paced to 10 a second: {}", created.0);
    assert!(slowest < 1.5, "slowest webhook to decision: {slowest:.3} s");
    app.stop().await;
}
