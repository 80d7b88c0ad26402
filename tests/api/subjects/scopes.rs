//! Who may ask: `subjects:write` to make and list requests, `pii:read` too for the report.

use super::*;

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
