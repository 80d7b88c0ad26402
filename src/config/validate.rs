//! The checks of the loaded values. Every check runs, so one start reports every mistake, each
//! naming its key, instead of one mistake per attempt.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::{ConfigError, Mistake, Scope, Settings, mistake};

/// Every mistake in `settings`; empty when the values are usable.
pub(super) fn mistakes(settings: &Settings) -> Vec<Mistake> {
    let mut found = Found(Vec::new());
    callbacks_and_sharing(settings, &mut found);
    server_and_database(settings, &mut found);
    providers(settings, &mut found);
    api(settings, &mut found);
    policy(settings, &mut found);
    let s = settings;
    if let Err(ConfigError::Invalid(console)) = s.console.validate() {
        found.0.extend(console);
    }
    found.above_zero("review.sla", s.review.sla);
    found.above_zero("review.subject_request_sla", s.review.subject_request_sla);
    found.at_least_one("jobs.step_max_failures", s.jobs.step_max_failures);
    found.above_zero("jobs.step_retry_initial", s.jobs.step_retry_initial);
    found.require(
        (0.0..=1.0).contains(&s.sandbox.fault_rate),
        "sandbox.fault_rate",
        "must be from 0 to 1",
    );
    found.at_least_one("retention.webhook_days", s.retention.webhook_days);
    found.at_least_one("retention.pii_days", s.retention.pii_days);
    found.require(
        s.pii.keys.iter().any(|k| k.id == s.pii.active_key_id),
        "pii.active_key_id",
        "must name one of pii.keys",
    );
    found.0
}

/// The mistakes found so far.
struct Found(Vec<Mistake>);

impl Found {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(mistake(key, message));
    }

    fn require(&mut self, ok: bool, key: &str, message: &str) {
        if !ok {
            self.add(key, message);
        }
    }

    fn at_least_one<N: PartialOrd + From<u8>>(&mut self, key: &str, value: N) {
        self.require(value >= N::from(1), key, "must be at least 1");
    }

    fn above_zero(&mut self, key: &str, value: Duration) {
        self.require(!value.is_zero(), key, "must be above zero");
    }

    /// A retry schedule: the first wait above zero, the longest at least the first.
    fn backoff(&mut self, (first_key, first): (&str, Duration), (max_key, max): (&str, Duration)) {
        if first.is_zero() {
            self.add(first_key, "must be above zero");
        } else if max < first {
            self.add(max_key, format!("must be at least {first_key}"));
        }
    }

    fn http_url(&mut self, key: &str, url: Option<&String>) {
        if let Some(url) = url {
            let ok = reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            self.require(ok, key, "must be an http(s) URL");
        }
    }

    fn keep<T>(&mut self, result: Result<T, ConfigError>) {
        match result {
            Ok(_) => {}
            Err(ConfigError::Invalid(mistakes)) => self.0.extend(mistakes),
            Err(other) => self.add("configuration", other.to_string()),
        }
    }
}

fn callbacks_and_sharing(s: &Settings, found: &mut Found) {
    found.http_url("callbacks.url", s.callbacks.url.as_ref());
    found.keep(s.callbacks.signing_key());
    found.backoff(
        ("callbacks.retry_initial", s.callbacks.retry_initial),
        ("callbacks.retry_max", s.callbacks.retry_max),
    );
    found.http_url("fraud_sharing.url", s.fraud_sharing.url.as_ref());
    found.keep(s.fraud_sharing.signing_key());
    match &s.institution.cnpj {
        Some(cnpj) if crate::domain::fraud::Cnpj::parse(cnpj).is_none() => found.add(
            "institution.cnpj",
            "must be a CNPJ of 14 digits with valid check digits",
        ),
        None if s.fraud_sharing.url.is_some() => found.add(
            "institution.cnpj",
            "is required when fraud_sharing.url is set: it names the institution registering \
             the indications",
        ),
        _ => {}
    }
}

