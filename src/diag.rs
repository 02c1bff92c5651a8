//! Diagnostics for files operators write (config, dialplans, grammars): one message with
//! the `file:line:column` it is about, printed the way compilers do so editors can jump to it;
//! and the config's problems serde cannot see, placed at their key in the TOML text. Every
//! module that checks a config section reports through here, so none depends on `config`.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// The one way every check (config, dialplans, grammars, prompts) builds its diagnostics.
impl Diagnostic {
    /// A problem at `line:column` (1-based, the column in characters) of `file`.
    pub fn at(
        file: impl Into<PathBuf>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line: line.max(1),
            column: column.max(1),
            message: message.into(),
        }
    }

    /// A problem at byte `offset` of `text`, the contents of `file`.
    pub fn at_offset(
        file: impl Into<PathBuf>,
        text: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = line_column(text, offset);
        Diagnostic::at(file, line, column, message)
    }

    /// A problem with a whole file (it cannot be read, a tool it needs is missing): 1:1.
    pub fn whole(file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(file, 1, 1, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
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
            Diagnostic::at_offset(file, text, offset, p.message)
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
