//! The learned intent model: multinomial logistic regression over character n-grams
//! (1 to 3), jieba words and the operator's grammar scores, trained on the corpus of
//! caller requests in `grammars/<hotline>/corpus/`. One class per intent plus `none` (out
//! of scope: greetings, wrong numbers, fillers), so "route nowhere" is learned, not a
//! threshold on a keyword score. Confidence is the class probability, calibrated by a
//! temperature fitted on the dev split. Training is deterministic (fixed order seed,
//! fixed epochs) and takes about a second. Pure: examples in, weights out; no I/O.
//!
//! The grammar's score for each intent is a feature whose weight is learned like any
//! other: an operator who adds a keyword or a negative word moves the decision without
//! retraining by hand, and the model learns how far the keyword grammar is to be trusted.

use std::collections::HashMap;

/// The class that routes nowhere.
pub const NONE: &str = "none";

/// Training passes over the corpus.
const EPOCHS: usize = 14;
/// AdaGrad's step (0.1, 0.2, 0.4 and 0.8 were tried on the dev split; 0.2 did best).
const LEARNING_RATE: f32 = 0.2;
/// Grammar scores are divided by this before they become features, so one strong keyword
/// is about 1.
const GRAMMAR_SCALE: f32 = 3.0;

/// One feature of one text, with its value.
pub(crate) type Feature = (String, f32);

/// The features of a normalised text: character n-grams with boundary marks, pairs of
/// adjacent sounds (`sounds`: each character's folded syllable, none for characters
/// without a reading), words, and the grammar's score per intent (`grammar`, intents it
/// did not score are absent). The sound pairs let a recogniser's homophone slip (射保 for
/// 社保) count as the word meant.
pub(crate) fn features(
    chars: &[char],
    sounds: &[Option<String>],
    words: &[String],
    grammar: &[(&str, f32)],
) -> Vec<Feature> {
    let mut out: Vec<Feature> = Vec::with_capacity(chars.len() * 3 + words.len() + 4);
    if chars.is_empty() {
        out.push(("empty".into(), 1.0));
        return out;
    }
    let padded: Vec<char> = std::iter::once('^')
        .chain(chars.iter().copied())
        .chain(std::iter::once('$'))
        .collect();
    for n in 1..=3 {
        for w in padded.windows(n) {
            if n == 1 && (w[0] == '^' || w[0] == '$') {
                continue;
            }
            out.push((format!("c{n}:{}", w.iter().collect::<String>()), 1.0));
        }
    }
    for pair in sounds.windows(2) {
        if let [Some(a), Some(b)] = pair {
            out.push((format!("s2:{a} {b}"), 1.0));
        }
    }
    for w in words {
        out.push((format!("w:{w}"), 1.0));
    }
    for &(intent, score) in grammar {
        out.push((
            format!("g:{intent}"),
            (score / GRAMMAR_SCALE).clamp(-2.0, 2.0),
        ));
    }
    out
}

/// A labelled example, already turned into features.
pub(crate) struct Sample {
    pub features: Vec<Feature>,
    pub class: usize,
}

/// The trained weights.
#[derive(Debug, Clone)]
pub(crate) struct IntentModel {
    classes: Vec<String>,
    index: HashMap<String, u32>,
    /// `index.len() × classes.len()`, row per feature.
    weights: Vec<f32>,
    bias: Vec<f32>,
    temperature: f32,
}

/// One feature's pull towards a class.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: String,
    pub class: String,
    pub weight: f32,
}

