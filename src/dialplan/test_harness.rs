//! Test driver for the interpreter: loads a dialplan from text, plays the call task's part
//! with virtual time (an `Instant` moved by hand), and records every action.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::time::virtual_time::{Timed, advance};
use jiff::tz::TimeZone;

use super::{
    Action, Calendar, CallInfo, Dialplan, DialplanSet, Input, Interpreter, ListenId, PlayId,
    PromptToPlay, Speech, SpeechResult, Unavailable, ValidationContext,
};

impl Timed for Interpreter {
    fn poll_timeout(&self) -> Option<Instant> {
        Interpreter::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Interpreter::handle_timeout(self, now)
    }
}

pub fn calendar(holidays: &[&str]) -> Calendar {
    Calendar {
        timezone: TimeZone::fixed(jiff::tz::offset(8)),
        holidays: holidays
            .iter()
            .map(|d| d.parse().expect("a date"))
            .collect(),
    }
}

pub fn load_with(file: &str, yaml: &str, calendar: &Calendar) -> Arc<Dialplan> {
    let sources = [(PathBuf::from(file), yaml.to_owned())];
    match DialplanSet::from_sources(&sources, calendar, &ValidationContext::default()) {
        Ok(set) => Arc::clone(&set.plans()[0]),
        Err(diags) => panic!(
            "dialplan does not load:\n{}",
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

pub fn load(yaml: &str) -> Arc<Dialplan> {
    load_with("test.yaml", yaml, &calendar(&[]))
}

/// A Tuesday, 10:00 in UTC+8.
pub const TUESDAY_10AM: &str = "2025-06-03T02:00:00Z";

pub struct Call {
    pub interp: Interpreter,
    pub now: Instant,
    /// Every action so far.
    pub log: Vec<Action>,
    /// Actions since the last `take`.
    pub fresh: Vec<Action>,
    pub playing: Option<PlayId>,
    pub listening: Option<ListenId>,
}

impl Call {
    pub fn start(plan: Arc<Dialplan>) -> Call {
        Self::start_at(plan, TUESDAY_10AM)
    }

    pub fn start_at(plan: Arc<Dialplan>, wall: &str) -> Call {
        let now = Instant::now();
        let call = CallInfo {
            call_id: "call-1".into(),
            caller: "13800001111".into(),
            called: "12345".into(),
            trunk: Some("pbx".into()),
            ..CallInfo::default()
        };
        let wall: Timestamp = wall.parse().expect("a timestamp");
        let mut c = Call {
            interp: Interpreter::start(plan, call, now, wall),
            now,
            log: Vec::new(),
            fresh: Vec::new(),
            playing: None,
            listening: None,
        };
        c.drain();
        c
    }

    fn drain(&mut self) {
        while let Some(a) = self.interp.poll_action() {
            match &a {
                Action::Play { id, .. } => self.playing = Some(*id),
                Action::StopPlayback(id) if self.playing == Some(*id) => self.playing = None,
                Action::Listen { id, .. } => self.listening = Some(*id),
                Action::StopListening(id) if self.listening == Some(*id) => self.listening = None,
                _ => {}
            }
            self.log.push(a.clone());
            self.fresh.push(a);
        }
    }

    /// The actions since the last call.
    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.fresh)
    }

    pub fn input(&mut self, input: Input) {
        self.interp.handle(self.now, input);
        self.drain();
    }

    /// Moves virtual time on, firing the interpreter's timers that fall due, each at its
    /// own instant (`time::virtual_time::advance`).
    pub fn wait(&mut self, d: Duration) {
        let until = self.now + d;
        self.now = advance(&mut self.interp, until, |_, _| {});
        self.drain();
    }

    pub fn prompt_done(&mut self) {
        let id = self.playing.take().expect("a prompt is playing");
        self.input(Input::PromptDone(id));
    }

    pub fn key(&mut self, key: char) {
        self.input(Input::Digit(key));
    }

    pub fn speech(&mut self, speech: Speech) {
        let id = self.listening.expect("listening");
        if matches!(speech, Speech::Final(_) | Speech::Unavailable(_)) {
            self.listening = None;
        }
        self.input(Input::Speech(id, speech));
    }

    pub fn say(&mut self, transcript: &str, intent: Option<&str>, confidence: f32) {
        self.speech(Speech::Partial(transcript.into()));
        self.speech(Speech::Final(SpeechResult {
            alternatives: Vec::new(),
            transcript: transcript.into(),
            intent: intent.map(Into::into),
            confidence,
            language: None,
        }));
    }

    pub fn unavailable(&mut self, why: Unavailable) {
        self.speech(Speech::Unavailable(why));
    }

    pub fn step(&self) -> &str {
        self.interp.step_name()
    }
}

/// The prompts (as `name/lang`) of the `Play` actions among `actions`.
pub fn played(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Play { prompts, .. } => Some(prompts),
            _ => None,
        })
        .flatten()
        .map(|PromptToPlay { prompt, language }| format!("{prompt}/{language}"))
        .collect()
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
