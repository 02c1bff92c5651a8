//! `hotline check`: loads the config, the dialplans and (once the speech module provides
//! them) the grammars, and prints every problem as `file:line:column: message`. Also home of
//! the glue that tells dialplan validation what the rest of the engine knows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hotline::config::Config;
use hotline::diag::Diagnostic;
use hotline::dialplan::{DialplanSet, LoadError, QueueInfo, ValidationContext};

use super::serve::load_config;

#[derive(clap::Args)]
pub struct Args {
    /// Dialplan files or folders to check instead of the configured `[dialplan] directory`.
    pub paths: Vec<PathBuf>,
}

/// INTEGRATION POINT (ACD): the queues `[acd]` configures, with how many agents serve each.
/// `None` until the ACD config is merged: queue names and agents go unchecked, and `check`
/// says so.
fn acd_queues(_config: &Config) -> Option<BTreeMap<String, QueueInfo>> {
    None
}

/// INTEGRATION POINT (speech): the intent names of the grammars under `grammars/`.
fn grammar_intents(_config: &Config) -> Option<BTreeSet<String>> {
    None
}

/// INTEGRATION POINT (speech): the grammar sets (folders under `grammars/`).
fn grammar_sets(_config: &Config) -> Option<BTreeSet<String>> {
    None
}

/// INTEGRATION POINT (speech): the grammars' own diagnostics (syntax, examples that do not
/// classify to their intent). `None` until the grammar loader is merged.
fn grammar_diagnostics(_config: &Config) -> Option<Vec<Diagnostic>> {
    None
}

/// INTEGRATION POINT (endpoint): the names of the configured trunks.
fn trunk_names(_config: &Config) -> Option<BTreeSet<String>> {
    None
}

/// What dialplan validation may check against, from the config and the grammars.
pub fn validation_context(config: &Config) -> ValidationContext {
    ValidationContext {
        queues: acd_queues(config),
        intents: grammar_intents(config),
        grammars: grammar_sets(config),
        trunks: trunk_names(config),
    }
}

/// Tells the operator which checks could not run, so that silence is not read as success.
fn print_unchecked(ctx: &ValidationContext, grammars_checked: bool) {
    let mut missing = Vec::new();
    if ctx.queues.is_none() {
        missing.push("queue names and their agents (no ACD queues known)");
    }
    if ctx.intents.is_none() {
        missing.push("intent names (no grammar intents known)");
    }
    if ctx.grammars.is_none() {
        missing.push("grammar names (no grammar sets known)");
    }
    if ctx.trunks.is_none() {
        missing.push("trunk names (no trunks known)");
    }
    if !grammars_checked {
        missing.push("grammar files");
    }
    for what in missing {
        eprintln!("note: not checked: {what}");
    }
}

/// Loads and checks the dialplans (`paths`, or the configured folder), printing every
/// problem found.
pub fn load_dialplans(
    config: &Config,
    paths: &[PathBuf],
    ctx: &ValidationContext,
) -> anyhow::Result<DialplanSet> {
    let paths = if paths.is_empty() {
        vec![config.dialplan.directory.clone()]
    } else {
        paths.to_vec()
    };
    match DialplanSet::load(&paths, &config.dialplan.calendar(), ctx) {
        Ok(set) => Ok(set),
        Err(LoadError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                println!("{d}");
            }
            bail!("{} error(s) in the dialplans", diagnostics.len())
        }
        Err(e) => Err(e).context("loading the dialplans"),
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let config = load_config(config_path).context("loading the config")?;
    let ctx = validation_context(&config);
    let grammar_problems = grammar_diagnostics(&config);
    print_unchecked(&ctx, grammar_problems.is_some());
    let grammar_problems = grammar_problems.unwrap_or_default();
    for d in &grammar_problems {
        println!("{d}");
    }
    let set = load_dialplans(&config, &args.paths, &ctx)?;
    if !grammar_problems.is_empty() {
        bail!("{} error(s) in the grammars", grammar_problems.len());
    }
    eprintln!("{} dialplan(s) OK", set.plans().len());
    Ok(())
}
