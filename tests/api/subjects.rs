//! The person's rights (LGPD Art. 18 and 19) over HTTP: the access report of a CPF with three
//! onboardings (approved; reviewed, contested with a statement and resolved; rejected as fraud),
//! as JSON and as the page in headless Chromium; the erasure, checked in a `pg_dump`; an erasure
//! that waits for a decision; the scopes; the 15 days.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::browser::Browser;
use crate::common::*;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use veredito::store::onboardings::PersonData;

const DPO: &str = "vrd_sandbox_dpo";
const AUDITOR_PII: &str = "vrd_sandbox_auditor_pii";
const NAME: &str = "Maria Teste da Silva";
const EMAIL: &str = "maria.teste@example.com";
const PHONE: &str = "5511974749090";
const SELFIE_B64: &str = "c2VsZmllLWJ5dGVzLW5vdC1hLXJlYWwtaW1hZ2U=";
const SELFIE_BYTES: &str = "selfie-bytes-not-a-real-image";
const STATEMENT: &str = "Sou eu mesma, o celular é do trabalho.";

async fn subject_request(
    app: &TestApp,
    cpf: &str,
    kind: &str,
    received_at: Option<String>,
) -> (u16, Value) {
    let mut body = json!({ "cpf": cpf, "kind": kind, "note": "pedido recebido por e-mail" });
    if let Some(at) = received_at {
        body["received_at"] = json!(at);
    }
    app.post_json("/v1/subject-requests", DPO, &body).await
}

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

