//! Risk memory over HTTP: lists, velocity and linked fraud judged before unico, the links
//! between onboardings, and replay judging them as of each decision.

use std::time::{Duration, Instant};

use crate::common::*;
use chrono::Utc;
use futures_util::future::join_all;
use serde_json::{Value, json};

const RISK_KEY: &str = "vrd_sandbox_risk";

/// The test defaults turn risk memory off; these turn on exactly the rules a test names.
fn rules(lists: Value, velocity: Value, linked: Value) -> Vec<(&'static str, String)> {
    vec![
        ("policy.lists", lists.to_string()),
        ("policy.velocity", velocity.to_string()),
        ("policy.linked_fraud", linked.to_string()),
    ]
}

async fn spawn(overrides: &[(&'static str, String)]) -> TestApp {
    let pairs: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::builder().config(&pairs).spawn().await
}

fn person(cpf: &str, device: &str, phone: &str, email: &str) -> Value {
    let mut body = onboarding_body(cpf);
    body["device"]["device_id"] = json!(device);
    body["person"]["phone"] = json!(phone);
    body["person"]["email"] = json!(email);
    body
}

async fn decided(app: &TestApp, body: &Value) -> Value {
    let id = app.start_onboarding(body).await;
    app.until_decided(&id, Duration::from_secs(20)).await
}

/// The decision of an onboarding, explained, by its reference.
async fn explained(app: &TestApp, reference: &str) -> Value {
    let (status, page) = app
        .get(&format!("/v1/decisions?reference={reference}"), AUDITOR_KEY)
        .await;
    assert_eq!(status, 200, "{page}");
    let id = page["items"][0]["id"]
        .as_str()
        .expect("a decision")
        .to_owned();
    let (status, decision) = app.get(&format!("/v1/decisions/{id}"), AUDITOR_KEY).await;
    assert_eq!(status, 200, "{decision}");
    decision
}

fn evaluation<'a>(decision: &'a Value, code: &str) -> &'a Value {
    decision["evaluations"]
        .as_array()
        .expect("evaluations")
        .iter()
        .find(|e| e["code"] == code)
        .unwrap_or_else(|| panic!("no evaluation {code}: {decision}"))
}

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

