//! The history the access report tells: three onboardings of one CPF (approved; reviewed,
//! contested with a statement and resolved; rejected as fraud) and two fraud indications.

use super::*;

async fn decided(app: &TestApp, body: &Value) -> Value {
    let response = app.onboard(&key(), body, Some(10)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn with_signal(cpf: &str, signal: &str) -> Value {
    let mut body = onboarding_body(cpf);
    body["device"]["risk_signals"][signal] = json!(true);
    body
}

/// A reviewer claims the case and resolves it.
async fn resolve(app: &TestApp, reviewer: &str, case_id: &str, outcome: &str, note: &str) {
    let (status, claimed) = app
        .post_json(
            &format!("/v1/reviews/{case_id}/claim"),
            reviewer,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{claimed}");
    let (status, resolved) = app
        .post_json(
            &format!("/v1/reviews/{case_id}/resolution"),
            reviewer,
            &json!({ "outcome": outcome, "note": note }),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
}

/// Makes the history of `cpf` and answers the onboardings' ids and the shared indication's id.
pub(super) async fn three_onboardings_and_two_indications(
    app: &TestApp,
    cpf: &str,
) -> (Vec<String>, String) {
    // 1. Approved, from a phone that sent where it was.
    let mut body = onboarding_body(cpf);
    body["device"]["risk_signals"]["device_latitude"] = json!(-23.561414);
    body["device"]["risk_signals"]["device_longitude"] = json!(-46.655881);
    let approved = decided(app, &body).await;
    assert_eq!(approved["outcome"], "approved", "{approved}");

    // 2. Sent to review by a rooted phone, rejected by a reviewer, contested by the person with
    //    a statement (LGPD Art. 20) and approved by another reviewer.
    let reviewed = decided(app, &with_signal(cpf, "is_rooted_device")).await;
    assert_eq!(reviewed["outcome"], "review", "{reviewed}");
    let reviewed_id = reviewed["id"].as_str().unwrap().to_owned();
    let (_, cases) = app
        .get("/v1/reviews?status=open", "vrd_sandbox_reviewer")
        .await;
    let policy_case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    resolve(
        app,
        "vrd_sandbox_reviewer",
        &policy_case,
        "rejected",
        "Aparelho com root.",
    )
    .await;
    let (status, contested) = app
        .post_json(
            &format!("/v1/onboardings/{reviewed_id}/review-requests"),
            ONBOARDING_KEY,
            &json!({ "statement": STATEMENT }),
        )
        .await;
    assert_eq!(status, 201, "{contested}");
    resolve(
        app,
        "vrd_sandbox_reviewer_2",
        contested["id"].as_str().unwrap(),
        "approved",
        "Documento conferido.",
    )
    .await;
    app.until(&reviewed_id, Duration::from_secs(10), |v| {
        v["status"] == "decided" && v["decided_by"] == "reviewer" && v["outcome"] == "approved"
    })
    .await;

    // 3. Rejected as fraud: an emulator, before unico is paid.
    let fraud = decided(app, &with_signal(cpf, "is_emulated")).await;
    assert_eq!(fraud["outcome"], "rejected", "{fraud}");
    let ids: Vec<String> = [&approved, &reviewed, &fraud]
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();

    // Found later by the compliance team: one indication the sandbox's sharing system receives,
    // and one confidential (anti-money-laundering) that the person is never told of.
    let mut shared_indication = Value::Null;
    for (confidential, description) in [
        (false, "Conta usada para receber Pix de golpes."),
        (true, "Comunicação ao COAF em andamento."),
    ] {
        let (status, made) = app
            .post_json(
                "/v1/fraud-indications",
                "vrd_sandbox_fraud",
                &json!({"cpf": cpf, "typology": "mule_account", "description": description,
                        "confidential": confidential}),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        if !confidential {
            shared_indication = made;
        }
    }
    let indication_id = shared_indication["id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    loop {
        let (_, now) = app
            .get(
                &format!("/v1/fraud-indications/{indication_id}"),
                "vrd_sandbox_fraud",
            )
            .await;
        if !now["registered_at"].is_null() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sharing system acknowledged it: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (ids, indication_id)
}