fn codes(reasons: &Value) -> Vec<String> {
    reasons
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

/// The string `key` of each item of the array `list`.
fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

/// The report of the request `id`, read by the officer.
async fn report_of(app: &TestApp, id: &Value) -> (u16, Value) {
    let path = format!("/v1/subject-requests/{}/report", id.as_str().unwrap());
    app.get(&path, DPO).await
}

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

/// The date as the page shows it: Brasília time, day first.
fn on_the_page(at: &Value) -> String {
    let at: DateTime<Utc> = at.as_str().unwrap().parse().unwrap();
    let brt = chrono::FixedOffset::west_opt(3 * 3600).unwrap();
    at.with_timezone(&brt).format("%d/%m/%Y %H:%M").to_string()
}

#[tokio::test]
async fn the_report_tells_the_person_everything_and_an_erasure_leaves_only_what_the_record_needs() {
    if browser::no_chromium() {
        return;
    }
    let app = TestApp::spawn().await;
    let cpf = cpf_from(26_001);

    // 1. Approved, from a phone that sent where it was.
    let mut body = onboarding_body(&cpf);
    body["device"]["risk_signals"]["device_latitude"] = json!(-23.561414);
    body["device"]["risk_signals"]["device_longitude"] = json!(-46.655881);
    let approved = decided(&app, &body).await;
    assert_eq!(approved["outcome"], "approved", "{approved}");

    // 2. Sent to review by a rooted phone, rejected by a reviewer, contested by the person with
    //    a statement (LGPD Art. 20) and approved by another reviewer.
    let reviewed = decided(&app, &with_signal(&cpf, "is_rooted_device")).await;
    assert_eq!(reviewed["outcome"], "review", "{reviewed}");
    let reviewed_id = reviewed["id"].as_str().unwrap().to_owned();
    let (_, cases) = app
        .get("/v1/reviews?status=open", "vrd_sandbox_reviewer")
        .await;
    let policy_case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    resolve(
        &app,
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
        &app,
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
    let fraud = decided(&app, &with_signal(&cpf, "is_emulated")).await;
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

    // The access request, answered by its report.
    let (status, request) = subject_request(&app, &cpf, "access", None).await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["status"], "open");
    let received: DateTime<Utc> = request["received_at"].as_str().unwrap().parse().unwrap();
    let due: DateTime<Utc> = request["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due - received, chrono::Duration::days(15));
    let request_id = request["id"].as_str().unwrap().to_owned();
    let report_path = format!("/v1/subject-requests/{request_id}/report");
    let (status, report) = app.get(&report_path, DPO).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["cpf"], cpf);
    assert_eq!(report["request"]["status"], "answered");
    assert_eq!(report["request"]["answered_by"], "sandbox-dpo");

    let onboardings = report["onboardings"].as_array().unwrap();
    let listed: Vec<&str> = onboardings
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
    // Every decision the audit search knows of this CPF, with every reason and its message.
    let (_, search) = app
        .get(&format!("/v1/decisions?cpf={cpf}"), AUDITOR_PII)
        .await;
    let searched: BTreeSet<(String, String, Vec<String>)> = search["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["outcome"].as_str().unwrap().to_owned(),
                codes(&d["reasons"]),
            )
        })
        .collect();
    assert_eq!(searched.len(), 5, "{search}");
    let reported: BTreeSet<(String, String, Vec<String>)> = onboardings
        .iter()
        .flat_map(|o| o["decisions"].as_array().unwrap().iter())
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["outcome"].as_str().unwrap().to_owned(),
                codes(&d["reasons"]),
            )
        })
        .collect();
    assert_eq!(reported, searched);
    for decision in onboardings
        .iter()
        .flat_map(|o| o["decisions"].as_array().unwrap())
    {
        for reason in decision["reasons"].as_array().unwrap() {
            assert!(!reason["message"].as_str().unwrap().is_empty(), "{reason}");
        }
    }
    let by: Vec<&str> = strings(&onboardings[1]["decisions"], "decided_by");
    assert_eq!(by, ["policy", "reviewer", "reviewer"]);
    assert_eq!(
        onboardings[2]["decisions"][0]["reasons"][0]["code"],
        "device.emulated"
    );

    // Recipients, with the data each received, why and on what basis.
    let recipients = |o: &Value| -> Vec<(String, Vec<String>, String)> {
        o["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["recipient"].as_str().unwrap().to_owned(),
                    r["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap().to_owned())
                        .collect(),
                    r["legal_basis"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    for o in &onboardings[..2] {
        let got = recipients(o);
        let unico = got
            .iter()
            .find(|r| r.0 == "unico")
            .expect("unico received data");
        for d in ["cpf", "name", "selfie"] {
            assert!(unico.1.contains(&d.to_owned()), "{got:?}");
        }
        assert_eq!(unico.2, "LGPD Art. 11 II g");
        let qitech = got
            .iter()
            .find(|r| r.0 == "QI Tech")
            .expect("QI Tech received data");
        assert!(
            qitech.1.contains(&"device_identifiers".to_owned()),
            "{got:?}"
        );
        assert_eq!(qitech.2, "LGPD Art. 7 IX");
        assert!(
            o["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| !r["purpose"].as_str().unwrap().is_empty())
        );
    }
    assert!(
        recipients(&onboardings[2]).is_empty(),
        "an emulator is rejected before anyone is called"
    );

    // The statement, the data held with its retention date.
    let statements: Vec<&Value> = onboardings[1]["review_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["statement"])
        .collect();
    assert!(statements.contains(&&json!(STATEMENT)), "{statements:?}");
    for o in onboardings {
        let decided_at: DateTime<Utc> = o["decided_at"].as_str().unwrap().parse().unwrap();
        let until: DateTime<Utc> = o["retention"]["personal_data_until"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(until - decided_at, chrono::Duration::days(1825));
        let held: Vec<&str> = strings(&o["data_held"], "category");
        for category in ["cpf", "name", "email", "phone", "birth_date"] {
            assert!(held.contains(&category), "{held:?}");
        }
    }
    let held: Vec<&str> = strings(&onboardings[0]["data_held"], "category");
    assert!(held.contains(&"coordinates"), "{held:?}");

    // The indications the person may know of, and who received them.
    let indications = report["fraud_indications"].as_array().unwrap();
    assert_eq!(
        indications.len(),
        1,
        "the confidential one is left out: {report}"
    );
    assert_eq!(indications[0]["id"], indication_id.as_str());
    assert_eq!(indications[0]["typology"], "mule_account");
    assert!(!indications[0]["shared_at"].is_null());
    let shared_with = report["shared_with"].as_array().unwrap();
    assert_eq!(shared_with.len(), 1, "{report}");
    assert_eq!(shared_with[0]["legal_basis"], "LGPD Art. 7 II");
    assert!(
        !report.to_string().contains("COAF"),
        "nothing of the confidential indication: {report}"
    );

    // Reading the report is an access to personal data.
    let (_, searches) = app.get("/v1/audit-searches", AUDITOR_KEY).await;
    assert!(
        searches["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["endpoint"] == "GET /v1/subject-requests/{id}/report"
                && s["filters"]["subject_request_id"] == request_id.as_str()),
        "{searches}"
    );

    // The page, in Portuguese, in a real browser, with the same facts.
    let mut browser = Browser::start().await;
    browser.call("Network.enable", json!({})).await;
    browser
        .call(
            "Network.setExtraHTTPHeaders",
            json!({"headers": {"Authorization": format!("Bearer {DPO}")}}),
        )
        .await;
    browser.go(&app.url(&report_path)).await;
    assert_eq!(browser.eval("document.documentElement.lang").await, "pt-BR");
    let text = browser
        .eval("document.body.innerText")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    browser.screenshot("subject-report").await;
    assert!(text.contains("Relatório dos seus dados pessoais"), "{text}");
    assert!(text.contains(&cpf), "{text}");
    for o in onboardings {
        assert!(text.contains(o["id"].as_str().unwrap()), "{text}");
        assert!(
            text.contains(&on_the_page(&o["retention"]["personal_data_until"])),
            "{text}"
        );
        for d in o["decisions"].as_array().unwrap() {
            for reason in d["reasons"].as_array().unwrap() {
                assert!(text.contains(reason["code"].as_str().unwrap()), "{text}");
                assert!(text.contains(reason["message"].as_str().unwrap()), "{text}");
            }
        }
    }
    for fact in [
        "unico",
        "QI Tech",
        "LGPD art. 11 II g",
        "LGPD art. 7 IX",
        STATEMENT,
        "recusado",
        "aprovado",
        "Selfie (foto do rosto)",
        "Indícios de fraude registrados",
        "mule_account",
        "Conta usada para receber Pix de golpes.",
        "Resolução Conjunta nº 6/2023",
    ] {
        assert!(text.contains(fact), "{fact} is not on the page: {text}");
    }
    assert!(!text.contains("COAF"), "{text}");
    let decisions_on_page = browser
        .eval("document.querySelectorAll('tr.decision').length")
        .await;
    assert_eq!(decisions_on_page, 5);

    // The erasure.
    let sealed_before = sealed_values(&app, &ids).await;
    assert!(
        sealed_before.len() > 4,
        "the statement, the personal data and what providers said are sealed"
    );
    let (status, erasure) = subject_request(&app, &cpf, "erasure", None).await;
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
    let dump = pg_dump(&app);
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
    for id in &ids {
        let left = person(&app, id).await;
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
    for (id, outcome, reasons) in &searched {
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
    let (_, after) = app.get(&report_path, DPO).await;
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

fn sha256_hex(key: &str) -> String {
    hex::encode(veredito::crypto::sha256(key.as_bytes()))
}

#[tokio::test]
async fn requests_need_subjects_write_and_the_report_pii_read_too() {
    let database = fresh_database().await;
    let file = std::env::temp_dir().join(format!(
        "veredito-subject-keys-{}.toml",
        uuid::Uuid::new_v4()
    ));
    std::fs::write(
        &file,
        format!(
            "[[api.keys]]\nname = \"officer-without-pii\"\nkey_sha256 = \"{}\"\nscopes = [\"subjects:write\"]\n\n\
             [[api.keys]]\nname = \"pii-reader\"\nkey_sha256 = \"{}\"\nscopes = [\"pii:read\", \"decisions:read\"]\n\n\
             [[api.keys]]\nname = \"officer\"\nkey_sha256 = \"{}\"\nscopes = [\"subjects:write\", \"pii:read\"]\n",
            sha256_hex("vrd_test_officer_no_pii"),
            sha256_hex("vrd_test_pii_reader"),
            sha256_hex("vrd_test_officer"),
        ),
    )
    .unwrap();
    let app = TestApp::builder()
        .database(&database)
        .file(file.clone())
        .spawn()
        .await;
    let body = json!({ "cpf": cpf_from(26_002), "kind": "access" });

    let (status, refused) = app
        .post_json("/v1/subject-requests", "vrd_test_pii_reader", &body)
        .await;
    assert_eq!(status, 403, "{refused}");
    let (status, _) = app.get("/v1/subject-requests", "vrd_test_pii_reader").await;
    assert_eq!(status, 403);
    let (status, request) = app
        .post_json("/v1/subject-requests", "vrd_test_officer_no_pii", &body)
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["cpf"], "***.026.002-**", "masked without pii:read");
    let report = format!(
        "/v1/subject-requests/{}/report",
        request["id"].as_str().unwrap()
    );
    let (status, refused) = app.get(&report, "vrd_test_officer_no_pii").await;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = app.get(&report, "vrd_test_pii_reader").await;
    assert_eq!(status, 403, "{refused}");
    // Neither refusal answered it.
    let (_, listed) = app
        .get(
            "/v1/subject-requests?status=open",
            "vrd_test_officer_no_pii",
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let (status, _) = app.get(&report, "vrd_test_officer").await;
    assert_eq!(status, 200);
    let (_, listed) = app
        .get(
            "/v1/subject-requests?status=answered",
            "vrd_test_officer_no_pii",
        )
        .await;
    assert_eq!(listed["items"][0]["answered_by"], "officer", "{listed}");
    let (status, invalid) = app
        .post_json(
            "/v1/subject-requests",
            "vrd_test_officer",
            &json!({ "cpf": "111.111.111-12", "kind": "forget" }),
        )
        .await;
    assert_eq!(status, 422, "{invalid}");
    let fields: Vec<&str> = strings(&invalid["errors"], "field");
    assert_eq!(fields, ["cpf", "kind"]);
    std::fs::remove_file(file).ok();
}

async fn overdue_gauge(app: &TestApp) -> String {
    app.metrics()
        .await
        .lines()
        .find(|l| l.starts_with("veredito_subject_requests_overdue "))
        .expect("the gauge is exported")
        .to_owned()
}

#[tokio::test]
async fn a_request_is_overdue_fifteen_days_after_it_was_received() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "a_request_is_overdue_fifteen_days_after_it_was_received",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let app = TestApp::spawn().await;
    let cpf = cpf_from(26_003);
    let now = Utc::now();
    let (status, late) = subject_request(
        &app,
        &cpf,
        "access",
        Some((now - chrono::Duration::days(16)).to_rfc3339()),
    )
    .await;
    assert_eq!(status, 201, "{late}");
    let (_, in_time) = subject_request(
        &app,
        &cpf,
        "access",
        Some((now - chrono::Duration::days(14)).to_rfc3339()),
    )
    .await;
    assert_eq!(late["overdue"], true);
    assert_eq!(in_time["overdue"], false);
    let (status, future) = subject_request(
        &app,
        &cpf,
        "access",
        Some((now + chrono::Duration::days(1)).to_rfc3339()),
    )
    .await;
    assert_eq!(status, 422, "{future}");
    assert_eq!(future["errors"][0]["field"], "received_at");

    let (_, overdue) = app.get("/v1/subject-requests?overdue=true", DPO).await;
    let listed: Vec<&str> = strings(&overdue["items"], "id");
    assert_eq!(listed, [late["id"].as_str().unwrap()]);
    assert_eq!(
        overdue_gauge(&app).await,
        "veredito_subject_requests_overdue 1"
    );

    // Answered late is answered: no longer overdue.
    let (status, _) = report_of(&app, &late["id"]).await;
    assert_eq!(status, 200);
    let (_, overdue) = app.get("/v1/subject-requests?overdue=true", DPO).await;
    assert!(overdue["items"].as_array().unwrap().is_empty(), "{overdue}");
    assert_eq!(
        overdue_gauge(&app).await,
        "veredito_subject_requests_overdue 0"
    );
    let (_, all) = app.get("/v1/subject-requests", DPO).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
}
