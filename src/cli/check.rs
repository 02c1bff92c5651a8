//! `hotline check`: loads the config, the grammar (training its model and reporting its
//! accuracy on the corpus's held-out splits), the dialplans and their prompts, and prints
//! every problem as `file:line:column: message`, the same checks `serve` makes before
//! starting.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hotline::engine::check;

use super::serve::load_config_text;

#[derive(clap::Args)]
pub struct Args {
    /// Dialplan files or folders to check instead of the configured `[dialplan] directory`.
    pub paths: Vec<PathBuf>,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let (config, text) = load_config_text(config_path).context("loading the config")?;
    let mut problems = check::config_diagnostics(&config, config_path, &text);
    let grammar = check::grammar(&config);
    problems.extend(grammar.problems);
    for line in &grammar.accuracy {
        eprintln!("intent model, {line}");
    }
    let ctx = check::validation_context(&config, grammar.names);
    if ctx.queues.is_none() {
        eprintln!("note: not checked: queue names and their agents (no [acd] queues configured)");
    }
    // The prompts too: a text the voice would read with another language's letters is
    // refused here, before it goes live (rendering what the prompt cache lacks).
    let plans = match check::load_flows(&config, &args.paths, &ctx) {
        Ok(flows) => flows.dialplans.plans().len(),
        Err(d) => {
            problems.extend(d);
            0
        }
    };
    for d in &problems {
        println!("{d}");
    }
    if !problems.is_empty() {
        bail!("{} problem(s)", problems.len());
    }
    eprintln!("{plans} dialplan(s) OK");
    Ok(())
}
