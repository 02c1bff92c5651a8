//! The intent classifier: a transcript in, a `Decision` out (intent, queue, confidence,
//! runner-up and the evidence behind them). Normalises the text, finds every grammar
//! word in it (exactly, or by pinyin when the recogniser misheard it), cancels words a
//! negation cue denies ("不是公积金") and sums weights per intent. When the grammar folder
//! has a corpus, the learned model (`intent_model`) decides from the text's n-grams and
//! words with those grammar scores as evidence, and `none` (out of scope) is one of its
//! answers; without one, the best grammar score decides. Deterministic: no clock, no I/O
//! after loading; compiled and trained once and shared.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::corpus::{self, Line, Split};
use super::grammar::{Grammar, Term, TermKind};
use super::intent_model::{self, Contribution, IntentModel, Sample};
use super::language::{LanguageGuess, guess};
use super::phonetic::{Syllable, reading};
use super::text::{Normalized, TextTools};
use crate::diag::Diagnostic;

/// An exact match that cuts across jieba's word boundaries ("工资" in "加工|资料") is
/// probably an accident of adjacent words: it earns this share of its weight.
const STRADDLE_FACTOR: f32 = 0.5;
/// Below this, one syllable is too far off for a pinyin match however good the rest is.
const MIN_SYLLABLE_SIMILARITY: f32 = 0.5;
/// Function words the recogniser gets right (its language model sees them everywhere):
/// a pinyin match may not reinterpret them, so 我也 never becomes 物业.
const FUNCTION_CHARS: &str = "我你他她它们的地得了着过是在有不没也都还就很太要想会能可以\
    吗呢吧啊呀哦嗯这那哪个么什怎该找给被把对和跟到去来说又再才让请帮一\
    嘅咗唔喺啲咩吓嚟佢冇系咁噉喇啦嘛咯";

/// A compiled grammar, shared by every call (`Arc<Classifier>`).
pub struct Classifier {
    grammar: Grammar,
    tools: Arc<TextTools>,
    terms: Vec<Compiled>,
    /// Learned from the grammar folder's corpus, when it has one.
    model: Option<IntentModel>,
    /// The corpus's dev and test lines, for `evaluate`.
    held_out: Vec<Line>,
}

struct Compiled {
    intent: usize,
    term: usize,
    /// Reading of each character, for pinyin matching; empty when the term is exact-only.
    syllables: Vec<Syllable>,
}

/// What the classifier decided about one transcript.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub transcript: String,
    /// The transcript as matched: simplified, without spaces and punctuation.
    pub normalized: String,
    /// jieba's segmentation of `normalized`.
    pub words: Vec<String>,
    /// The chosen intent, when one scored at least the grammar's `min_score`.
    pub intent: Option<Score>,
    /// The best other candidate (the best one at all when nothing was chosen).
    pub runner_up: Option<Score>,
    /// 0..1: how far the winner is ahead, damped while its score is small.
    pub confidence: f32,
    /// Every intent with a non-zero score, best first.
    pub scores: Vec<Score>,
    pub evidence: Vec<Evidence>,
    /// The learned model's strongest reasons for its answer (empty without a model).
    pub features: Vec<Contribution>,
    /// The model's probability that the request is out of scope; `None` when the grammar
    /// alone decided (no corpus, no model).
    pub out_of_scope: Option<f32>,
    pub language: LanguageGuess,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub intent: String,
    pub score: f32,
}

/// One grammar entry found in the transcript, and what it counted for.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub intent: String,
    /// The entry as written in the grammar.
    pub term: String,
    pub kind: TermKind,
    /// The characters of the transcript it matched.
    pub heard: String,
    /// Char offset of `heard` in the normalised transcript.
    pub position: usize,
    /// Heard by pinyin rather than matched character for character.
    pub pinyin: bool,
    /// Mean syllable similarity of a pinyin match; 1.0 for an exact one.
    pub similarity: f32,
    pub straddles_words: bool,
    /// The negation cue that denied it.
    pub negated_by: Option<String>,
    pub contribution: f32,
    /// `file:line:column` of the entry.
    pub at: String,
}

struct Found {
    term: usize,
    start: usize,
    end: usize,
    /// 1.0 unless heard by pinyin.
    similarity: f32,
    pinyin: bool,
    phrase: bool,
}

struct Weighed {
    evidence: Vec<Evidence>,
    scores: Vec<Score>,
}

impl Weighed {
    fn first_score(&self) -> f32 {
        self.scores.first().map_or(0.0, |s| s.score)
    }
}

