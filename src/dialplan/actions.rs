//! The interpreter's vocabulary with the call task: what it is told (`Input`) and what it
//! asks for (`Action`). Plain data; the call task turns actions into media, speech, ACD and
//! SIP operations and reports back with inputs.

use std::time::Duration;

use super::model::{TransferMethod, TransferTo};
use super::vars::Vars;
use crate::events::EventKind;

/// Who the call is, as the call task knows it when the call is answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub trunk: Option<String>,
    /// The caller asked to withhold their identity (RFC 3323 Privacy and kin).
    pub withheld: bool,
    /// The number first called, when the call was redirected here.
    pub original_called: Option<String>,
    /// Why it was redirected.
    pub redirect_reason: Option<String>,
}

/// Names one playback, so that a late "done" for a stopped prompt is not taken for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlayId(pub u32);

/// Names one listening session, so that a late result is not taken for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenId(pub u32);

/// One prompt in one language: the key into the prompt audio (`prompts::PromptSet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptToPlay {
    pub prompt: String,
    pub language: String,
}

/// What to listen for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenRequest {
    pub language: String,
    /// The caller has not chosen a language yet: report the one heard if the recognizer can.
    pub detect_language: bool,
    /// The grammar to bias recognition and classify intents with (`ask` steps).
    pub grammar: Option<String>,
    /// The words the step matches itself (language names, yes/no); a bias for the recognizer.
    pub phrases: Vec<String>,
    /// The longest utterance the step waits for.
    pub max_speech: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enqueue {
    pub queue: String,
    pub language: String,
    pub intent: Option<String>,
    pub priority: i32,
    /// Everything else known about the call (caller, transcript, confidence, ...).
    pub vars: Vars,
    /// Played to the caller once queued, before the queue's announcements.
    pub prompts: Vec<PromptToPlay>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Play the prompts in order. `barge_in`: keys or speech may interrupt them (the
    /// interpreter sends `StopPlayback` when they do). `early`: the caller may hear them
    /// before the call is answered (early media). Report the end with `PromptDone`.
    Play {
        id: PlayId,
        prompts: Vec<PromptToPlay>,
        barge_in: bool,
        early: bool,
    },
    StopPlayback(PlayId),
    /// Start a recognizer and report with `Input::Speech` (partials, then one final, or
    /// unavailable at once when no recognizer can be had).
    Listen {
        id: ListenId,
        request: ListenRequest,
    },
    StopListening(ListenId),
    /// Hand the call to the ACD; report with `QueueLeft` if it gives the call back.
    Enqueue(Enqueue),
    /// Report with `TransferFailed` if the transfer does not happen.
    Transfer {
        to: TransferTo,
        method: TransferMethod,
        vars: Vars,
        ring_timeout: Duration,
    },
    /// End the call; `outcome` is for the event log (`CallFinished`).
    Hangup {
        outcome: String,
    },
    /// Record in the event log.
    Event(EventKind),
}

/// Why speech cannot be had for a `Listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Every recognizer of the pool is busy.
    PoolBusy,
    /// No recognizer is configured for the language.
    NoRecognizer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpeechResult {
    pub transcript: String,
    /// From the intent classifier, for `ask` steps.
    pub intent: Option<String>,
    pub confidence: f32,
    /// The language heard, when the request asked for detection and the recognizer knows.
    pub language: Option<String>,
    /// The classifier's likeliest intents with their confidence, best first (two at most):
    /// what a follow-up question offers when the answer is unclear.
    pub alternatives: Vec<(String, f32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Speech {
    /// The caller started speaking (barge-in).
    Started,
    /// Words so far; the first non-empty one also means the caller is speaking.
    Partial(String),
    /// The utterance is over. An empty transcript means nothing was said.
    Final(SpeechResult),
    Unavailable(Unavailable),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    PromptDone(PlayId),
    /// A DTMF key (RFC 4733 or in-band): 0-9, *, #, A-D.
    Digit(char),
    Speech(ListenId, Speech),
    /// The queue gave the call back (overflow, time-out, no agents): continue at `step` if
    /// named (the ACD's overflow target), else at the queue step's `overflow`.
    QueueLeft {
        step: Option<String>,
    },
    TransferFailed,
}
