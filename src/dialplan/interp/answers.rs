//! The caller's answers to the waiting steps (`menu`, `ask`, `language`): keys, speech
//! results, and what a failed try leads to. Part of the interpreter's state machine; kept
//! apart from the step walking in `mod.rs`.

use std::sync::Arc;
use std::time::Instant;

use super::{Failure, Interpreter, Phase, SHORT_ANSWER};
use crate::dialplan::actions::{ListenRequest, Speech, SpeechResult, Unavailable};
use crate::dialplan::model::{Ask, PromptRef, StepKind, Target};
use crate::events::{EventKind, FallbackReason};

impl Interpreter {
    pub(super) fn digit(&mut self, now: Instant, key: char) {
        if !matches!(
            self.phase,
            Phase::Prompting | Phase::Waiting | Phase::Collecting | Phase::Speaking
        ) {
            return;
        }
        let plan = Arc::clone(&self.plan);
        match &plan.steps[self.step].kind {
            StepKind::Menu(m) => {
                self.stop_playback();
                if m.terminator == Some(key) {
                    self.digits_complete(now);
                    return;
                }
                self.digits.push(key);
                if self.digits.chars().count() >= m.max_digits as usize {
                    self.digits_complete(now);
                } else {
                    self.phase = Phase::Collecting;
                    self.deadline = Some(now + m.inter_digit_timeout);
                }
            }
            StepKind::Ask(a) if self.confirming => {
                if let Some(c) = &a.confirm {
                    if key == c.yes_key {
                        self.confirmed(now, a, true);
                    } else if key == c.no_key {
                        match self.choosing.take() {
                            // The second of the two offered.
                            Some(second) => {
                                self.vars.intent = Some(second);
                                self.confirmed(now, a, true);
                            }
                            None => self.confirmed(now, a, false),
                        }
                    }
                }
            }
            StepKind::Ask(a) => {
                self.vars.digits = Some(key.to_string());
                match a.keys.iter().find(|(k, _)| *k == key) {
                    Some((_, t)) => self.enter(now, t.step),
                    None => self.fail(now, Failure::NoMatch),
                }
            }
            StepKind::Language(l) => match l.keys.iter().find(|(k, _)| *k == key) {
                Some((_, lang)) => {
                    self.vars.digits = Some(key.to_string());
                    self.vars.language.clone_from(lang);
                    self.enter(now, l.next.step);
                }
                None => self.fail(now, Failure::NoMatch),
            },
            _ => {}
        }
    }

    pub(super) fn digits_complete(&mut self, now: Instant) {
        let plan = Arc::clone(&self.plan);
        let StepKind::Menu(m) = &plan.steps[self.step].kind else {
            return;
        };
        let digits = std::mem::take(&mut self.digits);
        if digits.is_empty() {
            return self.fail(now, Failure::NoInput);
        }
        let target = m
            .choices
            .iter()
            .find(|c| c.value == digits)
            .map(|c| c.target)
            .or(m.any);
        self.vars.digits = Some(digits);
        match target {
            Some(t) => self.enter(now, t.step),
            None => self.fail(now, Failure::NoMatch),
        }
    }

