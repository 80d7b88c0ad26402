//! The console over HTTP, signed in as a browser signs in.

use reqwest::{Client, Response};

use super::TestApp;

/// A console session opened over HTTP as a browser opens one: the sign-in page, then its form
/// with the key; redirects are not followed, so each answer can be looked at.
pub struct ConsoleSession {
    pub http: Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

/// The value of the hidden form field `name` in `html`, if the page has one.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The `name=value` part of the cookie `name` that `response` sets.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

impl ConsoleSession {
    pub async fn sign_in(app: &TestApp, key: &str) -> ConsoleSession {
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(app.url("/console/sign-in")).send().await.unwrap();
        let pre_session = set_cookie(&page, "veredito_sign_in");
        let html = page.text().await.unwrap();
        let mut form = vec![("api_key", key.to_owned())];
        if let Some(token) = hidden_field(&html, "sign_in_token") {
            form.push(("sign_in_token", token));
        }
        let mut request = http
            .post(app.url("/console/sign-in"))
            .header("Sec-Fetch-Site", "same-origin")
            .form(&form);
        if let Some(cookie) = &pre_session {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        let signed_in = request.send().await.unwrap();
        assert_eq!(signed_in.status(), 303, "the console takes {key}");
        let cookie = set_cookie(&signed_in, "veredito_console").expect("a session cookie");
        let mut session = ConsoleSession {
            http,
            base: app.base.clone(),
            cookie,
            csrf: String::new(),
        };
        // The first page the key may see carries the token in its sign-out form.
        let home = signed_in
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("/console/reviews")
            .to_owned();
        let first = session.get(&home).await.text().await.unwrap();
        session.csrf = hidden_field(&first, "csrf").expect("the session's form token");
        session
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// Posts a console form with the session's token and `fields`.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .header("Sec-Fetch-Site", "same-origin")
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}