impl Classifier {
    pub fn new(grammar: Grammar, tools: Arc<TextTools>) -> Classifier {
        let mut terms: Vec<Compiled> = Vec::new();
        for (i, intent) in grammar.intents.iter().enumerate() {
            for (t, term) in intent.terms.iter().enumerate() {
                // 醫保 under yue and 医保 under cmn are one word once normalised: count it
                // once, with the larger weight.
                let same = |other: &Term| {
                    other.parts == term.parts
                        && (other.kind == TermKind::Negative) == (term.kind == TermKind::Negative)
                };
                if intent.terms.iter().enumerate().any(|(o, other)| {
                    o != t
                        && same(other)
                        && (other.weight > term.weight || (other.weight == term.weight && o < t))
                }) {
                    continue;
                }
                let fuzzy = !matches!(term.kind, TermKind::Negative | TermKind::Phrase)
                    && term.parts[0].len() >= 2;
                let syllables: Option<Vec<Syllable>> = if fuzzy {
                    term.parts[0].iter().map(|c| reading(*c)).collect()
                } else {
                    None
                };
                terms.push(Compiled {
                    intent: i,
                    term: t,
                    syllables: syllables.unwrap_or_default(),
                });
            }
        }
        Classifier {
            grammar,
            tools,
            terms,
            model: None,
            held_out: Vec::new(),
        }
    }

    /// Loads and compiles the grammar folder `dir`, and trains the intent model on its
    /// corpus (about a second) when it has one.
    pub fn load(dir: &Path, tools: Arc<TextTools>) -> Result<Classifier, Vec<Diagnostic>> {
        let grammar = Grammar::load(dir, &tools)?;
        let names: Vec<&str> = grammar.intents.iter().map(|i| i.name.as_str()).collect();
        let (lines, problems) = corpus::load(dir, &names);
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut classifier = Classifier::new(grammar, tools);
        if !lines.is_empty() {
            classifier.train(lines);
        }
        Ok(classifier)
    }

    /// Trains the model on the train lines and the grammar's examples, calibrates it on
    /// the dev lines, and keeps dev and test for `evaluate`.
    fn train(&mut self, lines: Vec<Line>) {
        let started = std::time::Instant::now();
        let classes: Vec<String> = self
            .grammar
            .intents
            .iter()
            .map(|i| i.name.clone())
            .chain(std::iter::once(intent_model::NONE.to_owned()))
            .collect();
        let class_of = |name: &str| classes.iter().position(|c| c == name);
        let mut train = Vec::new();
        let mut dev = Vec::new();
        for line in &lines {
            let Some(class) = class_of(&line.intent) else {
                continue;
            };
            let sample = Sample {
                features: self.features(&line.text),
                class,
            };
            match line.split {
                Split::Train => train.push(sample),
                Split::Dev => dev.push(sample),
                Split::Test => {}
            }
        }
        for (class, intent) in self.grammar.intents.iter().enumerate() {
            for example in &intent.examples {
                train.push(Sample {
                    features: self.features(&example.text),
                    class,
                });
            }
        }
        let mut model = IntentModel::train(classes, &train);
        model.calibrate(&dev);
        tracing::info!(train = train.len(), dev = dev.len(), temperature = model.temperature(),
            time = ?started.elapsed(), "intent model trained");
        self.model = Some(model);
        self.held_out = lines
            .into_iter()
            .filter(|l| l.split != Split::Train)
            .collect();
    }

    /// The model's features of a text: normalised, segmented, scored by the grammar.
    fn features(&self, text: &str) -> Vec<intent_model::Feature> {
        let norm = self.tools.normalize(text);
        let spans = self.tools.segment(&norm);
        let weighed = self.grammar_scores(&norm, &spans);
        self.features_of(&norm, &spans, &weighed)
    }

    fn features_of(
        &self,
        norm: &Normalized,
        spans: &[(usize, usize)],
        weighed: &Weighed,
    ) -> Vec<intent_model::Feature> {
        let words: Vec<String> = spans
            .iter()
            .map(|&(s, e)| norm.chars[s..e].iter().collect())
            .collect();
        let grammar: Vec<(&str, f32)> = weighed
            .scores
            .iter()
            .map(|s| (s.intent.as_str(), s.score))
            .collect();
        let sounds: Vec<Option<String>> = norm
            .chars
            .iter()
            .map(|&c| reading(c).map(|s| s.folded()))
            .collect();
        intent_model::features(&norm.chars, &sounds, &words, &grammar)
    }

