//! The engine's one config file (TOML): each section belongs to the module named after it,
//! which defines its own struct and defaults. This file only assembles them and turns a
//! parse error into `file:line:column: message`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::Diagnostic;

#[derive(Debug, Clone, Default, Deserialize)]
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
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
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
        toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, column) = line_column(text, offset);
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })
    }
}

/// A problem serde cannot see (a name that must exist, a value out of range), located by
/// the path of keys from the file's root to the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<PathKey>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKey {
    Key(String),
    Index(usize),
}

/// A section that cannot be used, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid [{section}] section: {}", summary(problems))]
pub struct InvalidSection {
    pub section: &'static str,
    pub problems: Vec<Problem>,
}

fn summary(problems: &[Problem]) -> String {
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    messages.join("; ")
}

/// The problems as `file:line:column` diagnostics against the file's text: at the key where
/// a path ends on a table key, at the value otherwise, at the deepest part present when the
/// rest was left to its default.
pub fn diagnostics(file: &Path, text: &str, problems: Vec<Problem>) -> Vec<Diagnostic> {
    let tree = toml::de::DeTable::parse(text).ok();
    problems
        .into_iter()
        .map(|p| {
            let offset = tree.as_ref().map_or(0, |t| locate(t, &p.path));
            let (line, column) = line_column(text, offset);
            Diagnostic {
                file: file.to_owned(),
                line,
                column,
                message: p.message,
            }
        })
        .collect()
}

fn locate(root: &toml::Spanned<toml::de::DeTable<'_>>, path: &[PathKey]) -> usize {
    use toml::de::DeValue;
    let mut best = 0;
    let mut table = Some(root.get_ref());
    let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
    for step in path {
        let node = match step {
            PathKey::Key(k) => {
                let Some((name, value)) = table.and_then(|t| t.get_key_value(k.as_str())) else {
                    break;
                };
                best = name.span().start;
                value
            }
            PathKey::Index(i) => {
                let Some(value) = array.and_then(|a| a.get(*i)) else {
                    break;
                };
                best = value.span().start;
                value
            }
        };
        (table, array) = match node.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(&a[..])),
            _ => (None, None),
        };
    }
    best
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
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
