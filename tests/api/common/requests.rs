//! What the tests ask of a running service: requests over HTTP, and what it stored.

use std::time::Duration;

use reqwest::Response;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{ConsoleSession, ONBOARDING_KEY, TestApp, key};

impl TestApp {
    pub async fn onboard(
        &self,
        idempotency_key: &str,
        body: &Value,
        wait: Option<u64>,
    ) -> Response {
        let mut request = self
            .http
            .post(self.url("/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", idempotency_key)
            .json(body);
        if let Some(wait) = wait {
            request = request.header("Prefer", format!("wait={wait}"));
        }
        request.send().await.expect("request sent")
    }

    /// GET `path` with `key`, the response as it came.
    pub async fn get_response(&self, path: &str, key: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request sent")
    }

    /// POST `body` to `path` with `key`: the status and the JSON answer (Null when there is none).
    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `/metrics` as scraped.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await;
        response.expect("metrics answer").text().await.unwrap()
    }

    /// GET `path` with `key`: the status and the JSON body (Null when there is none).
    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Signs in to the console with `key` (as a browser does: the sign-in page first, for its
    /// pre-session token) and answers the session's `Cookie` header.
    pub async fn console_session(&self, key: &str) -> String {
        ConsoleSession::sign_in(self, key).await.cookie
    }

    /// GET a console page with a session's cookie: the status and the HTML.
    pub async fn console_get(&self, cookie: &str, path: &str) -> (u16, String) {
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.url(path))
            .header("Cookie", cookie)
            .send()
            .await
            .expect("console request sent");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Starts an onboarding without waiting and answers its id, whatever its state.
    pub async fn start_onboarding(&self, body: &Value) -> String {
        let response = self.onboard(&key(), body, Some(0)).await;
        assert!(
            response.status() == 200 || response.status() == 202,
            "unexpected {}",
            response.status()
        );
        let view: Value = response.json().await.unwrap();
        view["id"].as_str().unwrap().to_owned()
    }

    pub async fn validate(
        &self,
        idempotency_key: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .post(self.url("/v1/device-validations"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", idempotency_key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn onboarding(&self, id: &str) -> Value {
        let (status, view) = self
            .get(&format!("/v1/onboardings/{id}"), ONBOARDING_KEY)
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Polls GET until the onboarding is decided, up to `limit`.
    pub async fn until_decided(&self, id: &str, limit: Duration) -> Value {
        self.until(id, limit, |view| view["status"] == "decided")
            .await
    }

    /// Polls GET until `check` holds for the onboarding, up to `limit`.
    pub async fn until(&self, id: &str, limit: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let started = tokio::time::Instant::now();
        loop {
            let view = self.onboarding(id).await;
            if check(&view) {
                return view;
            }
            assert!(
                started.elapsed() < limit,
                "onboarding {id}: condition not met within {limit:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many calls of `operation` veredito made to `provider` for this onboarding. Every
    /// step stores its calls in the transaction that stores their result, so the count is
    /// complete for whatever the onboarding's state shows.
    pub async fn calls(&self, onboarding_id: &str, provider: &str, operation: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM provider_calls WHERE onboarding_id = $1::uuid AND provider = $2 AND operation = $3",
        )
        .bind(onboarding_id)
        .bind(provider)
        .bind(operation)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }

    pub async fn unico_calls(&self, onboarding_id: &str, operation: &str) -> i64 {
        self.calls(onboarding_id, "unico", operation).await
    }

    /// One retention pass, as the job runs it; answers how many onboardings it erased.
    pub async fn retention_pass(&self) -> usize {
        veredito::jobs::retention::erase_expired(&self.state, &CancellationToken::new())
            .await
            .expect("retention runs")
    }

    /// The sealed statement of the review case `case_id`, as stored.
    pub async fn sealed_statement(&self, case_id: &str) -> Option<Vec<u8>> {
        sqlx::query_scalar("SELECT statement_ciphertext FROM review_cases WHERE id = $1::uuid")
            .bind(case_id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn events(&self, onboarding_id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT kind FROM onboarding_events WHERE onboarding_id = $1::uuid ORDER BY id",
        )
        .bind(onboarding_id)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }
}
