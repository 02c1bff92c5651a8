//! `hotline intent TEXT`: what the intent grammar makes of one sentence, with every piece
//! of evidence and where it is written, for operators tuning a grammar.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use hotline::speech::{Classifier, TextTools};

#[derive(clap::Args)]
pub struct Args {
    /// The sentence as a caller would say it (simplified or traditional, spaces allowed).
    pub text: String,
    /// The grammar folder; default: `[speech] grammar_dir` of the config.
    #[arg(long)]
    pub grammar: Option<PathBuf>,
}

/// Loads the grammar folder, printing its diagnostics and failing when it has any.
pub fn load_grammar(dir: &Path) -> anyhow::Result<Classifier> {
    let tools = TextTools::load().context("loading the OpenCC and jieba dictionaries")?;
    match Classifier::load(dir, tools) {
        Ok(c) => Ok(c),
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            bail!("{} error(s) in the grammar {}", diags.len(), dir.display())
        }
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let config = super::serve::load_config(config_path).context("loading the config")?;
    let dir = args.grammar.unwrap_or(config.speech.grammar_dir);
    let started = Instant::now();
    let classifier = load_grammar(&dir)?;
    let loaded = started.elapsed();
    let started = Instant::now();
    let decision = classifier.classify(&args.text);
    let classified = started.elapsed();
    print!("{decision}");
    println!(
        "(grammar {} and dictionaries loaded in {loaded:.0?}; classified in {classified:.1?})",
        dir.display()
    );
    Ok(())
}
