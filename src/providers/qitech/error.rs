//! What a call to QI Tech can come to, as a typed error with a code safe to store and log.

use serde_json::Value;

use crate::providers::http::{Failure, ProviderError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QitechError {
    #[error("QI Tech refused the API key (HTTP {http_status})")]
    Unauthorized { http_status: u16 },
    #[error("QI Tech does not know this id")]
    NotFound,
    #[error("QI Tech refused the request (HTTP {http_status}): {detail}")]
    Refused { http_status: u16, detail: String },
    #[error("QI Tech rate limit reached")]
    RateLimited,
    #[error("QI Tech answered HTTP {http_status}")]
    Server { http_status: u16 },
    #[error("QI Tech did not answer within the timeout")]
    Timeout,
    #[error("could not reach QI Tech: {0}")]
    Transport(String),
    #[error("QI Tech's answer could not be read: {0}")]
    Decode(String),
    #[error("QI Tech client configuration: {0}")]
    Config(String),
}

impl QitechError {
    /// A later attempt may succeed: QI Tech's own failures, timeouts, the network, rate limits.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            QitechError::Server { .. }
                | QitechError::Timeout
                | QitechError::Transport(_)
                | QitechError::RateLimited
        )
    }

    /// A label safe to store and log: the kind of failure and the HTTP status, never QI Tech's
    /// text.
    pub fn code(&self) -> String {
        match self {
            QitechError::Unauthorized { http_status } => {
                format!("qitech.unauthorized.{http_status}")
            }
            QitechError::NotFound => "qitech.not_found".into(),
            QitechError::Refused { http_status, .. } => format!("qitech.refused.{http_status}"),
            QitechError::RateLimited => "qitech.rate_limited".into(),
            QitechError::Server { http_status } => format!("qitech.server.{http_status}"),
            QitechError::Timeout => "qitech.timeout".into(),
            QitechError::Transport(_) => "qitech.transport".into(),
            QitechError::Decode(_) => "qitech.decode".into(),
            QitechError::Config(_) => "qitech.config".into(),
        }
    }
}

impl ProviderError for QitechError {
    fn from_failure(failure: Failure) -> Self {
        match failure {
            Failure::Timeout => QitechError::Timeout,
            Failure::Transport(cause) => QitechError::Transport(cause),
            Failure::TooLarge => {
                QitechError::Decode("the answer is larger than veredito reads".into())
            }
        }
    }

    fn code(&self) -> String {
        QitechError::code(self)
    }
}

/// QI Tech error bodies vary and may gain fields: keep a short, PII-free hint.
pub(super) fn error_detail(answer: &Value) -> String {
    ["title", "description", "message", "code"]
        .iter()
        .find_map(|k| answer.get(*k).and_then(Value::as_str))
        .map(|s| s.chars().take(200).collect())
        .unwrap_or_else(|| "no detail".to_owned())
}
