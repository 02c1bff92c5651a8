//! Telling Cantonese from Mandarin in a transcript: Cantonese writes words Mandarin never
//! uses (唔, 冇, 嘅, 咗, 喺, 啲, 搵, 攞...). The grammar's `cantonese_markers` list them;
//! one marker is enough, because a Mandarin speaker does not produce them and the
//! Mandarin model cannot (they are outside its vocabulary). Pure function on normalised
//! text; how to use it in a call flow is in grammars/README.md.

use super::Language;
use super::grammar::Term;
use super::text::Normalized;

#[derive(Debug, Clone, PartialEq)]
pub struct LanguageGuess {
    pub language: Language,
    /// The Cantonese-only words found, as written in the grammar.
    pub markers: Vec<String>,
}

pub(crate) fn guess(markers: &[Term], text: &Normalized) -> LanguageGuess {
    let found: Vec<String> = markers
        .iter()
        .filter(|m| {
            let part = &m.parts[0];
            text.chars.windows(part.len()).any(|w| w == part.as_slice())
        })
        .map(|m| m.written.clone())
        .collect();
    LanguageGuess {
        language: if found.is_empty() {
            Language::Mandarin
        } else {
            Language::Cantonese
        },
        markers: found,
    }
}

impl Default for LanguageGuess {
    /// No Cantonese word seen: Mandarin.
    fn default() -> Self {
        LanguageGuess {
            language: Language::Mandarin,
            markers: Vec::new(),
        }
    }
}