impl IntentModel {
    /// Trains on `train`; `classes[c]` names class `c` (the intents, then `none`).
    pub fn train(classes: Vec<String>, train: &[Sample]) -> IntentModel {
        // Every feature seen in training, in a fixed order.
        let mut names: Vec<&str> = train
            .iter()
            .flat_map(|s| s.features.iter().map(|(f, _)| f.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let index: HashMap<String, u32> = names
            .iter()
            .enumerate()
            .map(|(i, f)| ((*f).to_owned(), i as u32))
            .collect();
        let k = classes.len();
        let mut model = IntentModel {
            classes,
            weights: vec![0.0; index.len() * k],
            bias: vec![0.0; k],
            index,
            temperature: 1.0,
        };
        let rows: Vec<(Vec<(u32, f32)>, usize)> = train
            .iter()
            .map(|s| (model.rows(&s.features), s.class))
            .collect();
        let mut grad_sq = vec![1e-6f32; model.weights.len()];
        let mut bias_sq = vec![1e-6f32; k];
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut probs = vec![0.0f32; k];
        for _ in 0..EPOCHS {
            shuffle(&mut order, &mut seed);
            for &i in &order {
                let (x, y) = &rows[i];
                model.logits(x, &mut probs);
                softmax(&mut probs, 1.0);
                for c in 0..k {
                    let g = probs[c] - if c == *y { 1.0 } else { 0.0 };
                    if g.abs() < 1e-7 {
                        continue;
                    }
                    bias_sq[c] += g * g;
                    model.bias[c] -= LEARNING_RATE * g / bias_sq[c].sqrt();
                    for &(f, v) in x {
                        let at = f as usize * k + c;
                        let gv = g * v;
                        grad_sq[at] += gv * gv;
                        model.weights[at] -= LEARNING_RATE * gv / grad_sq[at].sqrt();
                    }
                }
            }
        }
        model
    }

    /// Fits the temperature that makes the probabilities honest on held-out `dev` samples
    /// (lowest negative log-likelihood over a grid).
    pub fn calibrate(&mut self, dev: &[Sample]) {
        if dev.is_empty() {
            return;
        }
        let logits: Vec<(Vec<f32>, usize)> = dev
            .iter()
            .map(|s| {
                let mut z = vec![0.0; self.classes.len()];
                self.logits(&self.rows(&s.features), &mut z);
                (z, s.class)
            })
            .collect();
        let nll = |t: f32| -> f32 {
            logits
                .iter()
                .map(|(z, y)| {
                    let mut p = z.clone();
                    softmax(&mut p, t);
                    -p[*y].max(1e-9).ln()
                })
                .sum()
        };
        let mut best = (1.0, nll(1.0));
        for step in 2..=60 {
            let t = step as f32 * 0.1;
            let v = nll(t);
            if v < best.1 {
                best = (t, v);
            }
        }
        self.temperature = best.0;
    }

    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// Calibrated probability of each class.
    pub fn predict(&self, features: &[Feature]) -> Vec<f32> {
        let mut p = vec![0.0; self.classes.len()];
        self.logits(&self.rows(features), &mut p);
        softmax(&mut p, self.temperature);
        p
    }

    /// The features that pulled hardest towards `class`, strongest first.
    pub fn explain(&self, features: &[Feature], class: usize, top: usize) -> Vec<Contribution> {
        let k = self.classes.len();
        let mut out: Vec<Contribution> = features
            .iter()
            .filter_map(|(f, v)| {
                let i = *self.index.get(f)? as usize;
                let w = self.weights[i * k + class] * v;
                (w.abs() > 1e-3).then(|| Contribution {
                    feature: f.clone(),
                    class: self.classes[class].clone(),
                    weight: w,
                })
            })
            .collect();
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        out.truncate(top);
        out
    }

    fn rows(&self, features: &[Feature]) -> Vec<(u32, f32)> {
        features
            .iter()
            .filter_map(|(f, v)| Some((*self.index.get(f)?, *v)))
            .collect()
    }

    fn logits(&self, x: &[(u32, f32)], out: &mut [f32]) {
        let k = self.classes.len();
        out.copy_from_slice(&self.bias);
        for &(f, v) in x {
            let row = &self.weights[f as usize * k..f as usize * k + k];
            for (o, w) in out.iter_mut().zip(row) {
                *o += w * v;
            }
        }
    }
}

fn softmax(z: &mut [f32], temperature: f32) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = ((*v - max) / temperature).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

/// Fisher-Yates with xorshift: the same order on every machine.
fn shuffle(order: &mut [usize], seed: &mut u64) {
    for i in (1..order.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = (*seed % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, class: usize) -> Sample {
        let chars: Vec<char> = text.chars().collect();
        Sample {
            features: features(&chars, &[], &[], &[]),
            class,
        }
    }

    fn classes() -> Vec<String> {
        ["water", "noise", NONE].map(String::from).to_vec()
    }

    #[test]
    fn features_are_ngrams_sounds_words_and_scaled_grammar_scores() {
        let chars: Vec<char> = "停水".chars().collect();
        let sounds = [Some("tin".to_owned()), Some("sui".to_owned())];
        let grammar = [("water", 6.0), ("noise", -9.0)];
        let f = features(&chars, &sounds, &["停水".into()], &grammar);
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "c1:停",
                "c1:水",
                "c2:^停",
                "c2:停水",
                "c2:水$",
                "c3:^停水",
                "c3:停水$",
                "s2:tin sui",
                "w:停水",
                "g:water",
                "g:noise"
            ]
        );
        assert_eq!(f[9].1, 2.0);
        assert_eq!(f[10].1, -2.0);
        assert_eq!(features(&[], &[], &[], &[]), [("empty".to_owned(), 1.0)]);
    }

    #[test]
    fn learns_unseen_combinations_and_out_of_scope() {
        let train = [
            sample("家里停水了", 0),
            sample("水管没水", 0),
            sample("今天停水吗", 0),
            sample("楼上太吵了", 1),
            sample("半夜很吵", 1),
            sample("工地噪音", 1),
            sample("喂你好", 2),
            sample("打错了", 2),
            sample("喂喂", 2),
        ];
        let model = IntentModel::train(classes(), &train);
        let best = |text: &str| {
            let chars: Vec<char> = text.chars().collect();
            let p = model.predict(&features(&chars, &[], &[], &[]));
            let (c, _) = p
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("classes");
            model.classes[c].clone()
        };
        assert_eq!(best("小区停水"), "water");
        assert_eq!(best("隔壁吵"), "noise");
        assert_eq!(best("喂"), "none");
        let chars: Vec<char> = "停水".chars().collect();
        let why = model.explain(&features(&chars, &[], &[], &[]), 0, 3);
        assert!(why.iter().any(|c| c.feature == "c2:停水"), "{why:?}");
        assert!(why.windows(2).all(|w| w[0].weight >= w[1].weight));
    }

    #[test]
    fn training_is_deterministic_and_calibration_keeps_the_ranking() {
        let train = [sample("停水", 0), sample("很吵", 1), sample("喂", 2)];
        let a = IntentModel::train(classes(), &train);
        let b = IntentModel::train(classes(), &train);
        assert_eq!(a.weights, b.weights);
        let mut c = a.clone();
        c.calibrate(&[sample("停水了", 0), sample("吵死了", 1), sample("喂喂", 2)]);
        assert!(c.temperature() > 0.0);
        let chars: Vec<char> = "停水".chars().collect();
        let f = features(&chars, &[], &[], &[]);
        let (pa, pc) = (a.predict(&f), c.predict(&f));
        let argmax = |p: &[f32]| {
            p.iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1))
                .map(|(i, _)| i)
        };
        assert_eq!(argmax(&pa), argmax(&pc));
        assert!((pc.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}