    /// Whether decisions come from the learned model.
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }

    /// The corpus lines of `split` (dev or test) through `classify`.
    pub fn evaluate(&self, split: Split) -> Evaluation {
        let mut e = Evaluation::default();
        for line in self.held_out.iter().filter(|l| l.split == split) {
            let got = self.classify(&line.text).intent.map(|s| s.intent);
            let right = match (&got, line.intent.as_str()) {
                (None, intent_model::NONE) => true,
                (Some(g), want) => g == want,
                (None, _) => false,
            };
            let lang = e.per_language.entry(line.language.clone()).or_default();
            lang.0 += 1;
            if right {
                lang.1 += 1;
            }
            if line.intent == intent_model::NONE {
                e.out_of_scope += 1;
                if got.is_some() {
                    e.false_routes += 1;
                }
            }
        }
        e
    }

    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    fn term(&self, c: &Compiled) -> &Term {
        &self.grammar.intents[c.intent].terms[c.term]
    }

    /// Finds the grammar's words in the transcript and decides. Pinyin matching is the
    /// fallback: it runs only when the exact words found are not enough to choose an
    /// intent, so a correctly recognised word is never reinterpreted as another.
    pub fn classify(&self, transcript: &str) -> Decision {
        let norm = self.tools.normalize(transcript);
        let spans = self.tools.segment(&norm);
        let weighed = self.grammar_scores(&norm, &spans);
        let mut decision = match &self.model {
            Some(model) => {
                let features = self.features_of(&norm, &spans, &weighed);
                self.decide_by_model(model, &features, weighed)
            }
            None => self.decide_by_grammar(weighed),
        };
        let text = &norm.chars;
        decision.transcript = transcript.to_owned();
        decision.normalized = norm.text();
        decision.words = spans
            .iter()
            .map(|&(s, e)| text[s..e].iter().collect())
            .collect();
        decision.language = guess(&self.grammar.settings.cantonese_markers, &norm);
        decision
    }

    /// The grammar's evidence and scores for a normalised transcript.
    fn grammar_scores(&self, norm: &Normalized, spans: &[(usize, usize)]) -> Weighed {
        let settings = &self.grammar.settings;
        let (exact, unmatched) = self.find_exact(&norm.chars);
        let mut weighed = self.weigh(norm, spans, &exact);
        if weighed.first_score() < settings.min_score {
            let fuzzy = self.find_fuzzy(&norm.chars, &unmatched, &exact);
            if !fuzzy.is_empty() {
                let all: Vec<Found> = exact.into_iter().chain(fuzzy).collect();
                weighed = self.weigh(norm, spans, &all);
            }
        }
        weighed
    }

    /// The learned model's answer: the likeliest class, `none` routing nowhere.
    fn decide_by_model(
        &self,
        model: &IntentModel,
        features: &[intent_model::Feature],
        weighed: Weighed,
    ) -> Decision {
        let probs = model.predict(features);
        let none = probs.len() - 1;
        let mut ranked: Vec<usize> = (0..probs.len()).collect();
        ranked.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
        let score = |c: usize| {
            let intent = &self.grammar.intents[c];
            Score {
                intent: intent.name.clone(),
                score: probs[c],
            }
        };
        let scores: Vec<Score> = ranked
            .iter()
            .filter(|&&c| c != none && probs[c] >= 0.005)
            .map(|&c| score(c))
            .collect();
        let best = choose(&probs, &ranked);
        let intent = (best != none).then(|| score(best));
        let runner_up = ranked
            .iter()
            .find(|&&c| c != none && c != best)
            .map(|&c| score(c));
        Decision {
            intent,
            runner_up,
            confidence: if best == none { 0.0 } else { probs[best] },
            scores,
            evidence: sorted_evidence(weighed.evidence),
            features: model.explain(features, best, 8),
            out_of_scope: Some(probs[none]),
            ..Decision::default()
        }
    }

    /// The best grammar score, when no model was trained.
    fn decide_by_grammar(&self, weighed: Weighed) -> Decision {
        let settings = &self.grammar.settings;
        let Weighed { evidence, scores } = weighed;
        let best = scores.first().filter(|s| s.score >= settings.min_score);
        let runner_up = match best {
            Some(_) => scores.get(1),
            None => scores.first(),
        }
        .filter(|s| s.score > 0.0)
        .cloned();
        let confidence = best.map_or(0.0, |b| {
            let second = runner_up.as_ref().map_or(0.0, |r| r.score.max(0.0));
            (b.score / settings.confident_score).min(1.0) * (b.score - second) / b.score
        });
        Decision {
            intent: best.cloned(),
            runner_up,
            confidence,
            scores,
            evidence: sorted_evidence(evidence),
            ..Decision::default()
        }
    }

    /// Every exact occurrence of every term, minus words inside longer words ("社保" in
    /// "社保卡", "出租" in "出租车": the longer one explains them); and the terms that did
    /// not occur but may still be heard by pinyin.
    fn find_exact(&self, text: &[char]) -> (Vec<Found>, Vec<usize>) {
        let gap = self.grammar.settings.phrase_gap;
        let mut found = Vec::new();
        let mut unmatched = Vec::new();
        for (i, c) in self.terms.iter().enumerate() {
            let term = self.term(c);
            if term.kind == TermKind::Phrase {
                if let Some((start, end)) = find_phrase(text, &term.parts, gap) {
                    found.push(Found {
                        term: i,
                        start,
                        end,
                        similarity: 1.0,
                        pinyin: false,
                        phrase: true,
                    });
                }
                continue;
            }
            let part = &term.parts[0];
            let before = found.len();
            found.extend(occurrences(text, part).map(|start| Found {
                term: i,
                start,
                end: start + part.len(),
                similarity: 1.0,
                pinyin: false,
                phrase: false,
            }));
            if found.len() == before && !c.syllables.is_empty() {
                unmatched.push(i);
            }
        }
        // Phrases and negative words count by their presence alone.
        let word =
            |f: &Found| !f.phrase && self.term(&self.terms[f.term]).kind != TermKind::Negative;
        let contained = |f: &Found| {
            word(f)
                && found.iter().any(|g| {
                    word(g)
                        && g.end - g.start > f.end - f.start
                        && g.start <= f.start
                        && f.end <= g.end
                })
        };
        let keep: Vec<bool> = found.iter().map(|f| !contained(f)).collect();
        let found = found
            .into_iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect();
        (found, unmatched)
    }

    /// Pinyin matches of the `unmatched` terms where no word matched exactly; one stretch
    /// of the transcript is heard as one word at most, the most similar.
    fn find_fuzzy(&self, text: &[char], unmatched: &[usize], exact: &[Found]) -> Vec<Found> {
        let min = self.grammar.settings.fuzzy_min_similarity;
        let heard: Vec<Option<Syllable>> = text
            .iter()
            .map(|c| reading(*c).filter(|_| !FUNCTION_CHARS.contains(*c)))
            .collect();
        let mut candidates: Vec<Found> = unmatched
            .iter()
            .filter_map(|&i| {
                let c = &self.terms[i];
                let part = &self.term(c).parts[0];
                best_fuzzy(text, &heard, part, &c.syllables, min).map(|(start, similarity)| Found {
                    term: i,
                    start,
                    end: start + part.len(),
                    similarity,
                    pinyin: true,
                    phrase: false,
                })
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then((b.end - b.start).cmp(&(a.end - a.start)))
        });
        let mut taken: Vec<(usize, usize)> = exact
            .iter()
            .filter(|g| !g.phrase)
            .map(|g| (g.start, g.end))
            .collect();
        let mut heard_as = Vec::new();
        for f in candidates {
            if taken.iter().all(|&(s, e)| f.end <= s || e <= f.start) {
                taken.push((f.start, f.end));
                heard_as.push(f);
            }
        }
        heard_as
    }

    /// What each match counts for (negation, pinyin and straddling discounts), merged per
    /// word, and the score of each intent, best first.
    fn weigh(&self, norm: &Normalized, spans: &[(usize, usize)], found: &[Found]) -> Weighed {
        let settings = &self.grammar.settings;
        let text = &norm.chars;
        let cues: Vec<(usize, &str)> = settings
            .negation_cues
            .iter()
            .flat_map(|cue| {
                let part = &cue.parts[0];
                occurrences(text, part).map(move |s| (s + part.len(), cue.written.as_str()))
            })
            .collect();
        let mut evidence: Vec<Evidence> = Vec::new();
        for f in found {
            let c = &self.terms[f.term];
            let term = self.term(c);
            let straddles = !f.pinyin && !f.phrase && straddles(spans, f);
            let negated_by = if term.kind == TermKind::Negative {
                None
            } else {
                cues.iter()
                    .find(|(cue_end, _)| {
                        *cue_end <= f.start
                            && f.start - cue_end <= settings.negation_scope
                            && !norm.break_between(cue_end - 1, f.start)
                    })
                    .map(|(_, w)| (*w).to_owned())
            };
            let mut value = term.weight;
            if f.pinyin {
                value *= settings.fuzzy_weight * f.similarity;
            }
            if straddles {
                value *= STRADDLE_FACTOR;
            }
            if negated_by.is_some() || term.kind == TermKind::Negative {
                value = -value;
            }
            let e = Evidence {
                intent: self.grammar.intents[c.intent].name.clone(),
                term: term.written.clone(),
                kind: term.kind.clone(),
                heard: text[f.start..f.end].iter().collect(),
                position: f.start,
                pinyin: f.pinyin,
                similarity: f.similarity,
                straddles_words: straddles,
                negated_by,
                contribution: value,
                at: term.at.to_string(),
            };
            // A word said twice counts once: keep its strongest occurrence.
            match evidence
                .iter_mut()
                .find(|o| o.intent == e.intent && o.term == e.term)
            {
                Some(o) if e.contribution.abs() > o.contribution.abs() => *o = e,
                Some(_) => {}
                None => evidence.push(e),
            }
        }
        let mut scores: Vec<Score> = self
            .grammar
            .intents
            .iter()
            .filter_map(|intent| {
                let mine = evidence.iter().filter(|e| e.intent == intent.name);
                let score: f32 = mine.map(|e| e.contribution).sum();
                (score != 0.0).then(|| Score {
                    intent: intent.name.clone(),
                    score,
                })
            })
            .collect();
        // Stable: equal scores keep grammar order.
        scores.sort_by(|a, b| b.score.total_cmp(&a.score));
        Weighed { evidence, scores }
    }

    /// Runs every example of the grammar; a diagnostic for each that does not land on its
    /// own intent.
    pub fn check_examples(&self) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        for intent in &self.grammar.intents {
            for example in &intent.examples {
                let d = self.classify(&example.text);
                let got = d.intent.as_ref().map(|s| s.intent.as_str());
                if got == Some(intent.name.as_str()) {
                    continue;
                }
                let own = d
                    .scores
                    .iter()
                    .find(|s| s.intent == intent.name)
                    .map_or(0.0, |s| s.score);
                let message = match &d.intent {
                    Some(other) => format!(
                        "example classifies as `{}` (score {:.2}), not `{}` (score {own:.2})",
                        other.intent, other.score, intent.name
                    ),
                    None => format!(
                        "example matches no intent (`{}` scores {own:.2}, below min_score {:.2})",
                        intent.name, self.grammar.settings.min_score
                    ),
                };
                diags.push(example.at.diag(message));
            }
        }
        diags
    }
}

