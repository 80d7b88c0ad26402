use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use veredito::config::{Settings, Sources};

/// jemalloc instead of glibc's allocator: a decision allocates and frees many small buffers
/// (JSON, SQL rows, HTTP messages) across the runtime's threads, where glibc's malloc and free
/// took 13 % of the service's CPU, and 10,000 waiting requests held a third more memory
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// veredito: the onboarding decision service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (and, with sandbox.enabled, the simulated providers).
    Serve {
        /// A TOML file layered over config/default.toml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Create the database if configured to, apply migrations, and exit.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Re-encrypt stored personal data under `pii.active_key_id` (after adding a new key), then
    /// print how many rows each key still seals.
    RotateKeys {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Queue steps that ended `failed` (veredito_steps_failed) again, due now, with their
    /// failures forgotten: the ids given, or every failed step with --all. Prints the ids queued.
    RetrySteps {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Every failed step.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// The failed steps' ids (as the `step_failed` timeline entry and the steps table give).
        ids: Vec<i64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match &cli.command {
        Command::Serve { config }
        | Command::Migrate { config }
        | Command::RotateKeys { config }
        | Command::RetrySteps { config, .. } => config.clone(),
    };
    let settings = match Settings::load(&Sources {
        file,
        ..Sources::default()
    }) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("veredito: {e}");
            return ExitCode::from(2);
        }
    };
    // Before the runtime, and dropped after it: the trace exporter runs on its own thread.
    let _telemetry = match veredito::telemetry::init(&settings.telemetry) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("veredito: cannot start telemetry: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("veredito: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, settings));
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "veredito failed");
            eprintln!("veredito: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => {
            let app = veredito::app::App::build(settings).await?;
            let shutdown = CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                veredito::app::shutdown_signal().await;
                trigger.cancel();
            });
            app.run(shutdown).await
        }
        Command::Migrate { .. } => {
            let pool = veredito::app::prepare_database(&settings, true).await?;
            pool.close().await;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::RetrySteps { all, ids, .. } => {
            if !all && ids.is_empty() {
                anyhow::bail!("name the failed steps to retry, or pass --all");
            }
            let pool = veredito::app::prepare_database(&settings, false).await?;
            let retried = veredito::store::steps::retry_failed(&pool, &ids).await?;
            pool.close().await;
            for id in &retried {
                println!("{id}");
            }
            eprintln!("{} failed step(s) queued again", retried.len());
            Ok(())
        }
        Command::RotateKeys { .. } => {
            let pool = veredito::app::prepare_database(&settings, true).await?;
            let cipher = veredito::crypto::PiiCipher::from_settings(&settings.pii)?;
            let mut total = 0;
            loop {
                let moved = veredito::store::audit::reencrypt_batch(&pool, &cipher, 500).await?;
                total += moved;
                if moved == 0 {
                    break;
                }
            }
            println!(
                "re-encrypted {total} rows under key `{}`",
                cipher.active_key_id()
            );
            for (key_id, rows) in veredito::store::audit::rows_by_key(&pool).await? {
                println!("key `{key_id}`: {rows} rows");
            }
            pool.close().await;
            Ok(())
        }
    }
}
