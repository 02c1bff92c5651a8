//! Text normalisation shared by the intent classifier and grammar loading: traditional to
//! simplified characters (OpenCC, Hong Kong variants), full-width to half-width, dropping
//! the spaces Vosk puts between words, and marking where punctuation broke a clause; plus
//! jieba segmentation. Loading the OpenCC and jieba dictionaries is the slow part, so one
//! `TextTools` is built per process and shared (`Arc`). Owns no grammar knowledge.

use std::sync::Arc;
use std::time::Instant;

use ferrous_opencc::OpenCC;
use ferrous_opencc::config::BuiltinConfig;
use jieba_rs::Jieba;

use super::SpeechError;

/// The loaded dictionaries. Immutable after loading, so one instance serves every thread.
pub struct TextTools {
    opencc: OpenCC,
    jieba: Jieba,
}

/// A transcript or grammar term after normalisation: simplified characters, letters and
/// digits only, with the positions (in chars) where punctuation separated clauses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Normalized {
    pub chars: Vec<char>,
    /// Char positions `i` such that a clause break (punctuation) stood before `chars[i]`.
    pub breaks: Vec<usize>,
}

impl Normalized {
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Whether a clause break lies strictly between char positions `from` and `to`
    /// (`from < to`), i.e. before some char in `from+1..=to`.
    pub fn break_between(&self, from: usize, to: usize) -> bool {
        self.breaks.iter().any(|&b| b > from && b <= to)
    }
}

impl TextTools {
    /// Loads OpenCC's HK-traditional-to-simplified tables and jieba's default dictionary:
    /// about 130 ms and 34 MB in a release build (bench/speech_accuracy.sh), logged.
    pub fn load() -> Result<Arc<TextTools>, SpeechError> {
        let started = Instant::now();
        let opencc = OpenCC::from_config(BuiltinConfig::Hk2s)
            .map_err(|e| SpeechError::TextTools(e.to_string()))?;
        let jieba = Jieba::new();
        tracing::info!(load_time = ?started.elapsed(), "loaded OpenCC and jieba dictionaries");
        Ok(Arc::new(TextTools { opencc, jieba }))
    }

    /// Traditional to simplified, full-width to half-width, lower case; keeps letters and
    /// digits (CJK included) and turns punctuation into clause breaks. Whitespace is
    /// dropped without a break: Vosk separates every word with a space.
    pub fn normalize(&self, text: &str) -> Normalized {
        let simplified = self.opencc.convert(text);
        let mut out = Normalized::default();
        for c in simplified.chars().map(half_width) {
            if c.is_alphanumeric() {
                out.chars.extend(c.to_lowercase());
            } else if !c.is_whitespace() && out.breaks.last() != Some(&out.chars.len()) {
                out.breaks.push(out.chars.len());
            }
        }
        out
    }

    /// Word spans `(start, end)` in chars of normalised text, from jieba (HMM on, so
    /// unknown words such as names still come out whole).
    pub fn segment(&self, text: &Normalized) -> Vec<(usize, usize)> {
        let joined = text.text();
        self.jieba
            .cut(&joined, true)
            .into_iter()
            .map(|t| (t.start, t.end))
            .collect()
    }
}

/// Full-width ASCII forms (U+FF01..U+FF5E) and the ideographic space to their ASCII forms.
fn half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// One set of dictionaries for all unit tests of the module.
#[cfg(test)]
pub(crate) fn test_tools() -> Arc<TextTools> {
    static TOOLS: std::sync::OnceLock<Arc<TextTools>> = std::sync::OnceLock::new();
    TOOLS
        .get_or_init(|| TextTools::load().expect("dictionaries are built in"))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_full_width_and_vosk_spaces_are_normalised() {
        let t = test_tools();
        let n = t.normalize("醫保 報銷，要咩文件？ＡＢＣ１２");
        assert_eq!(n.text(), "医保报销要咩文件abc12");
        assert_eq!(n.breaks, vec![4, 8]);
        assert!(n.break_between(3, 4));
        assert!(!n.break_between(4, 7));
        assert_eq!(t.normalize("我 想 查询 社保").text(), "我想查询社保");
    }

    #[test]
    fn segmentation_spans_cover_the_text() {
        let t = test_tools();
        let n = t.normalize("我想查询社保缴费记录");
        let spans = t.segment(&n);
        assert_eq!(spans.first().map(|s| s.0), Some(0));
        assert_eq!(spans.last().map(|s| s.1), Some(n.chars.len()));
        assert!(spans.windows(2).all(|w| w[0].1 == w[1].0), "{spans:?}");
    }
}
