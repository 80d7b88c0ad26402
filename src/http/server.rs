//! The accept loop: HTTP/1.1 and HTTP/2 (h2c) over hyper, with a cap on open connections, a
//! header read timeout, deadlines for idle connections and a graceful shutdown that lets requests
//! in progress finish. axum's own `serve` has none of these.
//!
//! A connection is *idle* while no request of it is in progress (a response body still being
//! sent counts as in progress; an HTTP/2 PING does not). An idle connection is closed:
//! - before its first request, `server.header_timeout` after it was accepted: a client that
//!   connects and sends nothing, stops in the middle of the protocol preface, or completes the
//!   HTTP/2 handshake and sends no request;
//! - after a request, `server.idle_timeout` after its last request ended;
//! - at once, oldest first, when a new connection finds every slot taken: idle connections give
//!   their slots back under pressure, so silent clients cannot keep anyone else out.
//!
//! When every slot is held by a connection with a request in progress, a few connections beyond
//! the cap (`RESERVE`) still answer health and metrics, so an orchestrator never kills a busy but
//! healthy replica; any other request on them is answered 503. Past those, a connection gets a
//! 503 with Retry-After and is closed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Requests at once on one HTTP/2 connection; past it a client waits for one of its streams to
/// end or opens another connection (connections count against `server.max_connections`,
/// requests against `server.max_in_flight`).
const MAX_STREAMS: u32 = 1000;

/// Connections beyond the cap that answer health and metrics only.
pub const RESERVE: usize = 8;

/// How long a new connection that found every slot taken waits for an idle one to give its
/// slot back.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

/// How often a connection waiting for a slot asks another idle connection to give one back.
const EVICTION_RETRY: Duration = Duration::from_millis(50);

/// How long a connection asked to close (idle, or at shutdown for the idle ones) gets to say
/// goodbye (HTTP/2 GOAWAY) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How often the idle deadlines are looked at.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// What one replica accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Before its first request a connection is closed after this long; once bytes of a request
    /// arrive, its headers must be complete within it too.
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
}

/// One open connection as the deadlines see it.
struct Tracked {
    /// Requests in progress (until their response body is sent).
    in_flight: AtomicUsize,
    /// Requests started so far.
    served: AtomicU64,
    /// When the connection last became idle, in milliseconds since `Connections::epoch`.
    idle_since_ms: AtomicU64,
    /// Cancelled to ask the connection to close.
    close: CancellationToken,
    /// Set with `close` when the slot is needed now: the connection is dropped without a
    /// goodbye (it has no request in progress; an HTTP/2 client opens another connection).
    abrupt: std::sync::atomic::AtomicBool,
}

impl Tracked {
    fn idle_since(&self, epoch: Instant) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(epoch + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire)))
    }
}

/// The open connections, by a number of their own.
struct Connections {
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    limits: Limits,
}

impl Connections {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn add(&self) -> (u64, Arc<Tracked>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            close: CancellationToken::new(),
            abrupt: std::sync::atomic::AtomicBool::new(false),
        });
        let mut open = self.lock();
        open.insert(id, tracked.clone());
        crate::metrics::connections_open(open.len());
        (id, tracked)
    }

    fn remove(&self, id: u64) {
        let mut open = self.lock();
        open.remove(&id);
        crate::metrics::connections_open(open.len());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the connections idle past their deadline to close.
    fn sweep(&self, now: Instant) {
        for tracked in self.lock().values() {
            let Some(since) = tracked.idle_since(self.epoch) else {
                continue;
            };
            let deadline = if tracked.served.load(Ordering::Acquire) == 0 {
                self.limits.header_timeout
            } else {
                self.limits.idle_timeout
            };
            if now.saturating_duration_since(since) >= deadline && !tracked.close.is_cancelled() {
                crate::metrics::connection_closed("idle");
                tracked.close.cancel();
            }
        }
    }

    /// Closes up to `count` idle connections at once: those that never made a request first,
    /// then the longest idle; answers how many.
    fn evict(&self, count: usize) -> usize {
        let open = self.lock();
        let mut idle: Vec<(bool, Instant, &Arc<Tracked>)> = open
            .values()
            .filter(|t| !t.close.is_cancelled())
            .filter_map(|t| {
                let served = t.served.load(Ordering::Acquire) > 0;
                t.idle_since(self.epoch).map(|since| (served, since, t))
            })
            .collect();
        idle.sort_by_key(|(served, since, _)| (*served, *since));
        let mut evicted = 0;
        for (_, _, tracked) in idle.into_iter().take(count) {
            tracked.abrupt.store(true, Ordering::Release);
            tracked.close.cancel();
            evicted += 1;
        }
        if evicted > 0 {
            crate::metrics::connection_closed_n("evicted", evicted as u64);
        }
        evicted
    }
}

/// Counts a request in progress on its connection until dropped (with the response body).
struct InFlight {
    tracked: Arc<Tracked>,
    connections: Arc<Connections>,
}

