//! Renders one text to an 8 kHz WAV: the text as it is read aloud (`reading`) is first
//! checked to stay in the voice's own language (espeak-ng's `-x` output marks a switch to
//! another language's letters, such as `(en)`), then espeak-ng speaks it at the configured
//! rate and sox resamples it. Writes through a temporary name and renames, so that an
//! interrupted run never leaves a truncated file in the cache.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{PromptConfig, PromptError, reading};

/// Runs a tool to completion; its standard output.
fn run(tool: &Path, mut cmd: Command, stdin: Option<&str>) -> Result<Vec<u8>, PromptError> {
    let name = tool.display().to_string();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
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
        Ok(out.stdout)
    } else {
        Err(PromptError::ToolFailed {
            tool: name,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Refuses a text that `voice` would read (in part) with another language's letters:
/// espeak-ng's phoneme output names the language it switches to, as in `(en)hA11S(cmn)`.
pub fn check_language(config: &PromptConfig, spoken: &str, voice: &str) -> Result<(), PromptError> {
    let mut cmd = Command::new(&config.tts);
    cmd.arg("-v").arg(voice).args(["-q", "-x", "--stdin"]);
    let phonemes = run(&config.tts, cmd, Some(spoken))?;
    let phonemes = String::from_utf8_lossy(&phonemes);
    match foreign_switch(&phonemes) {
        None => Ok(()),
        Some(switch) => Err(PromptError::ForeignReading {
            voice: voice.to_owned(),
            switch,
            latin: latin_words(spoken),
        }),
    }
}

/// The first language espeak-ng switches to, with the phonemes around it.
fn foreign_switch(phonemes: &str) -> Option<String> {
    let open = phonemes.find('(')?;
    let rest = &phonemes[open..];
    let close = rest.find(')')?;
    let shown: String = rest.chars().take(close + 16).collect();
    Some(shown.trim().to_owned())
}

/// Runs of Latin letters and signs the reading rules left in a text: the usual culprits.
fn latin_words(spoken: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in spoken.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || matches!(c, '@' | '&' | '+' | '=' | '/') {
            current.push(c);
        } else if !current.is_empty() {
            if !words.contains(&current) {
                words.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    words
}

/// Renders `text`, as it is read in `language`, with `voice` into `target`; refuses a
/// text the voice would read with another language's letters.
pub fn render(
    config: &PromptConfig,
    text: &str,
    language: &str,
    voice: &str,
    target: &Path,
) -> Result<(), PromptError> {
    let spoken = reading::spoken(text, language);
    check_language(config, &spoken, voice)?;
    synthesize(config, &spoken, voice, target)
}

/// Speaks `spoken` (already in its read-aloud form) with `voice` into `target` as an 8 kHz
/// mono 16-bit WAV, unchecked: `render` checks first; the voice benchmark compares voices
/// that fail the check too.
pub fn synthesize(
    config: &PromptConfig,
    spoken: &str,
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
    let wide = target.with_extension(format!("{}.tts.wav", std::process::id()));
    let resampled = target.with_extension(format!("{}.8k.wav", std::process::id()));
    let result = (|| {
        let mut tts = Command::new(&config.tts);
        tts.arg("-v")
            .arg(voice)
            .arg("-s")
            .arg(config.rate.to_string())
            .arg("-w")
            .arg(&wide)
            .arg("--stdin");
        run(&config.tts, tts, Some(spoken))?;
        let mut sox = Command::new(&config.sox);
        sox.arg(&wide)
            .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(&resampled);
        run(&config.sox, sox, None)?;
        std::fs::rename(&resampled, target).map_err(io)
    })();
    // Leftovers of a failed step; absent ones are fine.
    let _ = std::fs::remove_file(&wide);
    let _ = std::fs::remove_file(&resampled);
    result
}

#[cfg(test)]
mod tests {
    use super::{foreign_switch, latin_words};

    #[test]
    fn a_switch_to_another_language_is_found_in_the_phonemes() {
        assert_eq!(
            foreign_switch("n'i35n_| 'a51n_| (en)ha11S(cmn)_| tS;'iE51n_|"),
            Some("(en)ha11S(cmn)_| tS".to_owned())
        );
        assert_eq!(foreign_switch("n'i35n_| X'Au214_|"), None);
    }

    #[test]
    fn latin_leftovers_are_named_once() {
        assert_eq!(latin_words("请下载APP，APP里按hash"), ["APP", "hash"]);
        assert!(latin_words("您好").is_empty());
    }
}
