//! Prompt audio: every prompt of the loaded dialplans as shared 8 kHz mono 16-bit samples.
//! Texts are rendered once with espeak-ng (and sox, to 8 kHz) into a cache keyed by text,
//! language and voice; a recorded WAV named in the dialplan overrides the text. Loading does
//! file and process I/O and happens at startup, on reload or in `hotline prompts`, never
//! per call. Plays nothing: the media module reads the samples.

mod cache;
mod reading;
mod render;
mod set;
// Against the real espeak-ng and sox: with the integration tests only.
#[cfg(all(test, feature = "integration"))]
mod tests;
mod wav;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use reading::spoken;
pub use render::{check_language, synthesize};
pub use set::{LoadReport, PromptSet, Samples};
pub use wav::read as read_wav;

/// The `[prompts]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptConfig {
    /// Where rendered prompts are kept between runs.
    pub cache_dir: PathBuf,
    /// The text-to-speech program (espeak-ng's command line).
    pub tts: PathBuf,
    /// sox, to resample the rendering to 8 kHz.
    pub sox: PathBuf,
    /// Dialplan language code -> espeak-ng voice. Mandarin defaults to `cmn-latn-pinyin`:
    /// espeak-ng 1.51's `cmn` voice ("latin as English") turns each character into pinyin
    /// and then reads the pinyin as English letters and numbers.
    pub voices: BTreeMap<String, String>,
    /// Speaking rate in words per minute (espeak-ng's own default, 175, gives about 3.7
    /// syllables a second with `cmn-latn-pinyin`, slower than news reading; at 150 the
    /// 12345 key menu took 38 s, at 175 it takes 32 s).
    pub rate: u32,
}

impl Default for PromptConfig {
    fn default() -> Self {
        PromptConfig {
            cache_dir: PathBuf::from("data/prompts"),
            tts: PathBuf::from("espeak-ng"),
            sox: PathBuf::from("sox"),
            voices: [("cmn", "cmn-latn-pinyin"), ("yue", "yue")]
                .into_iter()
                .map(|(l, v)| (l.to_owned(), v.to_owned()))
                .collect(),
            rate: 175,
        }
    }
}

impl PromptConfig {
    /// The voice for a language: configured, else the language code itself.
    pub fn voice<'a>(&'a self, language: &'a str) -> &'a str {
        self.voices.get(language).map_or(language, String::as_str)
    }
}

/// Why one prompt has no audio.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(
        "cannot run `{tool}` ({source}); install it, or record the prompt as an 8 kHz WAV (`file:`)"
    )]
    ToolMissing {
        tool: String,
        source: std::io::Error,
    },
    #[error("`{tool}` failed ({status}): {stderr}")]
    ToolFailed {
        tool: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error(
        "espeak-ng voice `{voice}` reads part of this text with another language's letters ({switch}){}; write it in Chinese characters (numbers, keys, times and dates are converted: dialplans/README.md, \"How prompts are read\"), choose a voice that speaks it in [prompts] voices, or record the prompt (`file:`)",
        latin_hint(.latin)
    )]
    ForeignReading {
        voice: String,
        switch: String,
        latin: Vec<String>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable WAV file: {source}")]
    Wav { path: PathBuf, source: hound::Error },
    #[error(
        "{path} is {rate} Hz, {channels} channel(s), {bits}-bit {format}; prompts must be 8000 Hz mono 16-bit PCM (`sox in.wav -r 8000 -c 1 -b 16 out.wav`)"
    )]
    Format {
        path: PathBuf,
        rate: u32,
        channels: u16,
        bits: u16,
        format: &'static str,
    },
}

fn latin_hint(latin: &[String]) -> String {
    if latin.is_empty() {
        String::new()
    } else {
        format!(": `{}`", latin.join("`, `"))
    }
}

/// Audio for a text not in any dialplan (a queue position announcement): from the cache, or
/// rendered into it. Blocks on espeak-ng and sox when not cached: call it off the runtime.
pub fn speak(
    config: &PromptConfig,
    text: &str,
    language: &str,
) -> Result<std::sync::Arc<crate::media::clip::Clip>, PromptError> {
    let voice = config.voice(language);
    let file = cache::path(&config.cache_dir, text, language, voice, config.rate);
    if !file.is_file() {
        render::render(config, text, language, voice, &file)?;
    }
    let pcm = wav::read(&file)?;
    Ok(crate::media::clip::Clip::from_pcm(pcm.into()))
}
