//! Human review over HTTP, as reviewers and the onboarding backend use it: cases opened by the
//! policy and by the person's request, claims, releases, resolutions, the reviewer's decision
//! beside the untouched automatic one, and the overdue queue.

use std::time::Duration;

use crate::common::*;
use reqwest::Response;
use serde_json::{Value, json};

mod contests;
mod notes;
mod queue;
mod resolutions;

const REVIEWER: &str = "vrd_sandbox_reviewer";
const REVIEWER_2: &str = "vrd_sandbox_reviewer_2";
const LIMIT: Duration = Duration::from_secs(15);

/// An onboarding decided `review` by the policy (score 20) and its id.
async fn reviewed(app: &TestApp) -> String {
    decided(app, "900.000.019-02", "review").await
}

async fn decided(app: &TestApp, cpf: &str, outcome: &str) -> String {
    let response = app.onboard(&key(), &onboarding_body(cpf), Some(10)).await;
    assert_eq!(response.status(), 200, "{cpf}");
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], outcome, "{view}");
    view["id"].as_str().unwrap().to_owned()
}

async fn post(app: &TestApp, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.http.post(app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

async fn answer(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn case_of(app: &TestApp, onboarding_id: &str) -> Value {
    let (status, page) = app.get("/v1/reviews", REVIEWER).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["onboarding_id"] == onboarding_id)
        .cloned()
        .unwrap_or_else(|| panic!("no case for {onboarding_id}: {page}"))
}