/// The model's probability of `none` (the last class) from which a transcript routes
/// nowhere even when an intent is likelier: a caller who asks for nothing hears the
/// question again rather than lands in a queue. 0.3 was chosen on the dev split (the best
/// share right of 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5 and off: 97.3% right, out-of-scope
/// lines routed 5.8% -> 4.2%).
const NONE_FLOOR: f32 = 0.3;

/// The class decided from `probs` (`ranked` likeliest first; the last class is `none`).
fn choose(probs: &[f32], ranked: &[usize]) -> usize {
    let none = probs.len() - 1;
    if probs[none] >= NONE_FLOOR {
        none
    } else {
        ranked[0]
    }
}

/// Strongest evidence first, then in the order heard.
fn sorted_evidence(mut evidence: Vec<Evidence>) -> Vec<Evidence> {
    evidence.sort_by(|a, b| {
        b.contribution
            .abs()
            .total_cmp(&a.contribution.abs())
            .then(a.position.cmp(&b.position))
    });
    evidence
}

/// How the classifier did on a held-out split of the corpus.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Language -> (lines, routed right: the labelled intent, or nowhere for `none`).
    pub per_language: std::collections::BTreeMap<String, (usize, usize)>,
    /// `none` lines, and those routed to a queue anyway.
    pub out_of_scope: usize,
    pub false_routes: usize,
}