fn fired(views: &[Value], code: &str) -> usize {
    views
        .iter()
        .filter(|v| reason_codes(v).iter().any(|c| c == code))
        .count()
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

#[tokio::test]
async fn links_fraud_fires_for_a_phone_shared_with_a_fraud_rejection_and_not_an_approval() {
    let app = spawn(&rules(
        json!([]),
        json!([]),
        json!({"keys": ["phone"], "window": "180d", "outcome": "review"}),
    ))
    .await;
    // 900.000.009-22: unico finds the face among its fraudsters.
    let fraud = decided(
        &app,
        &person("900.000.009-22", "d-1", "11988880001", "f@example.com"),
    )
    .await;
    assert_eq!(fraud["outcome"], "rejected");
    assert!(reason_codes(&fraud).contains(&"fraudsters.match".to_owned()));
    let shared = person(&cpf_from(11), "d-2", "5511988880001", "g@example.com");
    let linked = decided(&app, &shared).await;
    assert_eq!(linked["outcome"], "review", "{linked}");
    assert_eq!(reason_codes(&linked)[0], "links.fraud");
    let decision = explained(&app, shared["reference"].as_str().unwrap()).await;
    let rule = evaluation(&decision, "links.fraud");
    assert_eq!(
        rule["inputs"]["linked"][0]["onboarding_id"], fraud["id"],
        "{rule}"
    );

    let approved = decided(
        &app,
        &person(&cpf_from(12), "d-3", "11988880002", "h@example.com"),
    )
    .await;
    assert_eq!(approved["outcome"], "approved");
    let beside = decided(
        &app,
        &person(&cpf_from(13), "d-4", "11988880002", "i@example.com"),
    )
    .await;
    assert_eq!(beside["outcome"], "approved", "{beside}");
    assert!(!reason_codes(&beside).contains(&"links.fraud".to_owned()));

    // The links a reviewer sees: the phone shared with the rejected one, its CPF masked.
    let id = linked["id"].as_str().unwrap();
    let (status, links) = app
        .get(
            &format!("/v1/onboardings/{id}/links?window=30d"),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(status, 200, "{links}");
    let phone = links["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "phone")
        .expect("phone links");
    assert_eq!(phone["count"], 1, "{links}");
    assert_eq!(phone["onboardings"][0]["id"], fraud["id"]);
    assert_eq!(phone["onboardings"][0]["outcome"], "rejected");
    assert_eq!(phone["onboardings"][0]["cpf"], "***.000.009-**");
    let (status, _) = app
        .get(
            &format!("/v1/onboardings/{id}/links?window=forever"),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(status, 422);
    app.stop().await;
}

/// The store's figures under a fixed clock: the window's lower edge is inclusive, only what was
/// stored before counts, `distinct` counts values, and list entries count while live at `as_of`.
#[tokio::test]
async fn figures_respect_window_edges_order_distinct_values_and_entry_lifetimes() {
    use veredito::domain::LinkKey;
    use veredito::policy::memory::Questions;
    use veredito::store::links::figures_as_of;

    let app = spawn(&rules(json!([]), json!([]), json!(null))).await;
    let mut ids = Vec::new();
    // Four onboardings from one device; the second and third share a CPF.
    for cpf in [cpf_from(1), cpf_from(2), cpf_from(2), cpf_from(3)] {
        let view = decided(
            &app,
            &person(&cpf, "edge-device", "11974741111", "e@example.com"),
        )
        .await;
        ids.push(uuid::Uuid::parse_str(view["id"].as_str().unwrap()).unwrap());
    }
    let last = ids[3];
    let at: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT created_at FROM onboardings WHERE id = $1")
            .bind(last)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let window = chrono::Duration::days(30);
    // The first just outside the window, the second exactly on its edge.
    for (id, created) in [
        (ids[0], at - window - chrono::Duration::microseconds(1)),
        (ids[1], at - window),
    ] {
        sqlx::query("UPDATE onboarding_links SET created_at = $2 WHERE onboarding_id = $1")
            .bind(id)
            .bind(created)
            .execute(&app.db)
            .await
            .unwrap();
    }
    let questions = Questions {
        lists: vec!["edge_devices".into()],
        velocity: vec![
            (LinkKey::DeviceId, None, 30 * 24 * 3600),
            (LinkKey::DeviceId, Some(LinkKey::Cpf), 30 * 24 * 3600),
        ],
        linked: vec![],
        shared: vec![],
    };
    let later = Utc::now() + chrono::Duration::hours(1);
    let figures = figures_as_of(&app.db, last, later, &questions)
        .await
        .unwrap();
    assert_eq!(
        figures.velocity[0].count,
        Some(3),
        "the edge counts, outside does not"
    );
    assert_eq!(
        figures.velocity[1].count,
        Some(2),
        "two distinct CPFs among the three"
    );
    // Judged as the third stored, the fourth does not count; as the first, only itself.
    let third = figures_as_of(&app.db, ids[2], later, &questions)
        .await
        .unwrap();
    assert_eq!(third.velocity[0].count, Some(3), "{third:?}");
    let first = figures_as_of(&app.db, ids[0], later, &questions)
        .await
        .unwrap();
    assert_eq!(first.velocity[0].count, Some(1), "{first:?}");
    assert_eq!(figures.lists[0].key, None, "no such list yet");

    // A listed entry counts while it lives: before it was added, after it expired, and after
    // its removal it does not.
    app.post_json(
        "/v1/lists",
        RISK_KEY,
        &json!({"name": "edge_devices", "key": "device_id"}),
    )
    .await;
    let before_added = Utc::now();
    let expires = Utc::now() + chrono::Duration::minutes(10);
    let (status, _) = app
        .post_json(
            "/v1/lists/edge_devices/entries",
            RISK_KEY,
            &json!({"entries": [{"value": "edge-device", "reason": "test", "expires_at": expires}]}),
        )
        .await;
    assert_eq!(status, 200);
    let live = Utc::now();
    let hit = |f: &veredito::domain::evidence::MemoryEvidence| f.lists[0].hit.is_some();
    assert!(hit(&figures_as_of(&app.db, last, live, &questions)
        .await
        .unwrap()));
    assert!(!hit(&figures_as_of(
        &app.db,
        last,
        before_added,
        &questions
    )
    .await
    .unwrap()));
    let expired = expires + chrono::Duration::seconds(1);
    assert!(!hit(&figures_as_of(&app.db, last, expired, &questions)
        .await
        .unwrap()));
    let (status, _) = app
        .post_json(
            "/v1/lists/edge_devices/entries/removal",
            RISK_KEY,
            &json!({"value": "edge-device", "reason": "done"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        hit(&figures_as_of(&app.db, last, live, &questions)
            .await
            .unwrap()),
        "as it stood then"
    );
    assert!(!hit(&figures_as_of(&app.db, last, Utc::now(), &questions)
        .await
        .unwrap()));
    app.stop().await;
}

/// The questions an onboarding's stored figures answered, read back from them.
fn questions_of(memory: &Value) -> veredito::policy::memory::Questions {
    use veredito::domain::LinkKey;
    let key = |v: &Value| v.as_str().and_then(LinkKey::parse);
    let secs = |v: &Value| v["window_secs"].as_u64().unwrap();
    veredito::policy::memory::Questions {
        lists: memory["lists"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["list"].as_str().unwrap().to_owned())
            .collect(),
        velocity: memory["velocity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (key(&v["key"]).unwrap(), key(&v["distinct"]), secs(v)))
            .collect(),
        linked: memory["linked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let keys = l["keys"].as_array().unwrap().iter();
                (keys.map(|k| key(k).unwrap()).collect(), secs(l))
            })
            .collect(),
        shared: memory["shared"]
            .as_array()
            .unwrap()
            .iter()
            .map(secs)
            .collect(),
    }
}

/// A person who shares nothing with anyone stored before gets the figures from the shortcut
/// of the statement that stores the onboarding; the full lookups over the stored rows (what
/// replay runs) must give the same, also when a value is missing (no e-mail: its rule counts
/// nothing) and once a later onboarding shares the device (it goes through the full lookups at
/// once, and so does the replay of the first).
#[tokio::test]
async fn the_shortcut_for_a_person_sharing_nothing_gives_the_full_lookups_figures() {
    use veredito::store::links::figures_as_of;

    let velocity = json!([
        {"code": "velocity.device_cpfs", "key": "device_id", "distinct": "cpf", "window": "30d", "max": 3, "outcome": "review"},
        {"code": "velocity.cpf_attempts", "key": "cpf", "window": "24h", "max": 5, "outcome": "review"},
        {"code": "velocity.email_phones", "key": "email", "distinct": "phone", "window": "7d", "max": 2, "outcome": "review"},
        {"code": "velocity.device_emails", "key": "device_id", "distinct": "email", "window": "7d", "max": 2, "outcome": "review"}
    ]);
    let linked =
        json!({"keys": ["device_id", "phone", "email"], "window": "180d", "outcome": "review"});
    let app = spawn(&rules(json!([]), velocity, linked)).await;

    let mut alone = person(
        &cpf_from(41),
        "shortcut-device",
        "11974740041",
        "x@example.com",
    );
    alone["person"].as_object_mut().unwrap().remove("email");
    let later = person(
        &cpf_from(42),
        "shortcut-device",
        "11974740042",
        "y@example.com",
    );
    let mut ids = Vec::new();
    for body in [alone, later] {
        let view = decided(&app, &body).await;
        ids.push(uuid::Uuid::parse_str(view["id"].as_str().unwrap()).unwrap());
    }
    for (n, id) in ids.iter().enumerate() {
        let stored: Value = sqlx::query_scalar("SELECT memory FROM onboardings WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
        let as_of: chrono::DateTime<Utc> = stored["as_of"].as_str().unwrap().parse().unwrap();
        let replayed = figures_as_of(&app.db, *id, as_of, &questions_of(&stored))
            .await
            .unwrap();
        let replayed = serde_json::to_value(&replayed).unwrap();
        let kept: veredito::domain::evidence::MemoryEvidence =
            serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&kept).unwrap(),
            replayed,
            "onboarding {n}: as stored {stored}"
        );
        let counts: Vec<Value> = stored["velocity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["count"].clone())
            .collect();
        let expected = if n == 0 {
            // Itself alone on the device and the CPF; no e-mail, so neither e-mail rule counts.
            vec![json!(1), json!(1), Value::Null, json!(0)]
        } else {
            vec![json!(2), json!(1), json!(1), json!(1)]
        };
        assert_eq!(counts, expected, "onboarding {n}: {stored}");
    }
}

/// The figures' plans are made once per connection and kept: made on an empty database (a
/// service's first onboardings), they must still probe the link index, not scan and hash the
/// whole table, or every later onboarding reads every link row stored since. Counted by
/// PostgreSQL for the transaction (`pg_stat_xact_user_tables`), on a connection that has never
/// called the function, for a person who shares nothing (the shortcut's check) and for one who
/// shares a device (the full lookups).
#[tokio::test]
async fn the_figures_probe_the_link_index_even_when_planned_on_an_empty_table() {
    use sqlx::Connection;

    let app = TestApp::spawn().await;
    let figures = "SELECT risk_memory_figures($1, '{cpf,device_id,phone,email}', $2, NULL, '{}',
                          '{device_id,cpf}', '{NULL,NULL}', '{2592000,86400}',
                          '{\"device_id,phone,email\"}', '{15552000}', '{}',
                          '{fraudsters.match}', 10)";
    let scans = "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables
                  WHERE relname = 'onboarding_links'";
    let hashes = |device: &[u8]| -> Vec<Vec<u8>> {
        [b"cpf-1".as_slice(), device, b"phone-1", b"email-1"]
            .iter()
            .map(|v| {
                let mut h = v.to_vec();
                h.resize(32, 0);
                h
            })
            .collect()
    };
    let shared_device = hashes(b"device-shared")[1].clone();
    sqlx::query(
        "INSERT INTO onboarding_links (onboarding_id, key, hash, created_at)
         VALUES (gen_random_uuid(), 'device_id', $1, now())",
    )
    .bind(&shared_device)
    .execute(&app.db)
    .await
    .unwrap();

    for (case, device) in [
        ("sharing nothing", b"device-alone".as_slice()),
        ("sharing a device", b"device-shared".as_slice()),
    ] {
        // A connection of its own, so the plans are made here, now.
        let mut connection = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
        let mut tx = connection.begin().await.unwrap();
        let answer: Value = sqlx::query_scalar(figures)
            .bind(uuid::Uuid::new_v4())
            .bind(hashes(device))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let (seq, idx): (i64, i64) = sqlx::query_as(scans).fetch_one(&mut *tx).await.unwrap();
        assert_eq!(
            seq, 0,
            "{case}: the link table was scanned whole ({answer})"
        );
        assert!(idx > 0, "{case}: the link index was not probed ({answer})");
        let device_count = &answer["velocity"][0]["count"];
        let expected = if device == b"device-shared" { 2 } else { 1 };
        assert_eq!(device_count, &json!(expected), "{case}: {answer}");
    }
}
