//! `hotline prompts`: renders every prompt text of the dialplans into the prompt cache
//! (what `serve` would otherwise do at startup) and reports prompts left without audio.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hotline::prompts::PromptSet;

use hotline::engine::check;

use super::serve::load_config;

#[derive(clap::Args)]
pub struct Args {
    /// Dialplan files or folders instead of the configured `[dialplan] directory`.
    pub paths: Vec<PathBuf>,
    /// Cache folder instead of `[prompts] cache_dir`.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let mut config = load_config(config_path).context("loading the config")?;
    if let Some(dir) = args.cache_dir {
        config.prompts.cache_dir = dir;
    }
    let dialplans = match check::load_dialplans(
        &config,
        &args.paths,
        &check::validation_context(&config, None),
    ) {
        Ok(d) => d,
        Err(diagnostics) => {
            for d in &diagnostics {
                println!("{d}");
            }
            bail!("{} problem(s) in the dialplans", diagnostics.len())
        }
    };
    match PromptSet::load(&dialplans, &config.prompts) {
        Ok(set) => {
            let r = set.report();
            println!(
                "prompts: {} rendered, {} from the cache, {} recorded (cache: {})",
                r.rendered,
                r.cached,
                r.recorded,
                config.prompts.cache_dir.display()
            );
            Ok(())
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                println!("{d}");
            }
            bail!("{} prompt(s) have no audio", diagnostics.len())
        }
    }
}