impl Evaluation {
    pub fn total(&self) -> (usize, usize) {
        self.per_language
            .values()
            .fold((0, 0), |(n, r), (ln, lr)| (n + ln, r + lr))
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |r: usize, n: usize| 100.0 * r as f64 / n.max(1) as f64;
        let (n, r) = self.total();
        write!(f, "{r}/{n} right ({:.1}%)", pct(r, n))?;
        for (lang, (ln, lr)) in &self.per_language {
            write!(f, "; {lang} {lr}/{ln} ({:.1}%)", pct(*lr, *ln))?;
        }
        write!(
            f,
            "; out of scope routed to a queue {}/{} ({:.1}%)",
            self.false_routes,
            self.out_of_scope,
            pct(self.false_routes, self.out_of_scope)
        )
    }
}

fn occurrences<'a>(text: &'a [char], part: &'a [char]) -> impl Iterator<Item = usize> + 'a {
    let n = part.len();
    (0..(text.len() + 1).saturating_sub(n)).filter(move |&s| &text[s..s + n] == part)
}

/// The first place where every part occurs in order, each within `gap` characters of the
/// previous one.
fn find_phrase(text: &[char], parts: &[Vec<char>], gap: usize) -> Option<(usize, usize)> {
    occurrences(text, &parts[0]).find_map(|start| {
        let mut end = start + parts[0].len();
        for part in &parts[1..] {
            let window_end = (end + gap + part.len()).min(text.len());
            let next = occurrences(&text[end..window_end], part).next()?;
            end += next + part.len();
        }
        Some((start, end))
    })
}

