//! Loading an intent grammar folder (grammars/README.md): `hotline.yaml` with the settings
//! shared by all intents, and one YAML file per intent. Parses with serde-saphyr keeping
//! every value's position, then checks what YAML cannot (names, weights, empty intents,
//! duplicates) and returns every problem of every file as `file:line:column` diagnostics.
//! Knows nothing about scoring: `classifier` compiles the result.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_saphyr::{DefaultMessageFormatter, MessageFormatter, Spanned};

use super::Language;
use super::text::{Normalized, TextTools};
use crate::diag::Diagnostic;

/// The settings file of a grammar folder; every other `*.yaml` is one intent.
pub const SETTINGS_FILE: &str = "hotline.yaml";

/// The names a grammar gives dialplans to refer to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrammarNames {
    pub intents: std::collections::BTreeSet<String>,
    pub sets: std::collections::BTreeSet<String>,
}

/// A grammar folder, loaded and checked.
#[derive(Debug, Clone)]
pub struct Grammar {
    pub dir: PathBuf,
    pub settings: Settings,
    pub intents: Vec<Intent>,
}

/// Tuning shared by every intent (`hotline.yaml`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Below this score no intent is chosen.
    pub min_score: f32,
    /// The score at which confidence stops growing with the score.
    pub confident_score: f32,
    /// Most characters allowed between two parts of a phrase.
    pub phrase_gap: usize,
    /// Least mean syllable similarity for a pinyin match.
    pub fuzzy_min_similarity: f32,
    /// Share of a keyword's weight a pinyin match earns.
    pub fuzzy_weight: f32,
    /// How many characters after a negation cue it reaches.
    pub negation_scope: usize,
    pub negation_cues: Vec<Term>,
    /// Words only Cantonese uses, for language detection.
    pub cantonese_markers: Vec<Term>,
}

#[derive(Debug, Clone)]
pub struct Intent {
    pub name: String,
    pub description: String,
    pub at: Source,
    pub terms: Vec<Term>,
    pub examples: Vec<Example>,
}

/// One keyword, synonym, phrase or negative word, as written and normalised.
#[derive(Debug, Clone)]
pub struct Term {
    pub written: String,
    /// Normalised parts: one for a word, two or more for a phrase.
    pub parts: Vec<Vec<char>>,
    pub kind: TermKind,
    pub weight: f32,
    pub lang: Option<Language>,
    pub at: Source,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TermKind {
    Keyword,
    /// Counts as the keyword `of`, with its weight.
    Synonym {
        of: String,
    },
    Phrase,
    /// Its presence lowers the intent's score by its weight.
    Negative,
}

#[derive(Debug, Clone)]
pub struct Example {
    pub text: String,
    pub lang: Language,
    pub at: Source,
}

/// Where something was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Source {
    pub fn diag(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.file, self.line, self.column, message)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

impl Grammar {
    /// Loads and checks every file of `dir`. All problems come back at once.
    pub fn load(dir: &Path, tools: &TextTools) -> Result<Grammar, Vec<Diagnostic>> {
        let top = Source {
            file: dir.to_owned(),
            line: 1,
            column: 1,
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                return Err(vec![
                    top.diag(format!("cannot read the grammar folder: {e}")),
                ]);
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    && p.file_name().is_some_and(|n| n != SETTINGS_FILE)
            })
            .collect();
        files.sort();
        let mut diags = Vec::new();
        let settings_path = dir.join(SETTINGS_FILE);
        let settings = if settings_path.exists() {
            read_yaml::<RawSettings>(&settings_path, &mut diags)
                .map(|raw| raw.check(&settings_path, tools, &mut diags))
        } else {
            Some(RawSettings::default().check(&settings_path, tools, &mut diags))
        };
        if files.is_empty() {
            diags.push(top.diag("no intent files (*.yaml) in the grammar folder"));
        }
        let mut intents: Vec<Intent> = Vec::new();
        let mut names: Vec<(String, Source)> = Vec::new();
        for file in &files {
            let Some(raw) = read_yaml::<RawIntent>(file, &mut diags) else {
                continue;
            };
            let at = source(file, &raw.intent);
            if let Some((_, first)) = names.iter().find(|(n, _)| *n == raw.intent.value) {
                diags.push(at.diag(format!(
                    "intent `{}` is already defined at {first}",
                    raw.intent.value
                )));
                continue;
            }
            names.push((raw.intent.value.clone(), at));
            intents.extend(raw.check(file, tools, &mut diags));
        }
        match settings {
            Some(settings) if diags.is_empty() => Ok(Grammar {
                dir: dir.to_owned(),
                settings,
                intents,
            }),
            _ => {
                diags.sort();
                Err(diags)
            }
        }
    }

