//! The access report of a CPF with a history (`history`), as JSON; then the same report as the
//! page (`page`) and the erasure (`erasure`), in one test that tells the whole story.

use super::*;

#[tokio::test]
async fn the_report_tells_the_person_everything_and_an_erasure_leaves_only_what_the_record_needs() {
    if browser::no_chromium() {
        return;
    }
    let app = TestApp::spawn().await;
    let cpf = cpf_from(26_001);

    let (ids, indication_id) = history::three_onboardings_and_two_indications(&app, &cpf).await;
    let (report_path, report, searched) =
        the_report_tells_everything(&app, &cpf, &ids, &indication_id).await;
    page::the_page_tells_the_same(&app, &cpf, &report_path, &report).await;
    erasure::an_erasure_leaves_only_what_the_record_needs(
        &app,
        &cpf,
        &ids,
        &searched,
        &report_path,
    )
    .await;
}

/// Asks for the access report of `cpf` and checks it against what the history made and what the
/// audit search finds; answers the report's path, the report and the decisions found.
async fn the_report_tells_everything(
    app: &TestApp,
    cpf: &str,
    ids: &[String],
    indication_id: &str,
) -> (String, Value, Decisions) {
    // The access request, answered by its report.
    let (status, request) = subject_request(app, cpf, "access", None).await;
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
    assert_eq!(indications[0]["id"], indication_id);
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
    (report_path, report, searched)
}