/// The window of the transcript that sounds most like the term, if it is close enough.
/// Characters without a usable reading (function words, Latin letters) only match
/// themselves.
fn best_fuzzy(
    text: &[char],
    heard: &[Option<Syllable>],
    part: &[char],
    term: &[Syllable],
    min: f32,
) -> Option<(usize, f32)> {
    if term.is_empty() || heard.len() < term.len() {
        return None;
    }
    let mut best: Option<(usize, f32)> = None;
    'window: for start in 0..=heard.len() - term.len() {
        let mut total = 0.0;
        for (i, t) in term.iter().enumerate() {
            let s = if text[start + i] == part[i] {
                1.0
            } else {
                heard[start + i].map_or(0.0, |h| h.similarity(t))
            };
            if s < MIN_SYLLABLE_SIMILARITY {
                continue 'window;
            }
            total += s;
        }
        let mean = total / term.len() as f32;
        if mean >= min && best.is_none_or(|(_, b)| mean > b) {
            best = Some((start, mean));
        }
    }
    best
}

/// Whether a match covers parts of two or more words and cuts one of them.
fn straddles(spans: &[(usize, usize)], f: &Found) -> bool {
    let touched: Vec<&(usize, usize)> = spans
        .iter()
        .filter(|(s, e)| *s < f.end && f.start < *e)
        .collect();
    match (touched.first(), touched.last()) {
        (Some(first), Some(last)) if touched.len() >= 2 => first.0 < f.start || last.1 > f.end,
        _ => false,
    }
}