impl InFlight {
    fn start(tracked: &Arc<Tracked>, connections: &Arc<Connections>) -> InFlight {
        tracked.served.fetch_add(1, Ordering::AcqRel);
        tracked.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            tracked: tracked.clone(),
            connections: connections.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.tracked
            .idle_since_ms
            .store(self.connections.now_ms(), Ordering::Release);
        self.tracked.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Which slot a connection holds.
enum Slot {
    Regular(#[allow(dead_code)] OwnedSemaphorePermit),
    /// Beyond the cap: health and metrics only.
    Reserve(#[allow(dead_code)] OwnedSemaphorePermit),
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
        // A peer that stops answering PINGs is gone; one that answers them is still idle.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Reads go through one 8 KiB buffer (hyper's smallest): a waiting request's connection
        // then holds 8 KiB, not the 16–32 KiB the adaptive buffer grows to. Headers are
        // limited to that much; a body of any allowed size is read in 8 KiB pieces.
        .max_buf_size(8 * 1024)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    // New connections waiting for an evicted one's slot, at most as many as there are slots.
    let waiting = Arc::new(Semaphore::new(limits.max_connections));
    let connections = Arc::new(Connections {
        epoch: Instant::now(),
        next: AtomicU64::new(0),
        open: Mutex::new(HashMap::new()),
        limits,
    });
    let stopping = CancellationToken::new();
    let tasks = TaskTracker::new();
    let service =
        router.map_request(|request: axum::http::Request<Incoming>| request.map(Body::new));

    let sweeper = tokio::spawn({
        let connections = connections.clone();
        let stopping = stopping.clone();
        async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => connections.sweep(Instant::now()),
                    () = stopping.cancelled() => return,
                }
            }
        }
    });

    let mut shutdown = pin!(shutdown);
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
        let _ = stream.set_nodelay(true);
        let serving = Serving {
            builder: builder.clone(),
            service: service.clone(),
            connections: connections.clone(),
            stopping: stopping.clone(),
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            // Registered here, before its task runs, so that it can be evicted at once.
            let tracked = connections.add();
            tasks.spawn(serving.run(stream, Slot::Regular(permit), tracked));
            continue;
        }
        // Every slot is taken: idle connections give theirs back; meanwhile this one waits a
        // moment, then takes a freed slot, a reserved one, or is refused.
        let Ok(waits) = waiting.clone().try_acquire_owned() else {
            crate::metrics::rejected("overloaded");
            tasks.spawn(refuse(stream));
            continue;
        };
        connections.evict(1);
        let (slots, reserve, connections) = (slots.clone(), reserve.clone(), connections.clone());
        tasks.spawn(async move {
            let waited = tokio::time::timeout(EVICTION_WAIT, async {
                loop {
                    tokio::select! {
                        permit = slots.clone().acquire_owned() => return permit,
                        // The connection evicted for this one may have been taken by another.
                        () = tokio::time::sleep(EVICTION_RETRY) => { connections.evict(1); }
                    }
                }
            })
            .await;
            drop(waits);
            match waited {
                Ok(Ok(permit)) => {
                    let tracked = connections.add();
                    serving.run(stream, Slot::Regular(permit), tracked).await
                }
                _ => match reserve.try_acquire_owned() {
                    Ok(permit) => {
                        let tracked = connections.add();
                        serving.run(stream, Slot::Reserve(permit), tracked).await
                    }
                    Err(_) => {
                        crate::metrics::rejected("overloaded");
                        refuse(stream).await
                    }
                },
            }
        });
    }
    drop(listener);
    // Connections in progress finish their requests; idle ones close now.
    stopping.cancel();
    sweeper.abort();
    tasks.close();
    tasks.wait().await;
}

/// What a connection's task needs.
struct Serving<S> {
    builder: Arc<Builder<TokioExecutor>>,
    service: S,
    connections: Arc<Connections>,
    stopping: CancellationToken,
}

impl<S> Serving<S>
where
    S: tower::Service<
            Request<Incoming>,
            Response = Response<Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    async fn run(self, stream: TcpStream, slot: Slot, (id, tracked): (u64, Arc<Tracked>)) {
        let reserve_only = matches!(slot, Slot::Reserve(_));
        let service = {
            let (tracked, connections) = (tracked.clone(), self.connections.clone());
            let inner = self.service.clone();
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let in_flight = InFlight::start(&tracked, &connections);
                let inner = inner.clone();
                async move {
                    let path = request.uri().path();
                    if reserve_only && !(path.starts_with("/health/") || path == "/metrics") {
                        return Ok::<_, std::convert::Infallible>(overloaded());
                    }
                    let response = inner.oneshot(request).await?;
                    // The request is in progress until its body is sent.
                    Ok(response.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            let _ = &in_flight;
                            frame
                        }))
                    }))
                }
            })
        };
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service);
        let mut connection = pin!(connection);
        let asked = tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                None
            }
            () = tracked.close.cancelled() => Some(false),
            () = self.stopping.cancelled() => Some(true),
        };
        let abrupt = tracked.abrupt.load(Ordering::Acquire)
            && tracked.in_flight.load(Ordering::Acquire) == 0;
        if let (Some(shutting_down), false) = (asked, abrupt) {
            connection.as_mut().graceful_shutdown();
            if shutting_down {
                // Requests in progress finish (the caller bounds the wait).
                let _ = connection.as_mut().await;
            } else if tokio::time::timeout(CLOSE_GRACE, connection.as_mut())
                .await
                .is_err()
                && tracked.in_flight.load(Ordering::Acquire) > 0
            {
                // A request arrived as the connection was asked to close: let it finish.
                let _ = connection.as_mut().await;
            }
        }
        self.connections.remove(id);
        drop(slot);
    }
}

fn overloaded() -> Response<Body> {
    const BODY: &str = r#"{"type":"/problems/unavailable","title":"Service unavailable","status":503,"detail":"too many open connections; retry after the time in Retry-After"}"#;
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(header::CONTENT_TYPE, "application/problem+json")
        .header(header::RETRY_AFTER, "1")
        .header(header::CONNECTION, "close")
        .body(Body::from(BODY))
        .unwrap_or_default()
}

/// The answer to a connection past the cap and the reserve, written without reading the
/// request.
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
