//! The HTTP plumbing the unico, QI Tech and Zro clients share: a client that follows no
//! redirects, one send that reads the answer up to a cap, turns transport failures into the
//! client's error type, and reports the call for the audit: in clear only the fields the client
//! parses and the failure's code; the provider's own words apart, to be sealed.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use reqwest::RequestBuilder;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::providers::{CallContext, CallRecord, ProviderText, SharedSink};

/// The most of an answer veredito reads: provider answers are a few kilobytes; anything larger
/// is refused before it can take the service's memory.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// A client for one provider. No redirects: reqwest would carry credential headers (APIKEY,
/// Authorization) to wherever a redirect points, and no provider documents one.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    if timeout.is_zero() {
        return Err("the timeout must be above zero".into());
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("veredito/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("could not build the HTTP client: {e}"))
}

/// What a provider answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON; None when it is not JSON.
    pub body: Option<Value>,
}

/// A call that got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    /// Connection refused, reset, DNS, TLS: the cause chain, without the URL.
    Transport(String),
    /// The answer was larger than `MAX_ANSWER_BYTES`.
    TooLarge,
}

/// A client's error type, as the shared send needs it.
pub trait ProviderError: std::fmt::Display {
    fn from_failure(failure: Failure) -> Self;
    /// The failure as a label safe to store, log and show: its kind and the provider's code or
    /// status, never the provider's text.
    fn code(&self) -> String;
}

/// What the call record says about a request; the body is already redacted.
pub struct Exchange {
    pub provider: &'static str,
    pub operation: &'static str,
    pub method: &'static str,
    pub path: String,
    pub request: Option<Value>,
    pub context: CallContext,
}

/// A provider's client and where its calls are reported.
#[derive(Clone)]
pub struct ProviderHttp {
    pub client: reqwest::Client,
    sink: SharedSink,
    /// Turns an answer's body into what the sealed copy keeps (the client's redaction of
    /// credentials and the personal data it knows by name).
    redact: fn(Value) -> Value,
    /// The fields of an answer the client parses: all the call record keeps in clear.
    parsed: &'static [&'static str],
    /// When set, calls wait for their turn at this pace (a provider's documented rate).
    pace: Option<Arc<crate::providers::pace::Pace>>,
}

impl ProviderHttp {
    pub fn new(
        client: reqwest::Client,
        sink: SharedSink,
        redact: fn(Value) -> Value,
        parsed: &'static [&'static str],
    ) -> Self {
        ProviderHttp {
            client,
            sink,
            redact,
            parsed,
            pace: None,
        }
    }

    /// At most `per_second` calls a second through this client and its clones, evenly spaced
    /// (a burst of a tenth of a second's worth may go at once); the `new_work` operations wait
    /// behind the others (`pace`).
    pub fn paced(mut self, per_second: u32, new_work: &'static [&'static str]) -> Self {
        self.pace = Some(Arc::new(crate::providers::pace::Pace::new(
            per_second, new_work,
        )));
        self
    }

    /// Sends the request, reads the answer (under the client's timeout and the size cap),
    /// reports the call and hands the answer to `outcome`.
    pub async fn send<T, E: ProviderError>(
        &self,
        request: RequestBuilder,
        exchange: Exchange,
        outcome: impl FnOnce(&Answer) -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(pace) = &self.pace {
            pace.wait(pace.priority(exchange.operation)).await;
        }
        let started = Instant::now();
        // A client span after OpenTelemetry's HTTP conventions; its traceparent goes along.
        let span = tracing::info_span!(
            "provider",
            otel.name = %format_args!("{} {}.{}", exchange.method, exchange.provider, exchange.operation),
            otel.kind = "client",
            http.request.method = exchange.method,
            server.address = tracing::field::Empty,
            url.path = %exchange.path,
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            peer.service = exchange.provider,
        );
        let answered = async {
            let mut request = request.build().map_err(failure)?;
            if let Some(host) = request.url().host_str() {
                tracing::Span::current().record("server.address", host);
            }
            crate::telemetry::inject(&tracing::Span::current(), request.headers_mut());
            let response = self.client.execute(request).await.map_err(failure)?;
            tracing::Span::current().record(
                "http.response.status_code",
                i64::from(response.status().as_u16()),
            );
            read(response).await
        }
        .instrument(span.clone())
        .await;
        let latency_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        if let Some(class) = error_class(&answered) {
            crate::metrics::provider_error(exchange.provider, exchange.operation, class);
            span.record("otel.status_code", "ERROR");
        }
        let (http_status, body, result) = match answered {
            Ok(answer) => {
                let result = outcome(&answer);
                (Some(answer.status), answer.body, result)
            }
            Err(failure) => (None, None, Err(E::from_failure(failure))),
        };
        // A provider's words can name the person (a 422 whose title quotes the name it was
        // sent): in clear only what was parsed and the code; the words go apart, to be sealed.
        let response = body
            .as_ref()
            .map(|b| crate::providers::keep_parsed(b, self.parsed));
        let failed = result.as_ref().err();
        let error = failed.map(ProviderError::code);
        let mut said = serde_json::Map::new();
        if let Some(body) = body {
            said.insert("body".into(), (self.redact)(body));
        }
        if let Some(e) = failed {
            said.insert("error".into(), Value::String(e.to_string()));
        }
        let said = (!said.is_empty()).then_some(ProviderText(Value::Object(said)));
        tracing::debug!(
            provider = exchange.provider,
            operation = exchange.operation,
            http_status,
            latency_ms,
            failed = error.is_some(),
            "provider call"
        );
        crate::providers::report(
            &*self.sink,
            CallRecord {
                context: exchange.context,
                provider: exchange.provider,
                operation: exchange.operation,
                method: exchange.method,
                path: exchange.path,
                http_status,
                latency_ms,
                request: exchange.request,
                response,
                error,
                said,
            },
        );
        result
    }
}

