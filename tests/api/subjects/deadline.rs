//! The 15 days: a request received more than 15 days ago is overdue until it is answered.

use super::*;

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
