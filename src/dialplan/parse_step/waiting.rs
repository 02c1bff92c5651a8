//! The steps that wait for the caller (`menu`, `ask` with its confirmation, `language`)
//! and the options they share: prompts for failed tries, keys, languages.

use std::time::Duration;

use super::{DTMF_KEYS, StepParser};
use crate::dialplan::model::{
    Ask, Case, Choice, Confirm, LanguageChoice, Menu, Pos, Prompting, StepKind, Target,
};
use crate::dialplan::yaml::{Fields, Node};

impl StepParser<'_, '_> {
    pub(super) fn prompting(&mut self, f: &mut Fields, main: &Node, tries: u32) -> Prompting {
        Prompting {
            prompt: self.main_prompts(main),
            no_input_prompt: f
                .take("no_input_prompt")
                .map(|n| self.prompts(n))
                .unwrap_or_default(),
            no_match_prompt: f
                .take("no_match_prompt")
                .map(|n| self.prompts(n))
                .unwrap_or_default(),
            timeout: self.duration(f, "timeout", Duration::from_secs(5)),
            tries: self.tries(f, tries),
        }
    }

    /// A DTMF key: a digit, `*`, `#` or A-D.
    pub(super) fn key(&mut self, node: &Node) -> Option<char> {
        let text = self.r.text(node, "a key")?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if DTMF_KEYS.contains(c) => Some(c),
            _ => {
                self.r
                    .error(node.pos, format!("`{text}` is not a key (0-9, *, #, A-D)"));
                None
            }
        }
    }

    pub(super) fn keyed_targets(&mut self, node: &Node, what: &str) -> Vec<(char, Target)> {
        let mut out = Vec::new();
        for (k, v) in self.r.map(node, what).unwrap_or_default() {
            let key = self.key(k);
            let target = self.target(v);
            out.extend(key.map(|k| (k, target)));
        }
        out
    }

    pub(super) fn declared_language(&mut self, node: &Node) -> Option<String> {
        let code = self.r.text(node, "a language")?;
        if self.languages.contains(&code) {
            Some(code)
        } else {
            self.r.error(
                node.pos,
                format!(
                    "language `{code}` is not declared in `languages` ({})",
                    self.languages.join(", ")
                ),
            );
            None
        }
    }

    pub(super) fn menu(&mut self, f: &mut Fields, at: Pos, main: &Node) -> Option<StepKind> {
        let prompting = self.prompting(f, main, 3);
        let max_digits = match f.take("max_digits") {
            Some(n) => self
                .r
                .uint(n, "`max_digits`")
                .filter(|m| *m >= 1)
                .or_else(|| {
                    self.r.error(n.pos, "`max_digits` must be at least 1");
                    None
                }),
            None => None,
        }
        .unwrap_or(1);
        let terminator = f.take("terminator").and_then(|n| self.key(n));
        let inter_digit_timeout = self.duration(f, "inter_digit_timeout", Duration::from_secs(3));
        let mut choices = Vec::new();
        if let Some(node) = f.take("choices") {
            for (k, v) in self.r.map(node, "`choices`").unwrap_or_default() {
                let target = self.target(v);
                let Some(digits) = self.r.text(k, "a choice") else {
                    continue;
                };
                if digits.is_empty() || !digits.chars().all(|c| DTMF_KEYS.contains(c)) {
                    self.r.error(
                        k.pos,
                        format!("choice `{digits}` is not made of keys (0-9, *, #, A-D)"),
                    );
                } else if digits.chars().count() > max_digits as usize {
                    self.r.error(
                        k.pos,
                        format!("choice `{digits}` is longer than `max_digits` ({max_digits})"),
                    );
                } else {
                    choices.push(Case {
                        value: digits,
                        at: k.pos,
                        target,
                    });
                }
            }
        }
        let any = self.optional(f, "any");
        if choices.is_empty() && any.is_none() {
            self.r.error(at, "a `menu` needs `choices`, `any` or both");
        }
        Some(StepKind::Menu(Menu {
            prompting,
            max_digits,
            terminator,
            inter_digit_timeout,
            choices,
            any,
            no_input: self.required(f, at, "no_input"),
            no_match: self.required(f, at, "no_match"),
        }))
    }

    pub(super) fn ask(&mut self, f: &mut Fields, at: Pos, main: &Node) -> Option<StepKind> {
        let prompting = self.prompting(f, main, 2);
        let barge_in = f
            .take("barge_in")
            .and_then(|n| self.r.boolean(n, "`barge_in`"))
            .unwrap_or(true);
        let max_speech = self.duration(f, "max_speech", Duration::from_secs(15));
        let grammar_node = f.take("grammar");
        let grammar = grammar_node.and_then(|n| self.r.text(n, "`grammar`"));
        let min_confidence = f
            .take("min_confidence")
            .and_then(|n| self.r.fraction(n, "`min_confidence`"))
            .unwrap_or(0.0);
        let confirm = f
            .take("confirm")
            .and_then(|n| self.confirm(n))
            .map(Box::new);
        let mut intents = Vec::new();
        if let Some(node) = f.take("intents") {
            for (k, v) in self.r.map(node, "`intents`").unwrap_or_default() {
                let target = self.target(v);
                intents.extend(self.r.text(k, "an intent").map(|value| Case {
                    value,
                    at: k.pos,
                    target,
                }));
            }
        }
        let intent = self.optional(f, "intent");
        if intents.is_empty() && intent.is_none() {
            self.r.error(
                at,
                "an `ask` needs `intent`, `intents` or both: where recognised callers go",
            );
        }
        let keys = f
            .take("keys")
            .map(|n| self.keyed_targets(n, "`keys`"))
            .unwrap_or_default();
        Some(StepKind::Ask(Ask {
            prompting,
            barge_in,
            max_speech,
            grammar,
            grammar_at: grammar_node.map_or(main.pos, |n| n.pos),
            min_confidence,
            confirm,
            intents,
            intent,
            keys,
            no_input: self.required(f, at, "no_input"),
            no_match: self.required(f, at, "no_match"),
            unavailable: self.required(f, at, "unavailable"),
            busy: self.optional(f, "busy"),
        }))
    }

    pub(super) fn confirm(&mut self, node: &Node) -> Option<Confirm> {
        let mut f = self.r.fields(node, "`confirm`")?;
        let below = f
            .require(self.r, node.pos, "below")
            .and_then(|n| self.r.fraction(n, "`below`"));
        let prompt = f
            .require(self.r, node.pos, "prompt")
            .map(|n| self.prompts(n))
            .unwrap_or_default();
        let yes_key = f.take("yes_key").and_then(|n| self.key(n)).unwrap_or('1');
        let no_key = f.take("no_key").and_then(|n| self.key(n)).unwrap_or('2');
        let mut words = |f: &mut Fields, key: &'static str| -> Vec<String> {
            f.take(key)
                .map(|n| self.r.texts(n, "a word"))
                .unwrap_or_default()
                .into_iter()
                .map(|(w, _)| w)
                .collect()
        };
        let yes_words = words(&mut f, "yes_words");
        let no_words = words(&mut f, "no_words");
        let timeout = self.duration(&mut f, "timeout", Duration::from_secs(5));
        let choice = f.take("choice").and_then(|n| self.choice(n));
        f.finish(self.r);
        if yes_key == no_key {
            self.r.error(
                node.pos,
                format!("`yes_key` and `no_key` are both `{yes_key}`"),
            );
        }
        Some(Confirm {
            below: below?,
            prompt,
            yes_key,
            no_key,
            yes_words,
            no_words,
            timeout,
            choice,
        })
    }

    fn choice(&mut self, node: &Node) -> Option<Choice> {
        let mut f = self.r.fields(node, "`choice`")?;
        let prompt = f
            .require(self.r, node.pos, "prompt")
            .map(|n| self.prompts(n))
            .unwrap_or_default();
        let min = match f.take("min") {
            Some(n) => self.r.fraction(n, "`min`")?,
            None => 0.1,
        };
        f.finish(self.r);
        Some(Choice { prompt, min })
    }

    pub(super) fn language(&mut self, f: &mut Fields, at: Pos, main: &Node) -> Option<StepKind> {
        let prompt = self.main_prompts(main);
        // `keys` and `default` name steps everywhere else: here they are spelt as what
        // they hold.
        for (old, new) in [("keys", "language_keys"), ("default", "default_language")] {
            if let Some(node) = f.take(old) {
                self.r.error(
                    node.pos,
                    format!("in `choose_language`, write `{new}` (it names languages, not steps)"),
                );
            }
        }
        let mut keys = Vec::new();
        if let Some(node) = f.take("language_keys") {
            for (k, v) in self.r.map(node, "`language_keys`").unwrap_or_default() {
                let key = self.key(k);
                let lang = self.declared_language(v);
                keys.extend(key.zip(lang));
            }
        }
        let mut words = Vec::new();
        if let Some(node) = f.take("words") {
            for (k, v) in self.r.map(node, "`words`").unwrap_or_default() {
                let lang = self.declared_language(k);
                let list = self
                    .r
                    .texts(v, "a word")
                    .into_iter()
                    .map(|(w, _)| w)
                    .collect();
                words.extend(lang.map(|l| (l, list)));
            }
        }
        if keys.is_empty() && words.is_empty() {
            self.r.error(
                at,
                "a `choose_language` step needs `language_keys`, `words` or both",
            );
        }
        let timeout = self.duration(f, "timeout", Duration::from_secs(5));
        let tries = self.tries(f, 2);
        let default = match f.take("default_language") {
            Some(n) => self.declared_language(n),
            None => self.languages.first().cloned(),
        }
        .unwrap_or_default();
        Some(StepKind::Language(LanguageChoice {
            prompt,
            keys,
            words,
            timeout,
            tries,
            default,
            next: self.required(f, at, "next"),
        }))
    }
}