fn server_and_database(s: &Settings, found: &mut Found) {
    found.require(
        s.server.addr.parse::<std::net::SocketAddr>().is_ok(),
        "server.addr",
        "must be an address such as 127.0.0.1:8080",
    );
    found.at_least_one("server.max_connections", s.server.max_connections);
    found.at_least_one("server.max_in_flight", s.server.max_in_flight);
    found.above_zero("server.header_timeout", s.server.header_timeout);
    found.above_zero("server.body_timeout", s.server.body_timeout);
    found.above_zero("server.idle_timeout", s.server.idle_timeout);
    found.require(
        s.database.url.expose_secret().starts_with("postgres"),
        "database.url",
        "must be a postgres:// URL",
    );
    found.at_least_one("database.max_connections", s.database.max_connections);
}

fn providers(s: &Settings, found: &mut Found) {
    for (key, url) in [
        ("unico.base_url", &s.unico.base_url),
        ("unico.identity_url", &s.unico.identity_url),
        ("qitech.base_url", &s.qitech.base_url),
        ("zro.base_url", &s.zro.base_url),
    ] {
        if reqwest::Url::parse(url).is_err() {
            found.add(key, format!("`{url}` is not a URL"));
        }
    }
    let unico = &s.unico;
    found.at_least_one("unico.requests_per_second", unico.requests_per_second);
    found.at_least_one(
        "unico.forged_webhooks_per_second",
        unico.forged_webhooks_per_second,
    );
    found.at_least_one("unico.forged_webhooks_burst", unico.forged_webhooks_burst);
    found.require(
        unico.private_key_pem.is_some() || unico.private_key_path.is_some(),
        "unico.private_key_pem",
        "set it or unico.private_key_path",
    );
    found.require(
        !unico.webhook_header.trim().is_empty()
            && axum::http::HeaderName::from_bytes(unico.webhook_header.as_bytes()).is_ok(),
        "unico.webhook_header",
        "must be a valid HTTP header name",
    );
    found.require(
        unico.webhook_secret.expose_secret().len() >= 8,
        "unico.webhook_secret",
        "must be at least 8 characters",
    );
    found.backoff(
        ("unico.poll_initial", unico.poll_initial),
        ("unico.poll_max", unico.poll_max),
    );
    found.backoff(
        ("qitech.poll_initial", s.qitech.poll_initial),
        ("qitech.poll_max", s.qitech.poll_max),
    );
    found.above_zero("zro.retry_initial", s.zro.retry_initial);
    found.at_least_one("zro.max_attempts", s.zro.max_attempts);
}

fn api(s: &Settings, found: &mut Found) {
    found.at_least_one("api.rate_per_second", s.api.rate_per_second);
    found.at_least_one("api.rate_burst", s.api.rate_burst);
    found.at_least_one("api.max_replays", s.api.max_replays);
    for key in &s.api.keys {
        let hex = key.key_sha256.len() == 64
            && key
                .key_sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            found.add(
                "api.keys",
                format!(
                    "key `{}`: key_sha256 must be 64 lowercase hex digits",
                    key.name
                ),
            );
        }
        for scope in key.scopes.iter().filter(|s| Scope::parse(s).is_none()) {
            found.add(
                "api.keys",
                format!("key `{}`: unknown scope `{scope}`", key.name),
            );
        }
    }
}

fn policy(s: &Settings, found: &mut Found) {
    let policy = &s.policy;
    found.require(
        !policy.version.trim().is_empty(),
        "policy.version",
        "must not be empty",
    );
    let mut memory_errors = Vec::new();
    crate::policy::memory::parse(
        &policy.lists,
        &policy.velocity,
        policy.linked_fraud.as_ref(),
        policy.shared_indications.as_ref(),
        &mut memory_errors,
    );
    for error in memory_errors {
        found.add(format!("policy.{}", error.field), error.message);
    }
    found.require(
        policy.score_reject_max < policy.score_approve_min,
        "policy.score_reject_max",
        "must be below policy.score_approve_min",
    );
    found.require(
        policy.default_wait <= Duration::from_secs(60),
        "policy.default_wait",
        "must be at most 60s",
    );
    found.above_zero("policy.biometrics_deadline", policy.biometrics_deadline);
    found.above_zero("policy.device_deadline", policy.device_deadline);
}

