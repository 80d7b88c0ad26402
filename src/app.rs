//! Builds the state and the router, starts the workers, and serves until shutdown.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::crypto::PiiCipher;
use crate::http::auth::ApiKeys;
use crate::http::state::AppState;
use crate::onboarding::services::{CallbackTarget, Services, Wakeups};
use crate::policy::{Policy, Thresholds};
use crate::providers::qitech::{QitechClient, QitechConfig};
use crate::providers::unico::{UnicoClient, UnicoConfig};
use crate::providers::zro::{ZroClient, ZroConfig};
use crate::providers::{CallRecord, SharedSink};
use crate::{jobs, sandbox, store};

pub fn policy_from(settings: &Settings) -> Policy {
    let p = &settings.policy;
    // Validated with the rest of the configuration, which names a wrong field.
    let memory = crate::policy::memory::parse(
        &p.lists,
        &p.velocity,
        p.linked_fraud.as_ref(),
        p.shared_indications.as_ref(),
        &mut Vec::new(),
    );
    Policy {
        memory,
        fraud_indications: Default::default(),
        outcomes: crate::policy::Outcomes::default(),
        version: p.version.clone(),
        thresholds: Thresholds {
            score_reject_max: p.score_reject_max,
            score_approve_min: p.score_approve_min,
            biometrics_deadline_secs: p.biometrics_deadline.as_secs(),
            device_deadline_secs: p.device_deadline.as_secs(),
        },
    }
}

/// Prepares the database as configured: create it if missing, apply migrations.
pub async fn prepare_database(settings: &Settings, migrate: bool) -> anyhow::Result<PgPool> {
    if settings.database.create_if_missing {
        store::create_database_if_missing(&settings.database.url)
            .await
            .context("creating the database")?;
    }
    let pool = store::connect(
        &settings.database.url,
        settings.database.max_connections,
        settings.database.acquire_timeout,
    )
    .await
    .context("connecting to the database")?;
    if migrate {
        store::migrate(&pool).await.context("applying migrations")?;
    }
    Ok(pool)
}

/// `serve` should connect as a member of `veredito_app`, whose privileges keep the records
/// append-only; a superuser or the tables' owner passes every privilege (docs/audit.md).
async fn warn_about_privileges(db: &PgPool) {
    let roles: Result<(bool, bool), sqlx::Error> = sqlx::query!(
        r#"SELECT r.rolsuper AS "superuser!",
                  EXISTS (SELECT 1 FROM pg_tables
                           WHERE tablename = 'decisions' AND tableowner = current_user) AS "owner!"
             FROM pg_roles r WHERE r.rolname = current_user"#,
    )
    .fetch_one(db)
    .await
    .map(|row| (row.superuser, row.owner));
    match roles {
        Ok((true, _)) => tracing::warn!(
            "serve is connected as a superuser: the records' privileges do not bind it; \
             connect as a member of veredito_app (docs/audit.md)"
        ),
        Ok((false, true)) => tracing::warn!(
            "serve is connected as the owner of the tables: the records' privileges do not bind \
             it; connect as a member of veredito_app (docs/audit.md)"
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "could not read the connection's privileges"),
    }
}

