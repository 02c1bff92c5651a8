//! The `hotline` command: runs the engine and the operator tools around it.

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "SIP/RTP IVR and call-routing engine for citizen-service hotlines"
)]
struct Cli {
    /// The engine's config file (TOML), which must exist. Without it: ./hotline.toml if
    /// there is one, the built-in defaults otherwise.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine: answer SIP calls on the configured listeners.
    Serve(cli::serve::Args),
    /// Check the config, dialplans and grammars; print every error as file:line:column.
    Check(cli::check::Args),
    /// Render the dialplans' prompt texts into the prompt cache.
    Prompts(cli::prompts::Args),
    /// Print queue and agent statistics, from a running engine or the event log file.
    Stats(cli::stats::Args),
    /// Show how the intent grammar classifies a sentence, with its evidence (for tuning).
    Intent(cli::intent::Args),
    /// Recognise a WAV recording through the call path (20 ms frames, the same
    /// endpointing) and classify what was said.
    Recognize(cli::recognize::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = config_path(cli.config).and_then(|config| match cli.command {
        Command::Serve(args) => cli::serve::run(&config, args),
        Command::Check(args) => cli::check::run(&config, args),
        Command::Prompts(args) => cli::prompts::run(&config, args),
        Command::Stats(args) => cli::stats::run(&config, args),
        Command::Intent(args) => cli::intent::run(&config, args),
        Command::Recognize(args) => cli::recognize::run(&config, args),
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The config file to load: a path given with `--config` must exist (a typo must not start
/// the engine on the built-in defaults); the default `hotline.toml` may be missing.
fn config_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(path) if !path.is_file() => anyhow::bail!(
            "--config {}: no such file (leave --config out to use ./hotline.toml, or the \
             built-in defaults when there is none)",
            path.display()
        ),
        Some(path) => Ok(path),
        None => Ok(PathBuf::from("hotline.toml")),
    }
}

/// The error and its causes on one line. The library errors already end with their
/// source's text, so a cause is added only when the line does not end with it yet.
fn report(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if line.ends_with(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}
