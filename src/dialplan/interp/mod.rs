//! The per-call dialplan interpreter: a sans-IO state machine. It is fed inputs and the
//! current `Instant`, queues actions for the call task to carry out, and says when it next
//! needs `handle_timeout`. It never reads a clock, sleeps, or touches media or sockets; the
//! wall-clock time for `hours` steps is derived from the one given at `start`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::actions::{
    Action, CallInfo, Enqueue, Input, ListenId, ListenRequest, PlayId, PromptToPlay,
};
use super::model::{Ask, Dialplan, PromptRef, Prompting, Step, StepId, StepKind, Target};
use super::vars::Vars;
use crate::events::EventKind;

mod answers;

/// How long a caller may speak at a `choose_language` step or a confirmation.
const SHORT_ANSWER: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A `play` step's prompts.
    Playing,
    /// The step's prompt is playing and input is already accepted.
    Prompting,
    /// Prompt over; waiting for input until the deadline.
    Waiting,
    /// `menu`: some digits in, waiting for more.
    Collecting,
    /// The caller is speaking; waiting for the final result.
    Speaking,
    /// Playing a last no-input/no-match prompt before going on.
    Leaving(StepId),
    Queued,
    Transferring,
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    NoInput,
    NoMatch,
}

pub struct Interpreter {
    plan: Arc<Dialplan>,
    call_id: String,
    vars: Vars,
    origin: (Instant, Timestamp),
    step: StepId,
    phase: Phase,
    /// Failed attempts at the current step.
    failures: u32,
    /// `ask`: asking the caller to confirm the intent in `vars`.
    confirming: bool,
    /// `ask`: the confirmation is a choice between the intent in `vars` and this one.
    choosing: Option<String>,
    digits: String,
    deadline: Option<Instant>,
    playing: Option<PlayId>,
    listening: Option<ListenId>,
    last_id: u32,
    actions: VecDeque<Action>,
}

