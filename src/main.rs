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
    /// The engine's config file (TOML). Missing: built-in defaults.
    #[arg(long, short, global = true, default_value = "hotline.toml")]
    config: PathBuf,
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
    let result = match cli.command {
        Command::Serve(args) => cli::serve::run(&cli.config, args),
        Command::Check(args) => cli::check::run(&cli.config, args),
        Command::Prompts(args) => cli::prompts::run(&cli.config, args),
        Command::Stats(args) => cli::stats::run(&cli.config, args),
        Command::Intent(args) => cli::intent::run(&cli.config, args),
        Command::Recognize(args) => cli::recognize::run(&cli.config, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", report(&e));
            std::process::ExitCode::FAILURE
        }
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