/// The class of a failed call, for the error counter: none when the provider answered below 400.
fn error_class(answered: &Result<Answer, Failure>) -> Option<&'static str> {
    match answered {
        Err(Failure::Timeout) => Some("timeout"),
        Err(Failure::Transport(_) | Failure::TooLarge) => Some("transport"),
        Ok(answer) => match answer.status {
            429 => Some("429"),
            400..=499 => Some("4xx"),
            500.. => Some("5xx"),
            _ => None,
        },
    }
}

async fn read(mut response: reqwest::Response) -> Result<Answer, Failure> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(Failure::TooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failure)? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Failure::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).ok(),
    })
}

fn failure(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    // reqwest's own message is generic ("error sending request"); the cause (refused, DNS,
    // TLS) is in the source chain. The URL is left out: the record already has the path.
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    Failure::Transport(text)
}

/// Replaces anything that looks like a CPF (11 digits, maybe with `.` and `-`) in free text.
/// Returns None when there is nothing to replace, which is the usual case.
pub fn scrub_document_numbers(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let mut digits = 0;
    let mut changed = false;
    let mut flush = |run: &mut String, digits: &mut usize, out: &mut String| {
        if *digits >= 11 {
            out.push_str("[redacted]");
            changed = true;
        } else {
            out.push_str(run);
        }
        run.clear();
        *digits = 0;
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            digits += 1;
        } else if (c == '.' || c == '-') && digits > 0 {
            run.push(c);
        } else {
            flush(&mut run, &mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut digits, &mut out);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_cpfs_and_phones_but_not_short_numbers() {
        assert_eq!(
            scrub_document_numbers("CPF 111.444.777-35 invalid").as_deref(),
            Some("CPF [redacted] invalid")
        );
        assert_eq!(
            scrub_document_numbers("phone 5511974749090").as_deref(),
            Some("phone [redacted]")
        );
        assert_eq!(scrub_document_numbers("status 3, score -40"), None);
    }

    #[derive(Debug)]
    struct Failed(Failure);

    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    impl ProviderError for Failed {
        fn from_failure(failure: Failure) -> Self {
            Failed(failure)
        }

        fn code(&self) -> String {
            "test.failed".into()
        }
    }

    /// A provider that answers `bytes` of JSON-looking text, streamed without a length.
    async fn provider(bytes: usize) -> String {
        let app = axum::Router::new().route(
            "/big",
            axum::routing::get(move || async move {
                let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
                let chunks = bytes.div_ceil(chunk.len());
                let stream = futures_util::stream::iter(
                    (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                axum::body::Body::from_stream(stream)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/big", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    async fn fetch(url: &str) -> Result<u16, Failed> {
        let http = ProviderHttp::new(
            client(Duration::from_secs(5)).unwrap(),
            Arc::new(crate::providers::DiscardCalls),
            |v| v,
            &[],
        );
        let exchange = Exchange {
            provider: "test",
            operation: "big",
            method: "GET",
            path: "/big".into(),
            request: None,
            context: CallContext::default(),
        };
        http.send(http.client.get(url), exchange, |answer: &Answer| {
            Ok::<_, Failed>(answer.status)
        })
        .await
    }

    #[tokio::test]
    async fn an_answer_past_the_cap_is_refused_without_being_read_whole() {
        let small = provider(64 * 1024).await;
        assert_eq!(fetch(&small).await.unwrap(), 200);
        let huge = provider(50 * 1024 * 1024).await;
        match fetch(&huge).await {
            Err(Failed(Failure::TooLarge)) => {}
            other => panic!("{other:?}"),
        }
    }
}
