//! `hotline serve`: load and check everything, then run the engine until Ctrl-C.

use std::path::Path;

use anyhow::Context;
use hotline::config::Config;

#[derive(clap::Args)]
pub struct Args {}

/// Loads the config file if it exists; the built-in defaults otherwise.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    if path.exists() {
        Ok(Config::load(path)?)
    } else {
        Ok(Config::default())
    }
}

pub fn run(config_path: &Path, _args: Args) -> anyhow::Result<()> {
    let _config = load_config(config_path).context("loading the config")?;
    Ok(())
}
