//! The store's figures the rules judge: window edges, order, distinct values and entry
//! lifetimes; the shortcut for a person sharing nothing against the full lookups; the link
//! index probed even by plans made on an empty table.

use super::*;

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
