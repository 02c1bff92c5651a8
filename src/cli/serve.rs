//! `hotline serve`: check everything, then run the engine until Ctrl-C or SIGTERM; SIGHUP
//! reloads the dialplans (kept only if they validate).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use hotline::config::Config;
use hotline::engine::{Engine, EngineError};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

#[derive(clap::Args)]
pub struct Args {
    /// Log filter (tracing's EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// Loads the config file if it exists; the built-in defaults otherwise.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(load_config_text(path)?.0)
}

/// The config and its text (for positions in diagnostics); empty text for the defaults.
pub fn load_config_text(path: &Path) -> anyhow::Result<(Config, String)> {
    if !path.exists() {
        return Ok((Config::default(), String::new()));
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((Config::parse(path, &text)?, text))
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let (config, text) = load_config_text(config_path).context("loading the config")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config, config_path, &text))
}

async fn serve(config: Config, config_path: &Path, text: &str) -> anyhow::Result<()> {
    let engine = match Engine::start(config, config_path, text).await {
        Ok(e) => e,
        Err(EngineError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            bail!(
                "refusing to start: {} problem(s) in the configuration",
                problems.len()
            );
        }
        Err(e) => return Err(e).context("starting the engine"),
    };
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => match engine.reload().await {
                Ok(n) => info!(dialplans = n, "reloaded on SIGHUP"),
                Err(problems) => {
                    for p in &problems {
                        error!("{p}");
                    }
                    error!(problems = problems.len(), "reload refused: the running dialplans stay");
                }
            },
        }
    }
    let grace = engine.shutdown_grace;
    // Said once the endpoint has been told, so the line is true when it is read.
    let drained = engine.drain(grace);
    info!(
        grace_s = grace.as_secs(),
        "stopping: no new calls; calls in progress are hung up after the grace (signal again to hang up now)"
    );
    tokio::pin!(drained);
    let clean = loop {
        tokio::select! {
            clean = &mut drained => break clean,
            _ = tokio::signal::ctrl_c() => drop(engine.drain(Duration::ZERO)),
            _ = term.recv() => drop(engine.drain(Duration::ZERO)),
        }
    };
    if clean {
        info!("every call ended");
    } else {
        warn!("calls were still up after the grace: stopping anyway");
    }
    engine.stop().await;
    Ok(())
}
