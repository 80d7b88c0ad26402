//! One decision explained: the rules with their inputs, the evidence, the timeline and the provider
//! calls.

use super::*;

#[tokio::test]
async fn explanation_shows_rules_evidence_timeline_and_calls() {
    let h = TestApp::spawn().await;
    // A real onboarding through the sandbox: unico answers 'yes' for this CPF.
    let body = common::onboarding_body("111.444.777-35");
    let response = h
        .http
        .post(format!("{}/v1/onboardings", h.base))
        .bearer_auth(ONBOARDING)
        .header("Idempotency-Key", "explain-1")
        .header("Prefer", "wait=10")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let onboarding: Value = response.json().await.unwrap();

    let found = h
        .get_json(
            AUDITOR,
            "/v1/decisions",
            &[("reference", body["reference"].as_str().unwrap())],
        )
        .await;
    let item = &found["items"][0];
    assert_eq!(item["onboarding_id"], onboarding["id"]);
    let id = item["id"].as_str().unwrap();
    let d = h
        .get_json(AUDITOR, &format!("/v1/decisions/{id}"), &[])
        .await;

    assert_eq!(d["id"], id);
    assert_eq!(d["outcome"], "approved");
    assert_eq!(d["reasons"][0]["code"], "identity.confirmed");
    assert_eq!(d["cpf"], "***.444.777-**");
    assert!(d.get("name").is_none());
    assert_eq!(d["policy_version"], "2026-11-23.1");
    assert_eq!(d["thresholds"]["score_reject_max"], -40);
    assert_eq!(d["thresholds"]["score_approve_min"], 50);
    assert_eq!(d["biometrics"]["unico_id"], "yes");
    assert_eq!(d["biometrics"]["status"], 3);
    assert_eq!(d["device"]["risk_flags"], json!([]));
    // Every rule of the table, each with its inputs and whether it fired.
    let evaluations = d["evaluations"].as_array().unwrap();
    // The table's rules, and beside them those of risk memory the version in force holds.
    let table = evaluations
        .iter()
        .filter(|e| !veredito::policy::memory::is_memory_code(e["code"].as_str().unwrap_or("")))
        .count();
    assert_eq!(table, veredito::policy::reason_codes().len());
    for e in evaluations {
        assert!(
            e["code"].is_string()
                && e["fired"].is_boolean()
                && e.get("inputs").is_some()
                && e["outcome"].is_string(),
            "{e}"
        );
    }
    let confirmed = evaluations
        .iter()
        .find(|e| e["code"] == "identity.confirmed")
        .unwrap();
    assert_eq!(confirmed["fired"], true);
    let fired: Vec<&str> = evaluations
        .iter()
        .filter(|e| e["fired"] == true)
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(fired, ["identity.confirmed", "device.registered"]);
    // The evidence as stored: unico's result as received.
    assert_eq!(d["evidence"]["biometrics"]["state"], "received");
    assert_eq!(
        d["evidence"]["biometrics"]["process_id"],
        onboarding["biometrics"]["process_id"]
    );
    assert_eq!(d["evidence"]["risk_signals"]["is_emulated"], false);
    // The timeline, in order, with durations.
    let timeline = d["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"received"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"decided"), "{kinds:?}");
    assert!(
        kinds.len() >= 3,
        "the process creation is on the timeline: {kinds:?}"
    );
    let mut previous = 0;
    for e in timeline {
        let since = e["since_received_ms"].as_i64().unwrap();
        assert!(since >= previous, "{e}");
        // Both are whole milliseconds of microsecond times, so they may differ by one.
        assert!(
            (e["since_previous_ms"].as_i64().unwrap() - (since - previous)).abs() <= 1,
            "{e}"
        );
        assert!(e["at"].is_string());
        previous = since;
    }
    assert_eq!(timeline[0]["since_received_ms"], 0);
    // The outbound calls, with their redacted bodies.
    let calls = d["provider_calls"].as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["provider"] == "unico" && c["http_status"].is_number()),
        "{calls:?}"
    );
    assert!(!d.to_string().contains("11144477735"));

    // Unknown and malformed ids.
    let missing = h
        .request(
            Some(AUDITOR),
            &format!("/v1/decisions/{}", Uuid::new_v4()),
            &[],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        h.request(Some(AUDITOR), "/v1/decisions/not-a-uuid", &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    h.stop().await;
}