impl fmt::Display for Decision {
    /// The operator's view: decision, runner-up, then each piece of evidence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "transcript: {}", self.transcript)?;
        writeln!(f, "words:      {}", self.words.join(" "))?;
        match (&self.intent, self.out_of_scope) {
            (Some(s), Some(_)) => writeln!(
                f,
                "intent:     {} (probability {:.2})",
                s.intent, self.confidence
            )?,
            (Some(s), None) => writeln!(
                f,
                "intent:     {} (score {:.2}, confidence {:.2})",
                s.intent, s.score, self.confidence
            )?,
            (None, Some(p)) => writeln!(f, "intent:     none (out of scope, probability {p:.2})")?,
            (None, None) => writeln!(f, "intent:     none (no intent reached min_score)")?,
        }
        let learned = self.out_of_scope.is_some();
        match (&self.runner_up, learned) {
            (Some(s), true) => {
                writeln!(f, "runner-up:  {} (probability {:.2})", s.intent, s.score)?
            }
            (Some(s), false) => writeln!(f, "runner-up:  {} (score {:.2})", s.intent, s.score)?,
            (None, _) => writeln!(f, "runner-up:  none")?,
        }
        if learned {
            writeln!(
                f,
                "model:      strongest features for `{}` (c1-c3: characters, s2: two sounds, w: word, g: grammar score)",
                self.intent
                    .as_ref()
                    .map_or(intent_model::NONE, |s| s.intent.as_str())
            )?;
            for c in &self.features {
                writeln!(f, "  {:+6.2}  {}", c.weight, c.feature)?;
            }
        }
        let markers = if self.language.markers.is_empty() {
            String::new()
        } else {
            format!(" (Cantonese words: {})", self.language.markers.join(" "))
        };
        writeln!(f, "language:   {}{markers}", self.language.language)?;
        if self.evidence.is_empty() {
            return writeln!(f, "evidence:   nothing in the grammar matched");
        }
        writeln!(f, "evidence:")?;
        for e in &self.evidence {
            let kind = match &e.kind {
                TermKind::Keyword => "keyword".to_owned(),
                TermKind::Synonym { of } => format!("synonym of {of}"),
                TermKind::Phrase => "phrase".to_owned(),
                TermKind::Negative => "negative word".to_owned(),
            };
            let mut how = String::new();
            if e.pinyin {
                how.push_str(&format!(
                    ", heard as {} (pinyin {:.2})",
                    e.heard, e.similarity
                ));
            } else if e.kind == TermKind::Phrase {
                how.push_str(&format!(", heard as {}", e.heard));
            }
            if e.straddles_words {
                how.push_str(", across word boundaries");
            }
            if let Some(cue) = &e.negated_by {
                how.push_str(&format!(", negated by {cue}"));
            }
            writeln!(
                f,
                "  {:+6.2}  {:<18} {kind} `{}`{how}  [{}]",
                e.contribution, e.intent, e.term, e.at
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::speech::Language;

    /// The grammar this repository ships, compiled once for all unit tests.
    pub(crate) fn shipped() -> Arc<Classifier> {
        static SHIPPED: std::sync::OnceLock<Arc<Classifier>> = std::sync::OnceLock::new();
        SHIPPED
            .get_or_init(|| {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars/12345");
                Arc::new(Classifier::load(&dir, test_tools()).expect("the shipped grammar loads"))
            })
            .clone()
    }
    use crate::speech::grammar::tests::temp_grammar;
    use crate::speech::text::test_tools;

    #[test]
    fn a_likely_enough_none_routes_nowhere_even_behind_an_intent() {
        // Classes: water, noise, none.
        let decide = |probs: [f32; 3]| {
            let mut ranked = vec![0, 1, 2];
            ranked.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
            choose(&probs, &ranked)
        };
        assert_eq!(decide([0.8, 0.1, 0.1]), 0);
        assert_eq!(
            decide([0.6, 0.05, 0.35]),
            2,
            "none at 0.35 outweighs water at 0.6"
        );
        assert_eq!(
            decide([0.5, 0.21, 0.29]),
            0,
            "below the floor the likeliest wins"
        );
        assert_eq!(decide([0.2, 0.2, 0.6]), 2);
    }

    fn classifier() -> Classifier {
        let dir = temp_grammar(&[
            (
                "hotline.yaml",
                "negation:\n  cues:\n    cmn: [不是, 不要]\n    yue: [唔係]\ncantonese_markers: [咩, 唔]\n",
            ),
            (
                "social.yaml",
                "intent: social_insurance\nkeywords:\n  cmn: {社保: 3, 社保卡: 3, 医保: 3}\n  yue: {醫保: 3}\nexamples:\n  cmn: [查社保]\n",
            ),
            (
                "fund.yaml",
                "intent: housing_fund\nkeywords:\n  cmn: {公积金: 3, 提取: 1}\nexamples:\n  cmn: [公积金提取]\n",
            ),
            (
                "labor.yaml",
                "intent: labor\nkeywords:\n  cmn: {工资: 2.5}\nphrases:\n  cmn: {\"没 发 工资\": 3}\nexamples:\n  cmn: [没发工资]\n",
            ),
            (
                "utilities.yaml",
                "intent: utilities\nkeywords:\n  cmn: {停水: 3, 暖气: 3}\nnegative: {污水: 2}\nexamples:\n  cmn: [停水了]\n",
            ),
            (
                "general.yaml",
                "intent: general\nkeywords:\n  cmn: {人工: 3}\nsynonyms:\n  人工: [员工]\nexamples:\n  cmn: [转人工]\n",
            ),
        ]);
        Classifier::load(&dir, test_tools()).expect("test grammar is valid")
    }

    fn intent(d: &Decision) -> Option<&str> {
        d.intent.as_ref().map(|s| s.intent.as_str())
    }

    #[test]
    fn a_keyword_picks_its_intent() {
        let d = classifier().classify("我想查一下社保");
        assert_eq!(intent(&d), Some("social_insurance"));
        assert_eq!(d.intent.as_ref().map(|s| s.score), Some(3.0));
        assert_eq!(d.runner_up, None);
        assert!((d.confidence - 0.75).abs() < 1e-6, "{}", d.confidence);
        assert_eq!(d.evidence.len(), 1);
        assert_eq!(d.evidence[0].term, "社保");
        assert!(
            d.evidence[0].at.ends_with("social.yaml:3:9"),
            "{}",
            d.evidence[0].at
        );
        let d = classifier().classify("公积金怎么提取");
        assert_eq!(
            d.intent.as_ref().map(|s| s.intent.as_str()),
            Some("housing_fund")
        );
        assert_eq!(d.intent.as_ref().map(|s| s.score), Some(4.0));
        assert_eq!(d.confidence, 1.0);
    }

    #[test]
    fn misheard_words_match_by_pinyin() {
        let d = classifier().classify("我想查一下射宝");
        assert_eq!(intent(&d), Some("social_insurance"), "{d}");
        let e = &d.evidence[0];
        assert!(e.pinyin);
        assert_eq!((e.term.as_str(), e.heard.as_str()), ("社保", "射宝"));
        assert!(
            (e.contribution - 3.0 * 0.6).abs() < 1e-6,
            "{}",
            e.contribution
        );
        // 公鸡金 for 公积金: one syllable (ji) is the same sound, the rest identical.
        assert_eq!(
            intent(&classifier().classify("公鸡金提取")),
            Some("housing_fund")
        );
    }

    #[test]
    fn pinyin_never_overrides_a_word_heard_exactly() {
        // 工资 is heard exactly; 公司 must not be re-read as 工资 or anything else.
        let d = classifier().classify("公司拖欠工资");
        assert!(d.evidence.iter().all(|e| !e.pinyin), "{d}");
        // Function words are not reinterpreted: 我也 is not 医保 however close.
        let d = classifier().classify("我也不知道");
        assert_eq!(intent(&d), None, "{d}");
    }

    #[test]
    fn negated_words_count_against_their_intent() {
        let d = classifier().classify("我不是问公积金，是社保");
        assert_eq!(intent(&d), Some("social_insurance"), "{d}");
        let fund = d
            .evidence
            .iter()
            .find(|e| e.intent == "housing_fund")
            .expect("公积金 is in the evidence");
        assert_eq!(fund.negated_by.as_deref(), Some("不是"));
        assert_eq!(fund.contribution, -3.0);
        assert_eq!(intent(&classifier().classify("不要人工")), None);
        // Punctuation ends the cue's reach.
        let d = classifier().classify("不是。公积金提取");
        assert_eq!(intent(&d), Some("housing_fund"), "{d}");
        // A Cantonese cue works on traditional text.
        let d = classifier().classify("唔係公積金，係醫保");
        assert_eq!(intent(&d), Some("social_insurance"), "{d}");
    }

    #[test]
    fn traditional_cantonese_input_is_normalised_and_detected() {
        let d = classifier().classify("醫保報銷要咩文件");
        assert_eq!(intent(&d), Some("social_insurance"));
        assert_eq!(d.language.language, Language::Cantonese);
        assert_eq!(d.language.markers, vec!["咩".to_owned()]);
        assert_eq!(
            classifier().classify("医保报销").language.language,
            Language::Mandarin
        );
    }

    #[test]
    fn nothing_in_the_grammar_means_no_intent() {
        let d = classifier().classify("今天天气怎么样");
        assert_eq!(intent(&d), None);
        assert_eq!(d.runner_up, None);
        assert_eq!(d.confidence, 0.0);
        assert!(d.evidence.is_empty());
        assert!(d.to_string().contains("nothing in the grammar matched"));
        assert_eq!(intent(&classifier().classify("")), None);
    }

    #[test]
    fn vosk_spacing_phrases_synonyms_and_negatives() {
        let c = classifier();
        assert_eq!(
            c.classify("我 想 查询 社保").evidence,
            c.classify("我想查询社保").evidence
        );
        let d = c.classify("公司 三个月 没 发 工资");
        assert_eq!(d.intent.as_ref().map(|s| s.score), Some(5.5), "{d}");
        let d = c.classify("转 员工");
        assert_eq!(intent(&d), Some("general"));
        assert_eq!(
            d.evidence[0].kind,
            TermKind::Synonym {
                of: "人工".into()
            }
        );
        // 污水 is a negative word of utilities: 停水 alone would be 3.
        let d = c.classify("停水了河里还有污水");
        assert_eq!(d.intent.as_ref().map(|s| s.score), Some(1.0), "{d}");
    }

    #[test]
    fn a_word_inside_a_longer_word_counts_once() {
        let d = classifier().classify("社保卡丢了");
        let terms: Vec<&str> = d.evidence.iter().map(|e| e.term.as_str()).collect();
        assert_eq!(terms, vec!["社保卡"]);
    }

    #[test]
    fn an_accidental_match_across_words_counts_half() {
        // 加工|资料: 工资 cuts two words.
        let d = classifier().classify("加工资料");
        let e = &d.evidence[0];
        assert!(e.straddles_words, "{d}");
        assert_eq!(e.contribution, 1.25);
    }

    #[test]
    fn runner_up_and_confidence_reflect_competition() {
        // A tie: either may win, the other is the runner-up, and confidence is nil.
        let d = classifier().classify("社保和公积金");
        let mut pair = vec![intent(&d), d.runner_up.as_ref().map(|s| s.intent.as_str())];
        pair.sort();
        assert_eq!(pair, vec![Some("housing_fund"), Some("social_insurance")]);
        assert_eq!(d.confidence, 0.0);
        let d = classifier().classify("社保卡和公积金提取");
        assert_eq!(intent(&d), Some("housing_fund"));
        assert!((d.confidence - 0.25).abs() < 1e-6, "{}", d.confidence);
        let report = d.to_string();
        assert!(
            report.contains("runner-up:  social_insurance (score 3.00)"),
            "{report}"
        );
    }

    #[test]
    fn examples_that_miss_their_intent_are_reported_where_written() {
        let dir = temp_grammar(&[
            (
                "a.yaml",
                "intent: a\nkeywords:\n  cmn: {社保: 3}\nexamples:\n  cmn: [社保, 公积金]\n",
            ),
            (
                "b.yaml",
                "intent: b\nkeywords:\n  cmn: {公积金: 3}\nexamples:\n  cmn: [天气]\n",
            ),
        ]);
        let c = Classifier::load(&dir, test_tools()).expect("valid");
        let diags: Vec<String> = c
            .check_examples()
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect();
        assert_eq!(
            diags,
            vec![
                "5:13: example classifies as `b` (score 3.00), not `a` (score 0.00)",
                "5:9: example matches no intent (`b` scores 0.00, below min_score 1.00)",
            ]
        );
    }
}