#[cfg(test)]
mod tests {
    use crate::config::ConfigError;
    use crate::config::fixtures::{load, production_file};

    #[test]
    fn a_start_with_three_mistakes_reports_all_three() {
        let file = production_file(None);
        let error = load(
            &[
                ("VEREDITO__SERVER__ADDR", "localhost"),
                ("VEREDITO__UNICO__WEBHOOK_SECRET", "short"),
                ("VEREDITO__POLICY__SCORE_REJECT_MAX", "80"),
            ],
            Some(file.0.clone()),
        )
        .unwrap_err();
        let text = error.to_string();
        let ConfigError::Invalid(mistakes) = error else {
            panic!("not a mistake in the values: {text}");
        };
        let keys: Vec<&str> = mistakes.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.addr",
                "unico.webhook_secret",
                "policy.score_reject_max"
            ],
            "{text}"
        );
        assert!(text.starts_with("3 configuration mistakes:"), "{text}");
        for line in [
            "configuration key `server.addr`: must be an address such as 127.0.0.1:8080",
            "configuration key `unico.webhook_secret`: must be at least 8 characters",
            "configuration key `policy.score_reject_max`: must be below policy.score_approve_min",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        // Each mistake on its own is reported alone, as one line.
        let one = load(
            &[("VEREDITO__SERVER__ADDR", "localhost")],
            Some(file.0.clone()),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            one,
            "configuration key `server.addr`: must be an address such as 127.0.0.1:8080"
        );
    }

    #[test]
    fn a_sharing_system_needs_the_institutions_valid_cnpj() {
        let secret = (
            "VEREDITO__FRAUD_SHARING__SECRET",
            "whsec_cHJvZC1zaGFyaW5nLXNlY3JldC0xMjM=",
        );
        let url = (
            "VEREDITO__FRAUD_SHARING__URL",
            "https://sharing.example/indications",
        );
        let file = production_file(None);
        let error = |env: &[(&str, &str)]| {
            load(env, Some(file.0.clone()))
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string())
        };
        for (case, env, expected) in [
            ("no CNPJ", vec![url, secret], "institution.cnpj"),
            (
                "wrong check digits",
                vec![
                    url,
                    secret,
                    ("VEREDITO__INSTITUTION__CNPJ", "11.222.333/0001-82"),
                ],
                "institution.cnpj",
            ),
            (
                "no secret",
                vec![url, ("VEREDITO__INSTITUTION__CNPJ", "11.222.333/0001-81")],
                "fraud_sharing.secret",
            ),
            (
                "the sandbox's secret",
                vec![
                    url,
                    ("VEREDITO__INSTITUTION__CNPJ", "11.222.333/0001-81"),
                    (
                        "VEREDITO__FRAUD_SHARING__SECRET",
                        "whsec_dmVyZWRpdG8tc2FuZGJveC1mcmF1ZC1zaGFyaW5nISE=",
                    ),
                ],
                "fraud_sharing.secret",
            ),
            (
                "all set",
                vec![
                    url,
                    secret,
                    ("VEREDITO__INSTITUTION__CNPJ", "11.222.333/0001-81"),
                ],
                "",
            ),
            ("no sharing system, no CNPJ", vec![], ""),
        ] {
            let got = error(&env);
            if expected.is_empty() {
                assert_eq!(got, "", "{case}");
            } else {
                assert!(got.contains(expected), "{case}: {got}");
            }
        }
    }
}