/// A bound, ready-to-run service.
pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    calls: mpsc::Receiver<CallRecord>,
    sandbox: Option<sandbox::SandboxConfig>,
    device_sandbox: Option<sandbox::DeviceSandboxConfig>,
    fraud_sandbox: Option<sandbox::FraudSharingConfig>,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let db = prepare_database(&settings, settings.database.migrate_on_start).await?;
        warn_about_privileges(&db).await;
        let listener = listen(&settings.server.addr)
            .await
            .with_context(|| format!("binding {}", settings.server.addr))?;
        let addr = listener.local_addr()?;
        let cipher = PiiCipher::from_settings(&settings.pii)?;
        let (sink, calls) = store::calls::channel();
        let sink: SharedSink = Arc::new(sink);

        let mut unico_config = UnicoConfig {
            base_url: settings.unico.base_url.clone(),
            identity_url: settings.unico.identity_url.clone(),
            api_key: settings.unico.api_key.clone(),
            service_account: settings.unico.service_account.clone(),
            private_key_pem: settings.unico_private_key()?,
            timeout: settings.unico.timeout,
        };
        let mut qitech_config = QitechConfig {
            base_url: settings.qitech.base_url.clone(),
            api_key: settings.qitech.api_key.clone(),
            timeout: settings.qitech.timeout,
        };
        let mut zro_config = ZroConfig {
            base_url: settings.zro.base_url.clone(),
            api_id: settings.zro.api_id.clone(),
            api_key: settings.zro.api_key.clone(),
            timeout: settings.zro.timeout,
        };
        let mut sandbox_config = None;
        let mut device_sandbox = None;
        // The same client code talks to the simulated providers; only the hosts change.
        let base = format!("http://{addr}");
        let faults = sandbox::faults::Faults {
            rate: settings.sandbox.fault_rate,
            stall: settings.sandbox.fault_stall,
        };
        if settings.sandbox.enabled && settings.sandbox.unico_provider {
            unico_config.base_url = format!("{base}/sandbox/unico");
            unico_config.identity_url = format!("{base}/sandbox/unico-identity");
            sandbox_config = Some(sandbox::SandboxConfig {
                service_account: settings.unico.service_account.clone(),
                identity_audience: unico_config.identity_url.clone(),
                public_key_pem: std::fs::read_to_string(&settings.sandbox.unico_public_key_path)
                    .with_context(|| {
                        format!(
                            "configuration key `sandbox.unico_public_key_path`: cannot read {}",
                            settings.sandbox.unico_public_key_path.display()
                        )
                    })?,
                api_key: settings.unico.api_key.expose_secret().to_owned(),
                webhook_url: settings
                    .sandbox
                    .webhook_url
                    .clone()
                    .unwrap_or_else(|| format!("{base}/v1/webhooks/unico")),
                webhook_header: settings.unico.webhook_header.clone(),
                webhook_secret: settings.unico.webhook_secret.expose_secret().to_owned(),
                processing_delay: settings.sandbox.processing_delay,
                webhook_delay: settings.sandbox.webhook_delay,
                faults,
                unlisted: sandbox::by_number(settings.sandbox.unlisted_cpf_scenario).with_context(
                    || {
                        format!(
                            "configuration key `sandbox.unlisted_cpf_scenario`: the sandbox has no \
                             scenario {} (1 to {})",
                            settings.sandbox.unlisted_cpf_scenario,
                            sandbox::SCENARIOS.len()
                        )
                    },
                )?,
            });
        }
        if settings.sandbox.enabled {
            if settings.sandbox.device_providers {
                qitech_config.base_url = format!("{base}/sandbox/qitech");
                zro_config.base_url = format!("{base}/sandbox/zro");
                device_sandbox = Some(sandbox::DeviceSandboxConfig {
                    qitech_api_key: settings.qitech.api_key.expose_secret().to_owned(),
                    zro_api_id: settings.zro.api_id.clone(),
                    zro_api_key: settings.zro.api_key.expose_secret().to_owned(),
                    pending_delay: settings.sandbox.qitech_pending_delay,
                    faults,
                });
            }
            tracing::info!(%addr, "sandbox enabled: providers are simulated by this process");
        }
        let unico = UnicoClient::new(unico_config, sink.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .paced(settings.unico.requests_per_second);
        let qitech =
            QitechClient::new(qitech_config, sink.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let zro = ZroClient::new(zro_config, sink.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;

        let api_keys = Arc::new(ApiKeys::from_settings(&settings.api));
        // The provider is asked nothing at start: a console sign-in finds it down, not the
        // service's start.
        let oidc = match &settings.console.oidc {
            Some(oidc) => Some(Arc::new(
                crate::http::oidc::Oidc::new(oidc.clone())
                    .map_err(|e| anyhow::anyhow!("console.oidc: {e}"))?,
            )),
            None => None,
        };
        let callbacks = match (&settings.callbacks.url, settings.callbacks.signing_key()?) {
            (Some(url), Some(key)) => Some(CallbackTarget {
                url: url.clone(),
                key,
                client: crate::providers::http::client(settings.callbacks.timeout)
                    .map_err(|e| anyhow::anyhow!("callbacks: {e}"))?,
            }),
            _ => None,
        };
        // The sharing system: the configured one, or with the sandbox on, its simulation.
        let sharing_url = settings.fraud_sharing.url.clone().or_else(|| {
            (settings.sandbox.enabled && settings.sandbox.fraud_sharing)
                .then(|| format!("{base}{}", sandbox::FRAUD_SHARING_EVENTS))
        });
        let sharing_key = settings.fraud_sharing.signing_key()?;
        let fraud_sharing = match (sharing_url, sharing_key) {
            (Some(url), Some(key)) => Some(CallbackTarget {
                url,
                key,
                client: crate::providers::http::client(settings.callbacks.timeout)
                    .map_err(|e| anyhow::anyhow!("fraud_sharing: {e}"))?,
            }),
            _ => None,
        };
        let fraud_sandbox = (settings.sandbox.enabled
            && settings.sandbox.fraud_sharing
            && settings.fraud_sharing.url.is_none())
        .then(|| {
            fraud_sharing
                .as_ref()
                .map(|target| sandbox::FraudSharingConfig {
                    key: target.key.clone(),
                    faults,
                })
        })
        .flatten();
        let reads = match &settings.database.read_url {
            Some(url) => store::connect_reads(
                url,
                settings.database.max_connections,
                settings.database.acquire_timeout,
            )
            .context("the read replica's URL (database.read_url)")?,
            None => db.clone(),
        };
        let flow = Arc::new(Services {
            policies: crate::onboarding::services::Policies::new(policy_from(&settings)),
            db,
            reads,
            unico,
            qitech,
            zro,
            cipher,
            wake: Wakeups::default(),
            inline: TaskTracker::new(),
            inline_permits: Arc::new(tokio::sync::Semaphore::new(jobs::runner::FLOW_CONCURRENCY)),
            replays: Arc::new(tokio::sync::Semaphore::new(settings.api.max_replays)),
            callbacks,
            fraud_sharing,
            leases: Arc::default(),
            settings,
        });
        crate::onboarding::policies::seed_and_load(&flow, &policy_from(&flow.settings))
            .await
            .context("loading the policy versions")?;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(
            flow.settings.server.max_in_flight,
        ));
        let admission = Arc::new(tokio::sync::Semaphore::new(
            2 * flow.settings.database.max_connections as usize,
        ));
        let forged_webhooks = Arc::new(governor::RateLimiter::direct(
            governor::Quota::per_second(
                NonZeroU32::new(flow.settings.unico.forged_webhooks_per_second)
                    .unwrap_or(NonZeroU32::MIN),
            )
            .allow_burst(
                NonZeroU32::new(flow.settings.unico.forged_webhooks_burst)
                    .unwrap_or(NonZeroU32::MIN),
            ),
        ));
        let state = AppState {
            flow,
            api_keys,
            stopping: CancellationToken::new(),
            in_flight,
            admission,
            forged_webhooks,
            oidc,
        };
        Ok(App {
            listener,
            addr,
            state,
            calls,
            sandbox: sandbox_config,
            device_sandbox,
            fraud_sandbox,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The flow's services, as the running service holds them.
    pub fn state(&self) -> crate::onboarding::services::Flow {
        self.state.flow.clone()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish (up to the
    /// configured grace) and stops the workers.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            listener,
            addr,
            state,
            calls,
            sandbox,
            device_sandbox,
            fraud_sandbox,
        } = self;
        let flow = state.flow.clone();
        let workers = TaskTracker::new();
        let stop_workers = CancellationToken::new();
        // Each worker is supervised: one that panics is counted and started again.
        let pause = Duration::from_secs(1);
        let stop = stop_workers.clone();
        // The fallback writer of provider calls made outside a step: a channel drain.
        workers.spawn(store::calls::run_writer(
            flow.db.clone(),
            PiiCipher::from_settings(&flow.settings.pii)?,
            calls,
            stop.clone(),
        ));
        // The claims of running steps are renewed until those steps have ended, so it stops on
        // a token of its own, after them.
        let stop_leases = CancellationToken::new();
        let leases = tokio::spawn(jobs::supervise("leases", stop_leases.clone(), pause, {
            let (flow, stop) = (flow.clone(), stop_leases.clone());
            move || jobs::leases::run(flow.clone(), stop.clone())
        }));
        workers.spawn(jobs::supervise("listener", stop.clone(), pause, {
            let (flow, stop) = (flow.clone(), stop.clone());
            move || jobs::listener::run(flow.clone(), stop.clone())
        }));
        // The step runner; an API-only replica (jobs.enabled = false) runs only the steps it
        // queues itself and leaves the rest to the others.
        if flow.settings.jobs.enabled {
            for (name, lane, concurrency) in [
                (
                    "flow_runner",
                    store::steps::Lane::Flow,
                    jobs::runner::FLOW_CONCURRENCY,
                ),
                (
                    "callback_runner",
                    store::steps::Lane::Callbacks,
                    jobs::runner::CALLBACK_CONCURRENCY,
                ),
            ] {
                workers.spawn(jobs::supervise(name, stop.clone(), pause, {
                    let (flow, stop) = (flow.clone(), stop.clone());
                    move || jobs::runner::run(flow.clone(), lane, concurrency, stop.clone())
                }));
            }
            workers.spawn(jobs::supervise("link_backfill", stop.clone(), pause, {
                let (flow, stop) = (flow.clone(), stop.clone());
                move || jobs::links::run(flow.clone(), stop.clone())
            }));
            workers.spawn(jobs::supervise("retention", stop.clone(), pause, {
                let (flow, stop) = (flow.clone(), stop.clone());
                move || jobs::retention::run(flow.clone(), jobs::retention::EVERY, stop.clone())
            }));
        }
        workers.close();

        let mut router = crate::http::router(state.clone());
        if let Some(config) = sandbox {
            router = router.merge(sandbox::router(config));
        }
        if let Some(config) = fraud_sandbox {
            router = router.merge(sandbox::fraud_sharing_router(config));
        }
        if let Some(config) = device_sandbox {
            router = router.merge(sandbox::device_router(config));
        }
        tracing::info!(%addr, "veredito listening");
        let grace = flow.settings.server.shutdown_grace;
        let stopping = shutdown.clone();
        let waiting = state.stopping.clone();
        let limits = crate::http::server::Limits {
            max_connections: flow.settings.server.max_connections,
            header_timeout: flow.settings.server.header_timeout,
            idle_timeout: flow.settings.server.idle_timeout,
        };
        let server = crate::http::server::serve(listener, router, limits, async move {
            stopping.cancelled().await;
            // Requests waiting for a verdict answer 202 with Location now; the steps behind
            // them go on (here, until the grace ends, or on the next start or another replica).
            waiting.cancel();
        });
        let mut serve = tokio::spawn(server);
        tokio::select! {
            result = &mut serve => result?,
            _ = shutdown.cancelled() => {
                match tokio::time::timeout(grace, &mut serve).await {
                    Ok(result) => result?,
                    Err(_) => {
                        tracing::warn!("requests still in flight after the shutdown grace; stopping anyway");
                        serve.abort();
                    }
                }
            }
        }
        stop_workers.cancel();
        // Steps in flight get the grace to store what their provider answered; one cut off
        // keeps its claim until the lease ends, then runs again on the next start or elsewhere.
        flow.inline.close();
        if tokio::time::timeout(grace, flow.inline.wait())
            .await
            .is_err()
        {
            tracing::warn!("steps still running after the shutdown grace; they run again later");
        }
        stop_leases.cancel();
        let _ = leases.await;
        if tokio::time::timeout(grace, workers.wait()).await.is_err() {
            tracing::warn!("workers did not stop within the shutdown grace");
        }
        flow.db.close().await;
        flow.reads.close().await;
        tracing::info!("veredito stopped");
        Ok(())
    }
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// Binds `addr` with an accept queue of 4,096 connections (the kernel caps it at
/// `net.core.somaxconn`): a burst of callers connecting at once waits there for the accept loop
/// instead of being refused at 1,024, tokio's default.
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    const BACKLOG: u32 = 4096;
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}
