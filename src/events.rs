//! The event log's vocabulary: everything that happens to calls and agents, as the ACD, the
//! call tasks and the speech path report it. `stats` folds these into every figure a
//! supervisor sees, and the SQLite log stores them; nothing here does I/O or keeps state.
//!
//! Times are wall-clock milliseconds since the Unix epoch, stamped at the edge that saw the
//! event, so that replaying a stored log gives the same figures as the live fold did.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type EpochMs = i64;

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: EpochMs,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Which side ended a connected call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HungUpBy {
    Caller,
    Agent,
    /// The engine ended it: media timeout, shutdown, transfer.
    System,
}

/// Why a call fell back from speech to the DTMF menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// Every recognizer of the pool was busy.
    PoolBusy,
    /// No recognizer is configured for the caller's language.
    NoRecognizer,
    /// The caller was not understood after the configured number of tries.
    Failures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A call was taken by the engine (the start of its life in the log): answered, or, for
    /// a dialplan that plays early media, its INVITE received.
    CallOffered {
        call_id: String,
        caller: String,
        called: String,
    },
    /// The caller's speech was classified.
    IntentRecognised {
        call_id: String,
        intent: String,
        confidence: f32,
        language: String,
        transcript: String,
    },
    DtmfFallback {
        call_id: String,
        reason: FallbackReason,
    },
    /// The call joined a queue at `position` (1 = head).
    EnterQueue {
        call_id: String,
        queue: String,
        position: u32,
        language: String,
        intent: Option<String>,
        priority: i32,
    },
    /// An agent's phone started ringing for the call.
    AgentOffered {
        call_id: String,
        queue: String,
        agent: String,
    },
    RingNoAnswer {
        call_id: String,
        queue: String,
        agent: String,
        ring_ms: u64,
    },
    /// The agent answered; `wait_ms` runs from EnterQueue to this moment.
    Connected {
        call_id: String,
        queue: String,
        agent: String,
        wait_ms: u64,
        ring_ms: u64,
    },
    /// A connected call ended.
    CallEnded {
        call_id: String,
        queue: String,
        agent: String,
        talk_ms: u64,
        hung_up_by: HungUpBy,
    },
    /// The caller hung up while queued or while an agent rang.
    Abandoned {
        call_id: String,
        queue: String,
        position: u32,
        wait_ms: u64,
    },
    /// The call left the queue for its overflow target.
    Overflowed {
        call_id: String,
        queue: String,
        target: String,
        wait_ms: u64,
        /// Its position when it left (1 = head); the queue_log's EXITWITHTIMEOUT needs it.
        #[serde(default)]
        position: u32,
    },
    /// The call left the queue because its maximum wait passed and no overflow was set.
    ExitWithTimeout {
        call_id: String,
        queue: String,
        position: u32,
        wait_ms: u64,
    },
    /// The call left the queue because its last member logged out and the queue sends
    /// callers away then (queue_log EXITEMPTY); it may go on to the overflow target.
    ExitEmpty {
        call_id: String,
        queue: String,
        position: u32,
        wait_ms: u64,
    },
    /// The queue refused the call at the door: nobody was logged in and the queue does not
    /// take callers then (queue_log JOINEMPTY). The call goes on to the overflow target or
    /// the dialplan's next step; it never counts as offered.
    JoinRefused {
        call_id: String,
        queue: String,
    },
    /// A call that never reached a queue ended (hung up in the IVR, transferred, out of hours).
    CallFinished {
        call_id: String,
        outcome: String,
    },
    AgentLogin {
        agent: String,
        /// The queues the agent serves: statistics count agents by state per queue, and the
        /// queue_log writes one ADDMEMBER per queue.
        #[serde(default)]
        queues: Vec<String>,
    },
    AgentLogout {
        agent: String,
        reason: String,
    },
    AgentPause {
        agent: String,
        reason: String,
    },
    AgentResume {
        agent: String,
    },
    /// After-call work started for the agent (it ends with `WrapUpEnded`).
    WrapUpStarted {
        agent: String,
        queue: String,
    },
    WrapUpEnded {
        agent: String,
    },
    /// OPTIONS probes ([trunks.qualify]) found a trunk (`kind` "trunk") or an agent
    /// reached by URI ("agent") answering: calls go to it.
    PeerUp {
        peer: String,
        kind: String,
    },
    /// The peer stopped answering probes: calls skip it until it is up again.
    PeerDown {
        peer: String,
        kind: String,
        reason: String,
    },
    /// The caller's side transferred the call by REFER and its target answered: `target`
    /// holds the caller's place in the call from now on.
    CallReferred {
        call_id: String,
        target: String,
    },
    /// The stats actor opened the log after a start: whatever was waiting, ringing or
    /// connected before it is gone, and every agent is logged out until the ACD says again.
    EngineStarted {},
    /// The engine stopped on purpose (SIGTERM), after draining its calls: every call it
    /// had was ended and logged before this.
    EngineStopped {},
}

impl EventKind {
    /// The call this event belongs to, if it is about a call.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            EventKind::CallOffered { call_id, .. }
            | EventKind::IntentRecognised { call_id, .. }
            | EventKind::DtmfFallback { call_id, .. }
            | EventKind::EnterQueue { call_id, .. }
            | EventKind::AgentOffered { call_id, .. }
            | EventKind::RingNoAnswer { call_id, .. }
            | EventKind::Connected { call_id, .. }
            | EventKind::CallEnded { call_id, .. }
            | EventKind::Abandoned { call_id, .. }
            | EventKind::Overflowed { call_id, .. }
            | EventKind::ExitWithTimeout { call_id, .. }
            | EventKind::ExitEmpty { call_id, .. }
            | EventKind::JoinRefused { call_id, .. }
            | EventKind::CallFinished { call_id, .. }
            | EventKind::CallReferred { call_id, .. } => Some(call_id),
            EventKind::AgentLogin { .. }
            | EventKind::AgentLogout { .. }
            | EventKind::AgentPause { .. }
            | EventKind::AgentResume { .. }
            | EventKind::WrapUpStarted { .. }
            | EventKind::WrapUpEnded { .. }
            | EventKind::PeerUp { .. }
            | EventKind::PeerDown { .. }
            | EventKind::EngineStarted {}
            | EventKind::EngineStopped {} => None,
        }
    }
}

/// The current wall-clock time as the event log records it.
pub fn now_ms() -> EpochMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as EpochMs)
        .unwrap_or(0)
}

/// Where producers (call tasks, the ACD actor, the speech path) send events. The stats
/// actor owns the receiving end and the log. Unbounded on purpose: an event must never be
/// lost, and producers must never wait on the database; the rate is a few per call.
#[derive(Debug, Clone)]
pub struct EventSink(tokio::sync::mpsc::UnboundedSender<Event>);

impl EventSink {
    pub fn new() -> (EventSink, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (EventSink(tx), rx)
    }

    /// Stamps the event with the wall clock and sends it.
    pub fn emit(&self, kind: EventKind) {
        self.emit_at(now_ms(), kind);
    }

    pub fn emit_at(&self, at: EpochMs, kind: EventKind) {
        // The receiver only goes away at shutdown, when there is nobody left to tell.
        let _ = self.0.send(Event { at, kind });
    }
}
