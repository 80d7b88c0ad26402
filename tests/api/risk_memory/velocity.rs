//! Velocity: ten CPFs at once from one device, on one replica and over two, leave exactly the
//! allowed number unfired; replay changes the others.

use super::*;

fn device_burst_rules(max: u32) -> Vec<(&'static str, String)> {
    rules(
        json!([]),
        json!([{"code": "velocity.device_cpfs", "key": "device_id", "distinct": "cpf",
                "window": "30d", "max": max, "outcome": "review"}]),
        json!(null),
    )
}

/// Ten onboardings with ten CPFs from one device, sent at once, split over `apps`; answers the
/// views once decided.
async fn burst(apps: &[&TestApp], device: &str, from: u32, count: u32) -> Vec<Value> {
    let sends = (0..count).map(|i| {
        let app = apps[i as usize % apps.len()];
        let body = person(
            &cpf_from(from + i),
            device,
            &format!("119747{:05}", from + i),
            &format!("p{}@example.com", from + i),
        );
        async move { decided(app, &body).await }
    });
    join_all(sends).await
}

#[tokio::test]
async fn ten_cpfs_at_once_from_one_device_leave_exactly_three_unfired_and_replay_changes_the_seven()
{
    let started = Utc::now();
    let app = spawn(&device_burst_rules(3)).await;
    let views = burst(&[&app], "burst-device", 100, 10).await;
    assert_eq!(fired(&views, "velocity.device_cpfs"), 7, "{views:#?}");
    let approved = views.iter().filter(|v| v["outcome"] == "approved").count();
    assert_eq!(approved, 3);
    for view in views.iter().filter(|v| v["outcome"] == "review") {
        assert_eq!(reason_codes(view)[0], "velocity.device_cpfs", "{view}");
    }

    // A version allowing ten: replayed over those ten, exactly the seven change.
    let (_, active) = app.get("/v1/policies", RISK_KEY).await;
    let version = active["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["status"] == "active")
        .unwrap()["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, current) = app.get(&format!("/v1/policies/{version}"), RISK_KEY).await;
    let mut document = current["document"].clone();
    assert_eq!(document["velocity"][0]["max"], 3, "{document}");
    document["version"] = json!("allow-ten.1");
    document["velocity"][0]["max"] = json!(10);
    let (status, drafted) = app.post_json("/v1/policies", RISK_KEY, &document).await;
    assert_eq!(status, 201, "{drafted}");
    let replay = || async {
        let range = json!({"decided_from": started, "decided_to": Utc::now()});
        let (status, report) = app
            .post_json("/v1/policies/allow-ten.1/replay", AUDITOR_KEY, &range)
            .await;
        assert_eq!(status, 200, "{report}");
        report
    };
    let report = replay().await;
    assert_eq!(report["evaluated"], 10, "{report}");
    assert_eq!(report["changed"], 7, "{report}");
    assert_eq!(
        report["by_transition"],
        json!({"review->approved": 7}),
        "{report}"
    );

    // More from the device later change nothing of what the ten were judged on.
    let later = burst(&[&app], "burst-device", 200, 2).await;
    assert_eq!(fired(&later, "velocity.device_cpfs"), 2);
    let again = replay().await;
    assert_eq!(again["evaluated"], 12, "{again}");
    assert_eq!(
        again["changed"], 7,
        "the two later ones are over ten too: {again}"
    );
    let ids = |r: &Value| {
        let mut ids: Vec<String> = r["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["decision_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&report), ids(&again));
    app.stop().await;
}

#[tokio::test]
async fn ten_cpfs_at_once_over_two_replicas_leave_exactly_three_unfired() {
    let overrides = device_burst_rules(3);
    let app = spawn(&overrides).await;
    let pairs: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let other = app.replica(&pairs).await;
    let views = burst(&[&app, &other], "two-replica-device", 300, 10).await;
    assert_eq!(fired(&views, "velocity.device_cpfs"), 7, "{views:#?}");
    other.stop().await;
    app.stop().await;
}