    pub(super) fn speech(&mut self, now: Instant, speech: Speech) {
        let plan = Arc::clone(&self.plan);
        let kind = &plan.steps[self.step].kind;
        let taking_input = matches!(
            self.phase,
            Phase::Prompting | Phase::Waiting | Phase::Speaking
        );
        match speech {
            Speech::Started | Speech::Partial(_) => {
                if matches!(&speech, Speech::Partial(text) if text.trim().is_empty())
                    || !matches!(self.phase, Phase::Prompting | Phase::Waiting)
                {
                    return;
                }
                // Barge-in: the caller talks over the prompt.
                self.stop_playback();
                self.phase = Phase::Speaking;
                let longest = match kind {
                    StepKind::Ask(a) if !self.confirming => a.max_speech,
                    _ => SHORT_ANSWER,
                };
                self.deadline = Some(now + longest);
            }
            Speech::Final(result) => {
                self.listening = None;
                if !taking_input {
                    return;
                }
                self.stop_playback();
                self.deadline = None;
                match kind {
                    StepKind::Ask(a) if self.confirming => self.confirm_answer(now, a, &result),
                    StepKind::Ask(a) => self.ask_answer(now, a, result),
                    StepKind::Language(_) => self.language_answer(now, &result),
                    _ => {}
                }
            }
            Speech::Unavailable(reason) => {
                self.listening = None;
                // Only `ask` needs speech; the other steps go on with keys alone.
                if let StepKind::Ask(a) = kind
                    && taking_input
                    && !self.confirming
                {
                    let (reason, target) = match reason {
                        Unavailable::PoolBusy => {
                            (FallbackReason::PoolBusy, a.busy.unwrap_or(a.unavailable))
                        }
                        Unavailable::NoRecognizer => (FallbackReason::NoRecognizer, a.unavailable),
                    };
                    self.event(EventKind::DtmfFallback {
                        call_id: self.call_id.clone(),
                        reason,
                    });
                    self.enter(now, target.step);
                }
            }
        }
    }

    fn ask_answer(&mut self, now: Instant, a: &Ask, result: SpeechResult) {
        if result.transcript.trim().is_empty() {
            return self.fail(now, Failure::NoInput);
        }
        self.vars.transcript = Some(result.transcript);
        // Unclear, or not clear enough, with two intents standing out: ask which.
        if let Some(c) = &a.confirm
            && let Some(choice) = &c.choice
            && result.confidence < c.below
            && let [(first, p1), (second, p2)] = result.alternatives.as_slice()
            && *p2 >= choice.min
        {
            self.vars.intent = Some(first.clone());
            self.vars.confidence = Some(*p1);
            self.choosing = Some(second.clone());
            // The answer names a service: the step's grammar classifies it.
            return self.ask_back(&choice.prompt, Some((a.grammar.clone(), Vec::new())));
        }
        match result.intent {
            Some(intent) if result.confidence >= a.min_confidence => {
                self.vars.intent = Some(intent);
                self.vars.confidence = Some(result.confidence);
                match &a.confirm {
                    Some(c) if result.confidence < c.below => {
                        let phrases: Vec<String> =
                            c.no_words.iter().chain(&c.yes_words).cloned().collect();
                        // Keys only when there are no words to hear.
                        let hear = (!phrases.is_empty()).then_some((None, phrases));
                        self.ask_back(&c.prompt, hear);
                    }
                    _ => self.accept(now, a),
                }
            }
            _ => self.fail(now, Failure::NoMatch),
        }
    }

    /// A confirmation or a choice: its question, answered by keys or, with `hear` (the
    /// grammar and phrases to listen with), a short spoken answer.
    fn ask_back(&mut self, prompt: &[PromptRef], hear: Option<(Option<String>, Vec<String>)>) {
        self.confirming = true;
        self.phase = Phase::Prompting;
        if let Some((grammar, phrases)) = hear {
            self.listen(ListenRequest {
                language: self.vars.language.clone(),
                detect_language: false,
                grammar,
                phrases,
                max_speech: SHORT_ANSWER,
            });
        }
        let prompts = self.resolve(prompt, &self.vars.language);
        self.play(prompts, true);
    }

    /// "No" words first: they usually contain the "yes" word (不是, 唔係). To a choice, the
    /// caller names one of the two.
    fn confirm_answer(&mut self, now: Instant, a: &Ask, result: &SpeechResult) {
        let Some(c) = &a.confirm else { return };
        if let Some(second) = self.choosing.take() {
            let first = self.vars.intent.clone();
            return match result.intent.as_deref() {
                Some(said) if Some(said) == first.as_deref() => self.confirmed(now, a, true),
                Some(said) if said == second => {
                    self.vars.intent = Some(second);
                    self.confirmed(now, a, true)
                }
                _ if result.transcript.trim().is_empty() => self.fail(now, Failure::NoInput),
                _ => self.fail(now, Failure::NoMatch),
            };
        }
        let said = |words: &[String]| words.iter().any(|w| result.transcript.contains(w.as_str()));
        if said(&c.no_words) {
            self.confirmed(now, a, false);
        } else if said(&c.yes_words) {
            self.confirmed(now, a, true);
        } else if result.transcript.trim().is_empty() {
            self.fail(now, Failure::NoInput);
        } else {
            self.fail(now, Failure::NoMatch);
        }
    }

