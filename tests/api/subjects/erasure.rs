//! The erasure: checked in a `pg_dump` after the history of `history` was reported, and asked
//! while an onboarding is still processing.

use super::*;
use veredito::store::onboardings::PersonData;

/// Every sealed value stored for these onboardings, as PostgreSQL prints bytea (`\x...`).
async fn sealed_values(app: &TestApp, ids: &[String]) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT encode(v, 'hex') FROM (
             SELECT pii_ciphertext AS v FROM onboardings WHERE id::text = ANY($1)
             UNION ALL SELECT selfie_ciphertext FROM onboardings WHERE id::text = ANY($1)
             UNION ALL SELECT statement_ciphertext FROM review_cases WHERE onboarding_id::text = ANY($1)
             UNION ALL SELECT answer_ciphertext FROM provider_calls WHERE onboarding_id::text = ANY($1)
         ) s WHERE v IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

/// The onboarding's sealed personal data, opened.
async fn person(app: &TestApp, id: &str) -> PersonData {
    let (key_id, sealed): (String, Vec<u8>) =
        sqlx::query_as("SELECT pii_key_id, pii_ciphertext FROM onboardings WHERE id = $1::uuid")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let uuid = uuid::Uuid::parse_str(id).unwrap();
    let plain = app
        .state
        .cipher
        .decrypt(&key_id, &sealed, uuid.as_bytes())
        .unwrap();
    serde_json::from_slice(&plain).unwrap()
}

