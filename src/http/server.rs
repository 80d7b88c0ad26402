//! The accept loop: HTTP/1.1 and HTTP/2 (h2c) over hyper with a header read timeout, a cap on
//! open connections (past it a connection gets a 503 with Retry-After and is closed) and a
//! graceful shutdown that lets requests in progress finish. axum's own `serve` has neither the
//! timeout nor the cap.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Requests at once on one HTTP/2 connection; past it a client waits for one of its streams to
/// end or opens another connection (connections count against `server.max_connections`,
/// requests against `server.max_in_flight`).
const MAX_STREAMS: u32 = 1000;

/// What one replica accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the connections in
/// progress (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    // HTTP/1.1, or HTTP/2 when the connection opens with its preface (h2c prior knowledge).
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Reads go through one 8 KiB buffer (hyper's smallest): a waiting request's connection
        // then holds 8 KiB, not the 16–32 KiB the adaptive buffer grows to. Headers are
        // limited to that much; a body of any allowed size is read in 8 KiB pieces.
        .max_buf_size(8 * 1024)
        .keep_alive(true);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let service =
        router.map_request(|request: axum::http::Request<Incoming>| request.map(Body::new));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, most often: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            crate::metrics::rejected("overloaded");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service.clone()),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The answer to a connection past the cap, written without reading the request.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"type":"/problems/unavailable","title":"Service unavailable","status":503,"detail":"too many open connections; retry after the time in Retry-After"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