impl Interpreter {
    /// Starts the call at the plan's first step. `wall` is the wall-clock time at `now`.
    pub fn start(plan: Arc<Dialplan>, call: CallInfo, now: Instant, wall: Timestamp) -> Self {
        let vars = Vars {
            caller: call.caller,
            called: call.called,
            trunk: call.trunk,
            withheld: call.withheld,
            original_called: call.original_called,
            redirect_reason: call.redirect_reason,
            language: plan.default_language().to_owned(),
            ..Vars::default()
        };
        let start = plan.start;
        let mut interp = Interpreter {
            plan,
            call_id: call.call_id,
            vars,
            origin: (now, wall),
            step: start,
            phase: Phase::Finished,
            failures: 0,
            confirming: false,
            choosing: None,
            digits: String::new(),
            deadline: None,
            playing: None,
            listening: None,
            last_id: 0,
            actions: VecDeque::new(),
        };
        interp.enter(now, start);
        interp
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    pub fn plan(&self) -> &Arc<Dialplan> {
        &self.plan
    }

    /// The name of the step the call is at.
    pub fn step_name(&self) -> &str {
        self.plan
            .steps
            .get(self.step)
            .map_or("", |s| s.name.as_str())
    }

    /// True once the flow has hung up; nothing more will come out.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if d <= now => self.deadline = None,
            _ => return,
        }
        match self.phase {
            Phase::Waiting => self.fail(now, Failure::NoInput),
            Phase::Collecting => self.digits_complete(now),
            Phase::Speaking => self.fail(now, Failure::NoMatch),
            _ => {}
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::PromptDone(id) if self.playing == Some(id) => {
                self.playing = None;
                self.prompt_done(now);
            }
            Input::PromptDone(_) => {}
            Input::Digit(key) => self.digit(now, key),
            Input::Speech(id, speech) if self.listening == Some(id) => self.speech(now, speech),
            Input::Speech(..) => {}
            Input::QueueLeft { step } if self.phase == Phase::Queued => {
                let named = step.and_then(|s| self.plan.step_named(&s));
                let overflow = match &self.current().kind {
                    StepKind::Queue(q) => q.overflow.map(|t| t.step),
                    _ => None,
                };
                match named.or(overflow) {
                    Some(next) => self.enter(now, next),
                    None => self.hang_up("queue_left".into()),
                }
            }
            Input::TransferFailed if self.phase == Phase::Transferring => {
                let failed = match &self.current().kind {
                    StepKind::Transfer(t) => t.failed.map(|t| t.step),
                    _ => None,
                };
                match failed {
                    Some(next) => self.enter(now, next),
                    None => self.hang_up("transfer_failed".into()),
                }
            }
            Input::QueueLeft { .. } | Input::TransferFailed => {}
        }
    }

    fn current(&self) -> &Step {
        &self.plan.steps[self.step]
    }

    fn next_id(&mut self) -> u32 {
        self.last_id = self.last_id.wrapping_add(1);
        self.last_id
    }

    fn wall(&self, now: Instant) -> Timestamp {
        let (at, wall) = self.origin;
        wall.checked_add(now.saturating_duration_since(at))
            .unwrap_or(wall)
    }

    /// Resolves prompt names for the call's language (`{intent}` from its intent,
    /// `{runner_up}` from the second intent a choice offers).
    fn resolve(&self, refs: &[PromptRef], language: &str) -> Vec<PromptToPlay> {
        let intent = self.vars.intent.as_deref().unwrap_or("");
        let runner_up = self.choosing.as_deref().unwrap_or("");
        refs.iter()
            .map(|r| PromptToPlay {
                prompt: r
                    .id
                    .replace(PromptRef::INTENT_PLACEHOLDER, intent)
                    .replace(PromptRef::RUNNER_UP_PLACEHOLDER, runner_up),
                language: language.to_owned(),
            })
            .collect()
    }

    fn in_all_languages(&self, refs: &[PromptRef]) -> Vec<PromptToPlay> {
        self.plan
            .languages
            .iter()
            .flat_map(|lang| self.resolve(refs, lang))
            .collect()
    }

    fn play(&mut self, prompts: Vec<PromptToPlay>, barge_in: bool) {
        self.play_as(prompts, barge_in, false);
    }

    fn play_as(&mut self, prompts: Vec<PromptToPlay>, barge_in: bool, early: bool) {
        let id = PlayId(self.next_id());
        self.playing = Some(id);
        self.actions.push_back(Action::Play {
            id,
            prompts,
            barge_in,
            early,
        });
    }

    fn stop_playback(&mut self) {
        if let Some(id) = self.playing.take() {
            self.actions.push_back(Action::StopPlayback(id));
        }
    }

    fn listen(&mut self, request: ListenRequest) {
        self.stop_listening();
        let id = ListenId(self.next_id());
        self.listening = Some(id);
        self.actions.push_back(Action::Listen { id, request });
    }

    fn stop_listening(&mut self) {
        if let Some(id) = self.listening.take() {
            self.actions.push_back(Action::StopListening(id));
        }
    }

    fn event(&mut self, kind: EventKind) {
        self.actions.push_back(Action::Event(kind));
    }

    fn hang_up(&mut self, outcome: String) {
        self.stop_playback();
        self.stop_listening();
        self.deadline = None;
        self.phase = Phase::Finished;
        self.actions.push_back(Action::Hangup { outcome });
    }

    /// Goes to `step` and runs until something must be waited for.
    fn enter(&mut self, now: Instant, step: StepId) {
        self.stop_playback();
        self.stop_listening();
        self.deadline = None;
        self.failures = 0;
        self.confirming = false;
        self.digits.clear();
        let plan = Arc::clone(&self.plan);
        let mut step = step;
        loop {
            self.step = step;
            let Some(s) = plan.steps.get(step) else {
                // Only a plan that failed validation has unresolved steps; never run one.
                self.hang_up("invalid_dialplan".into());
                return;
            };
            tracing::debug!(step = %s.name, "dialplan step");
            let next: Target = match &s.kind {
                StepKind::Play(p) => {
                    let prompts = if p.all_languages {
                        self.in_all_languages(&p.prompts)
                    } else {
                        self.resolve(&p.prompts, &self.vars.language)
                    };
                    self.play_as(prompts, false, p.early);
                    self.phase = Phase::Playing;
                    return;
                }
                StepKind::Menu(_) | StepKind::Ask(_) | StepKind::Language(_) => {
                    self.prompt(None);
                    return;
                }
                StepKind::Queue(q) => {
                    if self.vars.intent.is_none() {
                        self.vars.intent.clone_from(&q.intent);
                    }
                    let Some(queue) = q.queue_for(self.vars.intent.as_deref()) else {
                        // `queue: "{intent}"` with no intent to name it: the queue gives
                        // the call back at once.
                        match q.overflow {
                            Some(t) => {
                                step = t.step;
                                continue;
                            }
                            None => return self.hang_up("queue_left".into()),
                        }
                    };
                    self.phase = Phase::Queued;
                    self.actions.push_back(Action::Enqueue(Enqueue {
                        queue,
                        language: self.vars.language.clone(),
                        intent: self.vars.intent.clone(),
                        priority: q.priority,
                        vars: self.vars.clone(),
                        prompts: self.resolve(&q.prompt, &self.vars.language),
                    }));
                    return;
                }
                StepKind::Hours(h) => {
                    let open = plan
                        .schedules
                        .get(&h.schedule)
                        .is_some_and(|s| s.is_open(&plan.calendar, self.wall(now)));
                    if open { h.open } else { h.closed }
                }
                StepKind::Transfer(t) => {
                    self.phase = Phase::Transferring;
                    self.actions.push_back(Action::Transfer {
                        to: t.to.clone(),
                        method: t.method,
                        vars: self.vars.clone(),
                        ring_timeout: t.ring_timeout,
                    });
                    return;
                }
                StepKind::Hangup(h) => {
                    self.hang_up(h.outcome.clone());
                    return;
                }
                StepKind::Goto(t) => *t,
                StepKind::Switch(sw) => {
                    let value = self.vars.text(sw.var);
                    sw.cases
                        .iter()
                        .find(|c| c.value == value)
                        .map_or(sw.default, |c| c.target)
                }
                StepKind::Branch(b) => b
                    .cases
                    .iter()
                    .find(|(c, _)| c.holds(&self.vars))
                    .map_or(b.otherwise, |(_, t)| *t),
            };
            step = next.step;
        }
    }

    /// Plays the waiting step's prompt (after the failure's own prompt when retrying) and
    /// starts taking input.
    fn prompt(&mut self, retry: Option<Failure>) {
        let plan = Arc::clone(&self.plan);
        let language = self.vars.language.clone();
        self.phase = Phase::Prompting;
        self.deadline = None;
        self.digits.clear();
        match &plan.steps[self.step].kind {
            StepKind::Menu(m) => {
                let p = &m.prompting;
                let mut prompts = self.retry_prompts(p, retry, &language);
                prompts.extend(self.resolve(&p.prompt, &language));
                self.play(prompts, true);
            }
            StepKind::Ask(a) => {
                let p = &a.prompting;
                if a.barge_in {
                    self.listen(self.ask_request(a));
                }
                let mut prompts = self.retry_prompts(p, retry, &language);
                prompts.extend(self.resolve(&p.prompt, &language));
                self.play(prompts, a.barge_in);
            }
            StepKind::Language(l) => {
                if !l.words.is_empty() {
                    let phrases = l.words.iter().flat_map(|(_, w)| w.clone()).collect();
                    self.listen(ListenRequest {
                        language,
                        detect_language: true,
                        grammar: None,
                        phrases,
                        max_speech: SHORT_ANSWER,
                    });
                }
                let prompts = self.in_all_languages(&l.prompt);
                self.play(prompts, true);
            }
            _ => {}
        }
    }

    fn retry_prompts(
        &self,
        p: &Prompting,
        failure: Option<Failure>,
        language: &str,
    ) -> Vec<PromptToPlay> {
        match failure {
            Some(Failure::NoInput) => self.resolve(&p.no_input_prompt, language),
            Some(Failure::NoMatch) => self.resolve(&p.no_match_prompt, language),
            None => Vec::new(),
        }
    }

    fn ask_request(&self, a: &Ask) -> ListenRequest {
        ListenRequest {
            language: self.vars.language.clone(),
            detect_language: false,
            grammar: a.grammar.clone(),
            phrases: Vec::new(),
            max_speech: a.max_speech,
        }
    }

    fn prompt_done(&mut self, now: Instant) {
        let plan = Arc::clone(&self.plan);
        match self.phase {
            Phase::Playing => {
                if let StepKind::Play(p) = &plan.steps[self.step].kind {
                    self.enter(now, p.next.step);
                }
            }
            Phase::Leaving(next) => self.enter(now, next),
            Phase::Prompting => {
                let timeout = match &plan.steps[self.step].kind {
                    StepKind::Menu(m) => m.prompting.timeout,
                    StepKind::Ask(a) if self.confirming => a
                        .confirm
                        .as_ref()
                        .map_or(a.prompting.timeout, |c| c.timeout),
                    StepKind::Ask(a) => {
                        if !a.barge_in {
                            self.listen(self.ask_request(a));
                        }
                        a.prompting.timeout
                    }
                    StepKind::Language(l) => l.timeout,
                    _ => return,
                };
                self.phase = Phase::Waiting;
                self.deadline = Some(now + timeout);
            }
            _ => {}
        }
    }
}