fn pg_dump(app: &TestApp) -> String {
    let out = std::process::Command::new("pg_dump")
        .arg(format!("--dbname={}", app.db_url))
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asks for the erasure of `cpf`, whose onboardings are `ids` and decisions `searched`, and
/// checks what is left: in the database, in the decisions and in the report at `report_path`.
pub(super) async fn an_erasure_leaves_only_what_the_record_needs(
    app: &TestApp,
    cpf: &str,
    ids: &[String],
    searched: &Decisions,
    report_path: &str,
) {
    // The erasure.
    let sealed_before = sealed_values(app, ids).await;
    assert!(
        sealed_before.len() > 4,
        "the statement, the personal data and what providers said are sealed"
    );
    let (status, erasure) = subject_request(app, cpf, "erasure", None).await;
    assert_eq!(status, 201, "{erasure}");
    assert_eq!(erasure["status"], "answered");
    assert!(
        erasure["waiting"].as_array().unwrap().is_empty(),
        "{erasure}"
    );
    let erased = strings(&erasure["erased"], "category");
    for category in [
        "name",
        "email",
        "phone",
        "birth_date",
        "coordinates",
        "review_statements",
        "provider_answers",
    ] {
        assert!(
            erased.contains(&category),
            "{category} not erased: {erasure}"
        );
    }
    let kept: Vec<&str> = strings(&erasure["kept"], "item");
    for item in ["decisions", "cpf", "link_keys"] {
        assert!(kept.contains(&item), "{kept:?}");
    }
    assert!(
        erasure["kept"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| !k["reason"].as_str().unwrap().is_empty())
    );

    // A dump of the database holds none of it, in the clear or sealed.
    let dump = pg_dump(app);
    for value in [NAME, EMAIL, PHONE, SELFIE_B64, SELFIE_BYTES, STATEMENT] {
        assert!(!dump.contains(value), "{value} is still in the dump");
    }
    for sealed in &sealed_before {
        let sealed_as_dumped = format!("\\x{sealed}");
        let still = dump.contains(&sealed_as_dumped);
        // Only the sealed CPF may stay, and it is sealed anew: no earlier ciphertext survives.
        assert!(
            !still,
            "a value sealed before the erasure is still in the dump"
        );
    }
    for id in ids {
        let left = person(app, id).await;
        assert_eq!(left.cpf, cpf.replace(['.', '-'], ""));
        assert_eq!(
            (left.name, left.email, left.phone, left.birth_date),
            (None, None, None, None)
        );
    }
    // Where the phone was: as sent (onboardings.device) and to two decimals (the evidence).
    for coordinate in ["-23.56", "-46.65"] {
        assert!(
            !dump.contains(coordinate),
            "the phone's coordinates are still in the dump"
        );
    }

    // The decisions still explain themselves.
    for (id, outcome, reasons) in searched {
        let (status, explained) = app.get(&format!("/v1/decisions/{id}"), AUDITOR_PII).await;
        assert_eq!(status, 200, "{explained}");
        assert_eq!(&explained["outcome"], outcome);
        assert_eq!(&codes(&explained["reasons"]), reasons);
        assert_eq!(explained["cpf"], cpf);
        assert!(explained["name"].is_null(), "{explained}");
        assert!(!explained["timeline"].as_array().unwrap().is_empty());
        if explained["decided_by"] == "policy" {
            assert!(
                !explained["evaluations"].as_array().unwrap().is_empty(),
                "{explained}"
            );
        }
    }
    let (_, search) = app
        .get(&format!("/v1/decisions?cpf={cpf}"), AUDITOR_PII)
        .await;
    assert_eq!(
        search["items"].as_array().unwrap().len(),
        5,
        "still found by the CPF's keyed hash"
    );

    // The report says what was erased, and when.
    let (_, after) = app.get(report_path, DPO).await;
    let erasure_id = erasure["id"].as_str().unwrap();
    for o in after["onboardings"].as_array().unwrap() {
        let gone: Vec<&str> = o["data_erased"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["request_id"] == erasure_id && e["erased_at"].is_string())
            .map(|e| e["category"].as_str().unwrap())
            .collect();
        for category in ["name", "email", "phone"] {
            assert!(gone.contains(&category), "{o}");
        }
        let held: Vec<&str> = strings(&o["data_held"], "category");
        assert!(
            held.contains(&"cpf")
                && !held.contains(&"name")
                && !held.contains(&"review_statements"),
            "{held:?}"
        );
    }
    assert!(
        after["onboardings"][1]["review_cases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["statement"].is_null())
    );
}

#[tokio::test]
async fn an_erasure_asked_while_the_onboarding_is_processing_takes_effect_when_it_is_decided() {
    // unico takes 2 s: long enough to ask for the erasure in between.
    let app = TestApp::builder()
        .config(&[("sandbox.processing_delay", "2s")])
        .spawn()
        .await;
    let cpf = "900.000.007-60";
    let mut body = onboarding_body(cpf);
    body["device"]["risk_signals"]["device_latitude"] = json!(-23.561414);
    body["device"]["risk_signals"]["device_longitude"] = json!(-46.655881);
    let id = app.start_onboarding(&body).await;
    assert_eq!(app.onboarding(&id).await["status"], "processing");

    let (status, erasure) = subject_request(&app, cpf, "erasure", None).await;
    assert_eq!(status, 201, "{erasure}");
    assert_eq!(
        erasure["waiting"][0]["onboarding_id"],
        id.as_str(),
        "{erasure}"
    );
    assert!(
        erasure["erased"].as_array().unwrap().is_empty(),
        "{erasure}"
    );
    // Still held: unico and QI Tech need it to decide.
    assert_eq!(person(&app, &id).await.name.as_deref(), Some(NAME));

    let view = app.until_decided(&id, Duration::from_secs(15)).await;
    assert_eq!(view["outcome"], "approved", "{view}");
    let left = person(&app, &id).await;
    assert_eq!((left.name, left.email, left.phone), (None, None, None));
    // Calls stored with the decision or after it keep nothing a provider said.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (calls, answers): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(answer_ciphertext) + count(request) FROM provider_calls WHERE onboarding_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(calls >= 3, "unico and QI Tech were called");
    assert_eq!(answers, 0);
    let coordinates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM decisions WHERE onboarding_id = $1::uuid AND evidence #> '{risk_signals,device_latitude}' IS NOT NULL",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(coordinates, 0);
    let dump = pg_dump(&app);
    for value in [NAME, EMAIL, PHONE, SELFIE_B64, SELFIE_BYTES] {
        assert!(!dump.contains(value), "{value} is still in the dump");
    }
    let timeline = app.events(&id).await;
    let decided = timeline.iter().position(|k| k == "decided").unwrap();
    let erased = timeline
        .iter()
        .position(|k| k == "subject_erasure")
        .expect("the erasure is in the timeline");
    assert!(decided < erased, "{timeline:?}");

    // The request's report shows it erased by this request.
    let (_, report) = report_of(&app, &erasure["id"]).await;
    let gone: Vec<&str> = strings(&report["onboardings"][0]["data_erased"], "category");
    for category in ["name", "email", "phone", "coordinates"] {
        assert!(gone.contains(&category), "{report}");
    }
    assert!(
        report["request"]["waiting"].as_array().unwrap().is_empty(),
        "{report}"
    );
}
