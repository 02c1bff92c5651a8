//! The engine's one config file (TOML): each section belongs to the module named after it,
//! which defines its own struct and defaults. This file only assembles them and turns a
//! parse error into `file:line:column: message`; problems serde cannot see are `diag`'s.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::Diagnostic;

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: crate::sip::SipConfig,
    pub trunks: crate::endpoint::TrunkConfig,
    pub media: crate::media::MediaConfig,
    pub recording: crate::media::RecordingConfig,
    pub dialplan: crate::dialplan::DialplanConfig,
    pub prompts: crate::prompts::PromptConfig,
    pub speech: crate::speech::SpeechConfig,
    pub acd: crate::acd::AcdConfig,
    pub registrar: crate::registrar::RegistrarConfig,
    pub stats: crate::stats::StatsConfig,
    pub api: crate::api::ApiConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// At `file:line:column`, as every other check reports.
    #[error("{0}")]
    Parse(Diagnostic),
}

impl Config {
    /// Reads and parses the config file. Relative paths inside it stay relative to the
    /// working directory, which is the project root for `make run`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let error = |e: toml::de::Error| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            ConfigError::Parse(Diagnostic::at_offset(path, text, offset, e.message()))
        };
        // Typed first, so every wrong key or value is reported where it is written; then
        // the queue defaults, which need to know what each queue left out.
        let mut config: Config = toml::from_str(text).map_err(error)?;
        let file: toml::Table = toml::from_str(text).map_err(error)?;
        config.acd = config.acd.with_queue_defaults(&file).map_err(error)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_from_an_empty_file() {
        let c = Config::parse(Path::new("x.toml"), "").expect("empty config is valid");
        assert_eq!(c.media.media_timeout_s, 30);
    }

    #[test]
    fn unknown_key_is_reported_with_its_position() {
        let err = Config::parse(Path::new("x.toml"), "[sip]\nudpp = \"1\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("x.toml:2:1: "), "{text}");
        assert!(text.contains("udpp"), "{text}");
    }
}
