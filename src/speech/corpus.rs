//! The corpus of caller requests a grammar folder ships in `corpus/`: tab-separated files
//! `<language>-<split>.tsv` (`cmn-train.tsv`, `yue-test.tsv`...) with the header
//! `intent<TAB>text` and one labelled request per line, `none` for lines that must route
//! nowhere. `train` teaches the intent model, `dev` calibrates its confidence, `test` is
//! only ever measured (`hotline check`, `hotline train`). Reads files; decides nothing.
//! Provenance and rules: grammars/README.md ("The corpus").

use std::path::{Path, PathBuf};

use super::grammar::Source;
use crate::diag::Diagnostic;

/// What a split is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// One labelled request.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub intent: String,
    pub text: String,
    pub language: String,
    pub split: Split,
    pub at: Source,
}

/// Every corpus line of the grammar folder `dir` (none when it has no `corpus/`), and the
/// problems found: a malformed line, or a label that is neither an intent of `intents`
/// nor `none`.
pub fn load(dir: &Path, intents: &[&str]) -> (Vec<Line>, Vec<Diagnostic>) {
    let folder = dir.join("corpus");
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return (lines, problems);
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
        .collect();
    files.sort();
    for file in files {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let at = |line: usize, column: usize| Source {
            file: file.clone(),
            line,
            column,
        };
        let Some((language, split)) = stem.split_once('-').and_then(|(l, s)| {
            let split = Split::ALL.into_iter().find(|x| x.name() == s)?;
            Some((l.to_owned(), split))
        }) else {
            problems.push(at(1, 1).diag(
                "a corpus file is named <language>-<train|dev|test>.tsv, e.g. cmn-train.tsv",
            ));
            continue;
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(at(1, 1).diag(e.to_string()));
                continue;
            }
        };
        for (n, row) in text.lines().enumerate() {
            let number = n + 1;
            if n == 0 {
                if row.trim_start_matches('\u{feff}') != "intent\ttext" {
                    problems.push(at(1, 1).diag("the first line must be `intent<TAB>text`"));
                }
                continue;
            }
            if row.trim().is_empty() {
                continue;
            }
            let Some((intent, sentence)) = row.split_once('\t') else {
                problems.push(at(number, 1).diag("write `intent<TAB>text`: no tab on this line"));
                continue;
            };
            if sentence.contains('\t') || sentence.trim().is_empty() {
                let column = intent.chars().count() + 2;
                problems.push(at(number, column).diag("the text must be one non-empty column"));
                continue;
            }
            if intent != super::intent_model::NONE && !intents.contains(&intent) {
                problems.push(at(number, 1).diag(format!(
                    "unknown intent `{intent}`: one of {}, or `none` for a line that routes nowhere",
                    intents.join(", ")
                )));
                continue;
            }
            lines.push(Line {
                intent: intent.to_owned(),
                text: sentence.trim().to_owned(),
                language: language.clone(),
                split,
                at: at(number, 1),
            });
        }
    }
    (lines, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_load_by_language_and_split_and_bad_ones_are_placed() {
        let dir = std::env::temp_dir().join(format!("hotline-corpus-{}", std::process::id()));
        let corpus = dir.join("corpus");
        std::fs::create_dir_all(&corpus).expect("scratch");
        std::fs::write(
            corpus.join("cmn-train.tsv"),
            "intent\ttext\nlabor\t老板不发工资\nnone\t喂\nlabour\t加班\n无标签\n",
        )
        .expect("write");
        std::fs::write(corpus.join("yue-test.tsv"), "intent\ttext\nlabor\t拖糧\n").expect("write");
        std::fs::write(corpus.join("notes.tsv"), "x").expect("write");
        let (lines, problems) = load(&dir, &["labor"]);
        let _ = std::fs::remove_dir_all(&dir);
        let got: Vec<(&str, &str, &str, Split)> = lines
            .iter()
            .map(|l| {
                (
                    l.intent.as_str(),
                    l.text.as_str(),
                    l.language.as_str(),
                    l.split,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("labor", "老板不发工资", "cmn", Split::Train),
                ("none", "喂", "cmn", Split::Train),
                ("labor", "拖糧", "yue", Split::Test),
            ]
        );
        let messages: Vec<String> = problems
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages[0].starts_with("4:1: unknown intent `labour`"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("5:1: write `intent<TAB>text`"),
            "{messages:?}"
        );
        assert!(
            messages[2].starts_with("1:1: a corpus file is named"),
            "{messages:?}"
        );
    }
}