    fn confirmed(&mut self, now: Instant, a: &Ask, yes: bool) {
        if yes {
            self.accept(now, a);
        } else {
            self.fail(now, Failure::NoMatch);
        }
    }

    fn accept(&mut self, now: Instant, a: &Ask) {
        self.confirming = false;
        self.choosing = None;
        let intent = self.vars.intent.clone().unwrap_or_default();
        let target = a
            .intents
            .iter()
            .find(|c| c.value == intent)
            .map(|c| c.target)
            .or(a.intent);
        let Some(target) = target else {
            self.vars.intent = None;
            self.vars.confidence = None;
            return self.fail(now, Failure::NoMatch);
        };
        self.event(EventKind::IntentRecognised {
            call_id: self.call_id.clone(),
            intent,
            confidence: self.vars.confidence.unwrap_or(0.0),
            language: self.vars.language.clone(),
            transcript: self.vars.transcript.clone().unwrap_or_default(),
        });
        self.enter(now, target.step);
    }

    fn language_answer(&mut self, now: Instant, result: &SpeechResult) {
        let plan = Arc::clone(&self.plan);
        let StepKind::Language(l) = &plan.steps[self.step].kind else {
            return;
        };
        let named = l
            .words
            .iter()
            .find(|(_, words)| words.iter().any(|w| result.transcript.contains(w.as_str())))
            .map(|(lang, _)| lang.clone());
        let detected = result
            .language
            .clone()
            .filter(|lang| plan.languages.contains(lang));
        match named.or(detected) {
            Some(lang) => {
                self.vars.language = lang;
                self.enter(now, l.next.step);
            }
            None if result.transcript.trim().is_empty() => self.fail(now, Failure::NoInput),
            None => self.fail(now, Failure::NoMatch),
        }
    }

    /// A failed attempt: try again with the failure's prompt, or give up to the step's
    /// outcome for it (after that prompt, so the caller hears why).
    pub(super) fn fail(&mut self, now: Instant, failure: Failure) {
        self.stop_playback();
        self.stop_listening();
        self.deadline = None;
        if std::mem::take(&mut self.confirming) {
            self.vars.intent = None;
            self.vars.confidence = None;
        }
        self.choosing = None;
        self.failures += 1;
        let plan = Arc::clone(&self.plan);
        let pick = |no_input: Target, no_match: Target| match failure {
            Failure::NoInput => no_input,
            Failure::NoMatch => no_match,
        };
        let (prompting, target) = match &plan.steps[self.step].kind {
            StepKind::Menu(m) => (&m.prompting, pick(m.no_input, m.no_match)),
            StepKind::Ask(a) => (&a.prompting, pick(a.no_input, a.no_match)),
            StepKind::Language(l) => {
                if self.failures < l.tries {
                    self.prompt(Some(failure));
                } else {
                    self.vars.language.clone_from(&l.default);
                    self.enter(now, l.next.step);
                }
                return;
            }
            _ => return,
        };
        if self.failures < prompting.tries {
            return self.prompt(Some(failure));
        }
        if matches!(plan.steps[self.step].kind, StepKind::Ask(_)) {
            self.event(EventKind::DtmfFallback {
                call_id: self.call_id.clone(),
                reason: FallbackReason::Failures,
            });
        }
        let language = self.vars.language.clone();
        let prompts = self.retry_prompts(prompting, Some(failure), &language);
        if prompts.is_empty() {
            self.enter(now, target.step);
        } else {
            self.play(prompts, false);
            self.phase = Phase::Leaving(target.step);
        }
    }
}
