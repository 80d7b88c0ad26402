//! Block and allow lists: a listed device rejected before unico with its list's reason, the
//! history of entries removed and added again, bad values named by their index.

use super::*;

#[tokio::test]
async fn a_block_listed_device_is_rejected_before_unico_with_its_list_reason() {
    let app = spawn(&rules(
        json!([{"list": "blocked_devices", "outcome": "rejected"}]),
        json!([]),
        json!(null),
    ))
    .await;
    let (status, list) = app
        .post_json(
            "/v1/lists",
            RISK_KEY,
            &json!({"name": "blocked_devices", "key": "device_id", "note": "rings"}),
        )
        .await;
    assert_eq!(status, 201, "{list}");
    let (status, _) = app
        .post_json(
            "/v1/lists",
            RISK_KEY,
            &json!({"name": "blocked_devices", "key": "device_id"}),
        )
        .await;
    assert_eq!(status, 409, "a list exists once");
    let (status, added) = app
        .post_json(
            "/v1/lists/blocked_devices/entries",
            RISK_KEY,
            &json!({"entries": [{"value": " ring-phone-0042 ", "reason": "chargebacks", "expires_at": null}]}),
        )
        .await;
    assert_eq!(
        (status, added),
        (200, json!({"added": 1, "already_listed": 0}))
    );

    let listed = person(
        &cpf_from(1),
        "ring-phone-0042",
        "11974740001",
        "a@example.com",
    );
    let response = app.onboard(&key(), &listed, Some(10)).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "rejected", "{view}");
    assert_eq!(reason_codes(&view)[0], "list.blocked_devices");
    let id = view["id"].as_str().unwrap();
    assert_eq!(
        app.unico_calls(id, "create_process").await,
        0,
        "no unico process"
    );

    let decision = explained(&app, listed["reference"].as_str().unwrap()).await;
    let rule = evaluation(&decision, "list.blocked_devices");
    assert_eq!(rule["fired"], true);
    assert_eq!(rule["inputs"]["hit"]["value"], "***0042", "{rule}");
    assert_eq!(rule["inputs"]["hit"]["reason"], "chargebacks");
    assert!(
        !decision.to_string().contains("ring-phone-0042"),
        "the value shows only masked"
    );

    // Another device goes on to unico and is approved.
    let clean = person(&cpf_from(2), "clean-phone", "11974740002", "b@example.com");
    let view = decided(&app, &clean).await;
    assert_eq!(view["outcome"], "approved", "{view}");
    app.stop().await;
}

#[tokio::test]
async fn list_history_keeps_an_entry_removed_and_added_again() {
    let app = spawn(&rules(json!([]), json!([]), json!(null))).await;
    let (status, _) = app
        .post_json(
            "/v1/lists",
            RISK_KEY,
            &json!({"name": "watched_cpfs", "key": "cpf"}),
        )
        .await;
    assert_eq!(status, 201);
    let add = |reason: &str| json!({"entries": [{"value": "111.444.777-35", "reason": reason}]});
    assert_eq!(
        app.post_json(
            "/v1/lists/watched_cpfs/entries",
            RISK_KEY,
            &add("first report")
        )
        .await
        .0,
        200
    );
    let removal = json!({"value": "11144477735", "reason": "cleared by the analyst"});
    let (status, _) = app
        .post_json("/v1/lists/watched_cpfs/entries/removal", RISK_KEY, &removal)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post_json("/v1/lists/watched_cpfs/entries/removal", RISK_KEY, &removal)
        .await;
    assert_eq!(status, 404, "a value not listed cannot be removed");
    let (_, again) = app
        .post_json(
            "/v1/lists/watched_cpfs/entries",
            RISK_KEY,
            &add("second report"),
        )
        .await;
    assert_eq!(again, json!({"added": 1, "already_listed": 0}));
    let (_, twice) = app
        .post_json("/v1/lists/watched_cpfs/entries", RISK_KEY, &add("third"))
        .await;
    assert_eq!(twice, json!({"added": 0, "already_listed": 1}));

    let (status, lookup) = app
        .get(
            "/v1/lists/watched_cpfs/entries?value=111.444.777-35",
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(status, 200, "{lookup}");
    assert_eq!(lookup["listed"], true);
    assert_eq!(lookup["entry"]["reason"], "second report");
    let history: Vec<(String, String, String)> = lookup["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap().to_owned(),
                h["reason"].as_str().unwrap().to_owned(),
                h["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("added".into(), "first report".into(), "sandbox-risk".into()),
            (
                "removed".into(),
                "cleared by the analyst".into(),
                "sandbox-risk".into()
            ),
            (
                "added".into(),
                "second report".into(),
                "sandbox-risk".into()
            ),
        ]
    );
    assert!(lookup.to_string().contains("***.444.777-**"));
    assert!(!lookup.to_string().contains("11144477735"));
    let (_, lists) = app.get("/v1/lists", AUDITOR_KEY).await;
    assert_eq!(lists["items"][0]["entries"], 1, "{lists}");
    let (status, _) = app
        .post_json("/v1/lists/watched_cpfs/entries", AUDITOR_KEY, &add("x"))
        .await;
    assert_eq!(status, 403, "changing a list takes lists:write");
    app.stop().await;
}

#[tokio::test]
async fn a_bad_value_is_named_by_its_index_and_nothing_is_added() {
    let app = spawn(&rules(json!([]), json!([]), json!(null))).await;
    app.post_json(
        "/v1/lists",
        RISK_KEY,
        &json!({"name": "cpfs", "key": "cpf"}),
    )
    .await;
    let entries: Vec<Value> = (0..10_000)
        .map(|i| json!({"value": cpf_from(i), "reason": "bulk"}))
        .collect();
    let mut bad = entries[..3].to_vec();
    bad[2]["value"] = json!("123.456.789-00");
    let (status, problem) = app
        .post_json("/v1/lists/cpfs/entries", RISK_KEY, &json!({"entries": bad}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"], "entries[2].value",
        "{problem}"
    );
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1);
    let (_, lists) = app.get("/v1/lists", AUDITOR_KEY).await;
    assert_eq!(lists["items"][0]["entries"], 0, "nothing added: {lists}");

    let started = Instant::now();
    let (status, added) = app
        .post_json(
            "/v1/lists/cpfs/entries",
            RISK_KEY,
            &json!({"entries": entries}),
        )
        .await;
    eprintln!("10,000 entries added in {:?}", started.elapsed());
    assert_eq!(
        (status, added),
        (200, json!({"added": 10_000, "already_listed": 0}))
    );
    let (_, page) = app.get("/v1/lists/cpfs/entries?limit=2", AUDITOR_KEY).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());
    app.stop().await;
}