    /// What dialplans may name: this grammar's intents and its set (its folder's name).
    pub fn names(&self) -> GrammarNames {
        GrammarNames {
            intents: self.intents.iter().map(|i| i.name.clone()).collect(),
            sets: self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .into_iter()
                .collect(),
        }
    }

    pub fn intent(&self, name: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.name == name)
    }
}

fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path, diags: &mut Vec<Diagnostic>) -> Option<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            diags.push(Diagnostic::whole(path, format!("cannot read: {e}")));
            return None;
        }
    };
    match serde_saphyr::from_str::<T>(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let plain = e.without_snippet();
            let (line, column) = plain
                .location()
                .map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
            // One line per diagnostic: the message may quote the file's control characters.
            let message: String = DefaultMessageFormatter
                .format_message(plain)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            diags.push(Diagnostic::at(path, line, column, message));
            None
        }
    }
}

fn source(file: &Path, s: &Spanned<impl Sized>) -> Source {
    Source {
        file: file.to_owned(),
        line: (s.referenced.line() as usize).max(1),
        column: (s.referenced.column() as usize).max(1),
    }
}

/// A YAML mapping kept in file order with the position of every key.
#[derive(Debug)]
struct Entries<V>(Vec<(Spanned<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    out.push((key, map.next_value::<V>()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

type Weighted = Entries<Spanned<f32>>;

/// Something written once per language.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ByLang<T> {
    cmn: T,
    yue: T,
}

impl<T: Default> Default for ByLang<T> {
    fn default() -> Self {
        ByLang {
            cmn: T::default(),
            yue: T::default(),
        }
    }
}

impl<T> ByLang<T> {
    fn each(&self) -> [(Language, &T); 2] {
        [
            (Language::Mandarin, &self.cmn),
            (Language::Cantonese, &self.yue),
        ]
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSettings {
    description: Option<String>,
    min_score: Option<Spanned<f32>>,
    confident_score: Option<Spanned<f32>>,
    phrase_gap: Option<Spanned<usize>>,
    fuzzy: RawFuzzy,
    negation: RawNegation,
    cantonese_markers: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawFuzzy {
    min_similarity: Option<Spanned<f32>>,
    weight: Option<Spanned<f32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawNegation {
    scope: Option<Spanned<usize>>,
    cues: ByLang<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    intent: Spanned<String>,
    /// No longer read: only to tell the operator where the queue went.
    queue: Option<Spanned<String>>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    keywords: ByLang<Weighted>,
    #[serde(default)]
    phrases: ByLang<Weighted>,
    #[serde(default)]
    synonyms: Entries<Vec<Spanned<String>>>,
    #[serde(default)]
    negative: Weighted,
    #[serde(default)]
    examples: ByLang<Vec<Spanned<String>>>,
}

/// Checks a number from a file against a range, reporting where it was written.
fn ranged<T: Copy + PartialOrd + fmt::Display>(
    file: &Path,
    value: &Option<Spanned<T>>,
    default: T,
    (low, high): (T, T),
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> T {
    match value {
        None => default,
        Some(v) if v.value >= low && v.value <= high => v.value,
        Some(v) => {
            diags.push(source(file, v).diag(format!(
                "{what} must be between {low} and {high}, not {}",
                v.value
            )));
            default
        }
    }
}

impl RawSettings {
    fn check(self, file: &Path, tools: &TextTools, diags: &mut Vec<Diagnostic>) -> Settings {
        let _ = self.description;
        let words = |list: &[Spanned<String>], lang, diags: &mut Vec<Diagnostic>| {
            list.iter()
                .filter_map(|w| word_term(file, w, TermKind::Keyword, 1.0, lang, tools, diags))
                .collect::<Vec<_>>()
        };
        let mut negation_cues = Vec::new();
        for (lang, cues) in self.negation.cues.each() {
            negation_cues.extend(words(cues, Some(lang), diags));
        }
        Settings {
            min_score: ranged(
                file,
                &self.min_score,
                1.0,
                (0.01, 100.0),
                "min_score",
                diags,
            ),
            confident_score: ranged(
                file,
                &self.confident_score,
                4.0,
                (0.01, 1000.0),
                "confident_score",
                diags,
            ),
            phrase_gap: ranged(file, &self.phrase_gap, 4, (0, 20), "phrase_gap", diags),
            fuzzy_min_similarity: ranged(
                file,
                &self.fuzzy.min_similarity,
                0.75,
                (0.5, 1.0),
                "fuzzy.min_similarity",
                diags,
            ),
            fuzzy_weight: ranged(
                file,
                &self.fuzzy.weight,
                0.6,
                (0.0, 1.0),
                "fuzzy.weight",
                diags,
            ),
            negation_scope: ranged(
                file,
                &self.negation.scope,
                4,
                (0, 20),
                "negation.scope",
                diags,
            ),
            negation_cues,
            cantonese_markers: words(&self.cantonese_markers, Some(Language::Cantonese), diags),
        }
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A single word (no spaces) normalised, or a diagnostic saying why it cannot be one.
fn word_term(
    file: &Path,
    w: &Spanned<String>,
    kind: TermKind,
    weight: f32,
    lang: Option<Language>,
    tools: &TextTools,
    diags: &mut Vec<Diagnostic>,
) -> Option<Term> {
    let at = source(file, w);
    if w.value.split_whitespace().count() > 1 {
        diags.push(at.diag(format!(
            "`{}` has spaces: put entries of several words under `phrases`",
            w.value
        )));
        return None;
    }
    let norm = tools.normalize(&w.value);
    if norm.is_empty() || !norm.breaks.is_empty() {
        diags.push(at.diag(format!(
            "`{}` must be letters or characters only, without punctuation",
            w.value
        )));
        return None;
    }
    Some(Term {
        written: w.value.clone(),
        parts: vec![norm.chars],
        kind,
        weight,
        lang,
        at,
    })
}

fn check_weight(file: &Path, w: &Spanned<f32>, diags: &mut Vec<Diagnostic>) -> Option<f32> {
    if w.value.is_finite() && w.value > 0.0 && w.value <= 100.0 {
        Some(w.value)
    } else {
        diags.push(source(file, w).diag(format!(
            "weight must be above 0 and at most 100, not {}",
            w.value
        )));
        None
    }
}

impl RawIntent {
    fn check(self, file: &Path, tools: &TextTools, diags: &mut Vec<Diagnostic>) -> Option<Intent> {
        let before = diags.len();
        let at = source(file, &self.intent);
        if !is_name(&self.intent.value) {
            diags.push(at.diag(format!(
                "intent name `{}` must be lower-case letters, digits and `_`",
                self.intent.value
            )));
        }
        if let Some(queue) = &self.queue {
            diags.push(source(file, queue).diag(
                "`queue` is no longer read from grammars: the dialplan sends each intent to its \
                 queue (`queue: \"{intent}\"`, dialplans/README.md); delete this line",
            ));
        }
        let mut terms: Vec<Term> = Vec::new();
        for (lang, entries) in self.keywords.each() {
            for (word, weight) in &entries.0 {
                let weight = check_weight(file, weight, diags);
                let term = word_term(file, word, TermKind::Keyword, 1.0, Some(lang), tools, diags);
                if let (Some(weight), Some(term)) = (weight, term) {
                    terms.push(Term { weight, ..term });
                }
            }
        }
        for (lang, entries) in self.phrases.each() {
            for (phrase, weight) in &entries.0 {
                let weight = check_weight(file, weight, diags);
                if let (Some(weight), Some(term)) =
                    (weight, phrase_term(file, phrase, lang, tools, diags))
                {
                    terms.push(Term { weight, ..term });
                }
            }
        }
        if terms.is_empty() && diags.len() == before {
            diags.push(at.diag(format!(
                "intent `{}` has no keywords or phrases",
                self.intent.value
            )));
        }
        for (word, synonyms) in &self.synonyms.0 {
            let Some(keyword) = terms
                .iter()
                .find(|t| t.kind == TermKind::Keyword && t.written == word.value)
                .cloned()
            else {
                diags.push(source(file, word).diag(format!(
                    "synonyms of `{}`, which is not a keyword of this intent",
                    word.value
                )));
                continue;
            };
            for s in synonyms {
                let kind = TermKind::Synonym {
                    of: keyword.written.clone(),
                };
                let Some(term) = word_term(file, s, kind, keyword.weight, None, tools, diags)
                else {
                    continue;
                };
                if terms.iter().any(|t| t.parts == term.parts) {
                    diags.push(term.at.diag(format!(
                        "`{}` is already a keyword or synonym of this intent",
                        s.value
                    )));
                    continue;
                }
                terms.push(term);
            }
        }
        for (word, weight) in &self.negative.0 {
            let weight = check_weight(file, weight, diags);
            let term = word_term(file, word, TermKind::Negative, 1.0, None, tools, diags);
            if let (Some(weight), Some(term)) = (weight, term) {
                terms.push(Term { weight, ..term });
            }
        }
        let mut examples = Vec::new();
        for (lang, list) in self.examples.each() {
            for e in list {
                if tools.normalize(&e.value).is_empty() {
                    diags.push(source(file, e).diag("example is empty"));
                    continue;
                }
                examples.push(Example {
                    text: e.value.clone(),
                    lang,
                    at: source(file, e),
                });
            }
        }
        if examples.is_empty() && diags.len() == before {
            diags.push(at.diag(format!(
                "intent `{}` has no examples: give at least one sentence a caller would say",
                self.intent.value
            )));
        }
        if diags.len() > before {
            return None;
        }
        Some(Intent {
            name: self.intent.value,
            description: self.description,
            at,
            terms,
            examples,
        })
    }
}

fn phrase_term(
    file: &Path,
    phrase: &Spanned<String>,
    lang: Language,
    tools: &TextTools,
    diags: &mut Vec<Diagnostic>,
) -> Option<Term> {
    let at = source(file, phrase);
    let parts: Vec<Normalized> = phrase
        .value
        .split_whitespace()
        .map(|p| tools.normalize(p))
        .collect();
    if parts.len() < 2 {
        diags.push(at.diag(format!(
            "phrase `{}` needs two or more parts separated by spaces; put single words under `keywords`",
            phrase.value
        )));
        return None;
    }
    if parts.iter().any(|p| p.is_empty() || !p.breaks.is_empty()) {
        diags.push(at.diag(format!(
            "phrase `{}` must be letters or characters only, without punctuation",
            phrase.value
        )));
        return None;
    }
    Some(Term {
        written: phrase.value.clone(),
        parts: parts.into_iter().map(|p| p.chars).collect(),
        kind: TermKind::Phrase,
        weight: 1.0,
        lang: Some(lang),
        at,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::speech::text::test_tools;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh grammar folder under the system temp dir holding `files`.
    pub(crate) fn temp_grammar(files: &[(&str, &str)]) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hotline-grammar-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("temp file is writable");
        }
        dir
    }

    fn messages(dir: &Path) -> Vec<String> {
        match Grammar::load(dir, &test_tools()) {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .iter()
                .map(|d| {
                    let name = d.file.file_name().map(|n| n.to_string_lossy().into_owned());
                    format!(
                        "{}:{}:{}: {}",
                        name.unwrap_or_default(),
                        d.line,
                        d.column,
                        d.message
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_valid_intent_loads_with_terms_of_every_kind() {
        let dir = temp_grammar(&[(
            "a.yaml",
            "intent: a\nkeywords:\n  cmn: {社保: 3}\n  yue: {醫保: 2}\n\
             phrases:\n  cmn: {\"转 人工\": 2}\nsynonyms:\n  社保: [社会保障]\n\
             negative: {公积金: 1}\nexamples:\n  cmn: [查社保]\n",
        )]);
        let g = Grammar::load(&dir, &test_tools()).expect("valid");
        let a = g.intent("a").expect("intent a");
        let kinds: Vec<(&str, TermKind, f32)> = a
            .terms
            .iter()
            .map(|t| (t.written.as_str(), t.kind.clone(), t.weight))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("社保", TermKind::Keyword, 3.0),
                ("醫保", TermKind::Keyword, 2.0),
                ("转 人工", TermKind::Phrase, 2.0),
                (
                    "社会保障",
                    TermKind::Synonym {
                        of: "社保".into()
                    },
                    3.0
                ),
                ("公积金", TermKind::Negative, 1.0),
            ]
        );
        assert_eq!(a.terms[1].parts, vec![vec!['医', '保']]);
        assert_eq!(a.terms[1].at.line, 4);
        assert_eq!(g.settings.min_score, 1.0);
    }

    #[test]
    fn every_problem_of_every_file_is_reported_with_its_position() {
        let dir = temp_grammar(&[
            ("hotline.yaml", "min_score: 0\nfuzzy:\n  weight: 2\n"),
            (
                "a.yaml",
                "intent: Bad-Name\nkeywords:\n  cmn:\n    社保: 0\n    \"转 人工\": 1\n\
                 phrases:\n  cmn: {人工: 1}\nsynonyms:\n  医保: [x]\nexamples:\n  cmn: [\"，\"]\n",
            ),
            ("b.yaml", "intent: b\nkeywords:\n  cmn: {社保: 1}\n"),
            (
                "c.yaml",
                "intent: b\nkeywords:\n  cmn: {社保: 1}\nexamples:\n  cmn: [社保]\n",
            ),
            ("d.yaml", "intent: d\nkeywrods: {}\n"),
            ("e.yaml", "intent: e\nexamples:\n  yue: [社保]\n"),
        ]);
        assert_eq!(
            messages(&dir),
            vec![
                "a.yaml:1:9: intent name `Bad-Name` must be lower-case letters, digits and `_`",
                "a.yaml:4:9: weight must be above 0 and at most 100, not 0",
                "a.yaml:5:5: `转 人工` has spaces: put entries of several words under `phrases`",
                "a.yaml:7:9: phrase `人工` needs two or more parts separated by spaces; put single words under `keywords`",
                "a.yaml:9:3: synonyms of `医保`, which is not a keyword of this intent",
                "a.yaml:11:9: example is empty",
                "b.yaml:1:9: intent `b` has no examples: give at least one sentence a caller would say",
                &format!(
                    "c.yaml:1:9: intent `b` is already defined at {}:1:9",
                    dir.join("b.yaml").display()
                ),
                "d.yaml:2:1: unknown field `keywrods`, expected one of intent, queue, description, keywords, phrases, synonyms, negative, examples",
                "e.yaml:1:9: intent `e` has no keywords or phrases",
                "hotline.yaml:1:12: min_score must be between 0.01 and 100, not 0",
                "hotline.yaml:3:11: fuzzy.weight must be between 0 and 1, not 2",
            ]
        );
    }
}
