//! What each scenario answers, at creation and once processed, and how process ids behave.

use super::*;

fn without_id(mut body: Value) -> Value {
    body.as_object_mut().unwrap().remove("id");
    body
}

#[tokio::test]
async fn every_sync_scenario_answers_at_creation() {
    let expected = [
        (
            "90000000175",
            json!({"status": 3, "unicoId": {"result": "yes"}}),
        ),
        ("90000000256", json!({"status": 3, "liveness": 1})),
        ("90000000337", json!({"status": 3, "liveness": 2})),
        (
            "90000000418",
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 2}),
        ),
        (
            "90000000507",
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1}),
        ),
        (
            "90000000680",
            json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1}),
        ),
        ("90000002380", json!({"status": 5})),
        // Any other valid CPF is the happy path.
        (
            "52998224725",
            json!({"status": 3, "unicoId": {"result": "yes"}}),
        ),
    ];
    let sync_rows = SCENARIOS
        .iter()
        .filter(|s| matches!(s.behaviour, Behaviour::Sync(_)))
        .count();
    assert_eq!(sync_rows, expected.len() - 1);

    // A long delay proves sync answers do not depend on it.
    let sandbox = Sandbox::start(config("", Duration::from_secs(3600), Duration::ZERO)).await;
    let token = sandbox.token().await;
    for (code, want) in expected {
        let (status, created) = sandbox.create(&token, process(code)).await;
        assert_eq!(status, 200, "{code}: {created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert_eq!(without_id(created), want, "{code} at creation");
        let (status, fetched) = sandbox.get(&token, &id).await;
        assert_eq!(status, 200);
        assert_eq!(fetched["id"], id.as_str());
        assert_eq!(without_id(fetched), want, "{code} read back");
    }
}

#[tokio::test]
async fn every_async_scenario_answers_status_1_then_its_result() {
    let inconclusive_live =
        json!({"status": 1, "unicoId": {"result": "inconclusive"}, "liveness": 1});
    let yes = json!({"status": 1, "unicoId": {"result": "yes"}});
    let no_live = json!({"status": 1, "unicoId": {"result": "no"}, "liveness": 1});
    let bare = json!({"status": 1});
    let expected = [
        (
            "90000000760",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": 50}),
        ),
        (
            "90000000841",
            &yes,
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "inconclusive"}}),
        ),
        (
            "90000000922",
            &yes,
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "yes"}}),
        ),
        (
            "90000001066",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "identityFraudsters": {"result": "inconclusive"}}),
        ),
        (
            "90000001147",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "yes"}, "liveness": 1, "identityFraudsters": {"result": "yes"}}),
        ),
        (
            "90000001228",
            &no_live,
            json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1, "identityFraudsters": {"result": "inconclusive"}}),
        ),
        (
            "90000001309",
            &no_live,
            json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1, "identityFraudsters": {"result": "yes"}}),
        ),
        (
            "90000001490",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "identityFraudsters": {"result": "yes"}}),
        ),
        (
            "90000001570",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "identityFraudsters": {"result": "inconclusive"}, "score": 50}),
        ),
        (
            "90000001651",
            &yes,
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "SUSPICIOUS"}}),
        ),
        (
            "90000001732",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": 0}),
        ),
        (
            "90000001813",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": -50}),
        ),
        (
            "90000001902",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": 20}),
        ),
        ("90000002038", &bare, json!({"status": 5})),
        ("90000002119", &bare, json!({"status": 4})),
        ("90000002208", &bare, json!({"status": 2})),
        (
            "90000002542",
            &yes,
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "inconclusive"}}),
        ),
    ];
    assert_eq!(
        SCENARIOS.iter().filter(|s| s.is_async()).count(),
        expected.len()
    );

    let delay = Duration::from_millis(300);
    let sandbox = Sandbox::start(config("", delay, Duration::ZERO)).await;
    let token = sandbox.token().await;
    let mut ids = Vec::new();
    for (code, at_create, _) in &expected {
        let (status, created) = sandbox.create(&token, process(code)).await;
        assert_eq!(status, 200, "{code}: {created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(&without_id(created), *at_create, "{code} at creation");
        let (_, early) = sandbox.get(&token, &id).await;
        assert_eq!(&without_id(early), *at_create, "{code} before the delay");
        ids.push(id);
    }
    for ((code, _, finally), id) in expected.iter().zip(&ids) {
        // Read until the answer changes (bounded), then it must be the final one.
        let started = std::time::Instant::now();
        let body = loop {
            let (status, body) = sandbox.get(&token, id).await;
            assert_eq!(status, 200);
            let body = without_id(body);
            if &body == finally || started.elapsed() > delay * 20 {
                break body;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(&body, finally, "{code} after the delay");
        assert!(started.elapsed() <= delay * 20);
    }
}

/// `sandbox.unlisted_cpf_scenario`: a valid CPF outside the table plays the scenario named
/// (8 here: approved later), while the table's own CPFs keep theirs.
#[tokio::test]
async fn an_unlisted_cpf_plays_the_configured_scenario() {
    let delay = Duration::from_millis(200);
    let mut configured = config("", delay, Duration::ZERO);
    configured.unlisted = scenarios::by_number(8).unwrap();
    let sandbox = Sandbox::start(configured).await;
    let token = sandbox.token().await;
    let (status, created) = sandbox.create(&token, process("52998224725")).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        without_id(created),
        json!({"status": 1, "unicoId": {"result": "yes"}}),
        "at creation, as scenario 8"
    );
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    let (_, finished) = sandbox.get(&token, &id).await;
    assert_eq!(
        without_id(finished),
        json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "inconclusive"}})
    );
    // A CPF of the table is unchanged: scenario 2 answers at once.
    let (_, listed) = sandbox
        .create(&token, process(&digits(SCENARIOS[1].cpf)))
        .await;
    assert_ne!(listed["status"], json!(1), "{listed}");
}

#[tokio::test]
async fn process_ids_survive_a_restart_and_are_unique() {
    let cfg = config("", Duration::from_millis(100), Duration::ZERO);
    let before = Sandbox::start(cfg.clone()).await;
    let token = before.token().await;
    let (_, first) = before.create(&token, process("90000000760")).await;
    let (_, second) = before.create(&token, process("90000000760")).await;
    assert_ne!(first["id"], second["id"]);

    // A second instance from the same configuration: no shared memory at all.
    let after = Sandbox::start(cfg).await;
    let token = after.token().await;
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = after.get(&token, first["id"].as_str().unwrap()).await;
        if body["status"] == 3 || started.elapsed() > Duration::from_secs(5) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 3);
    assert_eq!(body["score"], 50);
}

#[tokio::test]
async fn unknown_processes_are_404() {
    let sandbox = Sandbox::start(fast()).await;
    let token = sandbox.token().await;
    let (_, created) = sandbox.create(&token, process("90000000175")).await;
    let id = created["id"].as_str().unwrap();
    // Same id pointed at another scenario: the tag no longer matches.
    let mut bytes = uuid::Uuid::parse_str(id).unwrap().into_bytes();
    bytes[7] = 9;
    let tampered = uuid::Uuid::from_bytes(bytes).to_string();
    for unknown in [
        "80371b2a-3ac7-432e-866d-57fe37896ac6",
        tampered.as_str(),
        "not-a-uuid",
    ] {
        let (status, body) = sandbox.get(&token, unknown).await;
        assert_eq!(status, 404, "{unknown}: {body}");
        assert!(body["error"]["code"].is_string());
    }
}
