//! Renders one text to an 8 kHz WAV: espeak-ng speaks it at its own rate, sox resamples it.
//! Writes through a temporary name and renames, so that an interrupted run never leaves a
//! truncated file in the cache.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{PromptConfig, PromptError};

fn run(tool: &Path, mut cmd: Command, stdin: Option<&str>) -> Result<(), PromptError> {
    let name = tool.display().to_string();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PromptError::ToolMissing {
            tool: name.clone(),
            source,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits early closes the pipe; its exit status tells why.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| PromptError::ToolMissing {
            tool: name.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PromptError::ToolFailed {
            tool: name,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

pub fn render(
    config: &PromptConfig,
    text: &str,
    voice: &str,
    target: &Path,
) -> Result<(), PromptError> {
    let io = |source| PromptError::Io {
        path: target.to_owned(),
        source,
    };
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let spoken = target.with_extension(format!("{}.tts.wav", std::process::id()));
    let resampled = target.with_extension(format!("{}.8k.wav", std::process::id()));
    let result = (|| {
        let mut tts = Command::new(&config.tts);
        tts.arg("-v")
            .arg(voice)
            .arg("-s")
            .arg(config.rate.to_string())
            .arg("-w")
            .arg(&spoken)
            .arg("--stdin");
        run(&config.tts, tts, Some(text))?;
        let mut sox = Command::new(&config.sox);
        sox.arg(&spoken)
            .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(&resampled);
        run(&config.sox, sox, None)?;
        std::fs::rename(&resampled, target).map_err(io)
    })();
    // Leftovers of a failed step; absent ones are fine.
    let _ = std::fs::remove_file(&spoken);
    let _ = std::fs::remove_file(&resampled);
    result
}
