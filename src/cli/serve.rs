//! `hotline serve`: load and check everything, then run the engine until Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hotline::call::{self, CallContext};
use hotline::config::Config;
use hotline::endpoint::Endpoint;
use hotline::media::clip::Clip;
use hotline::media::worker::Media;
use hotline::metrics::Registry;
use tracing::info;

#[derive(clap::Args)]
pub struct Args {
    /// Log filter (tracing's EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// Loads the config file if it exists; the built-in defaults otherwise.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    if path.exists() {
        Ok(Config::load(path)?)
    } else {
        Ok(Config::default())
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let config = load_config(config_path).context("loading the config")?;
    let prompt = match config.flow.prompt.as_str() {
        "" => None,
        path => Some(Clip::load_wav(&PathBuf::from(path)).context("loading the [flow] prompt")?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config, prompt))
}

async fn serve(config: Config, prompt: Option<Arc<Clip>>) -> anyhow::Result<()> {
    let registry = Registry::new();
    let media = Media::start(&config.media, &config.recording, &registry);
    let ctx = Arc::new(CallContext {
        media,
        prompt,
        answer_delay: Duration::from_millis(config.flow.answer_delay_ms),
    });
    let endpoint = Endpoint::start(&config.sip, &config.trunks, &registry, call::starter(ctx))
        .await
        .context("starting the SIP endpoint")?;
    info!(udp = ?endpoint.udp_addr, tcp = ?endpoint.tcp_addr, "hotline is running");
    shutdown_signal().await;
    info!("shutting down");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
