//! The ACD's vocabulary: what call tasks, the registrar and the API tell the router, what
//! the router tells each call, and the read-only views it hands out. Plain data only.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use crate::events::HungUpBy;

/// One offer of one call to one agent. Unique for the router's lifetime, so an outcome
/// reported late for an offer that was already withdrawn is recognised as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct OfferId(pub u64);

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offer-{}", self.0)
    }
}

/// A call asking for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueRequest {
    /// The caller leg's SIP Call-ID; every later message about the call uses it.
    pub call_id: String,
    pub queue: String,
    /// `cmn`, `yue`...; empty when any agent will do.
    pub language: String,
    pub intent: Option<String>,
    /// Higher goes first; equal priorities are served in order of arrival.
    pub priority: i32,
    /// The caller's number, for the supervisors' view.
    pub caller: String,
}

/// How the agent leg of an offer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferOutcome {
    /// 200 OK from the agent (the call task has ACKed it and waits for `Connected` before
    /// bridging media).
    Answered,
    /// The agent declined (486, 603...).
    Rejected,
    /// The agent's phone or the trunk gave up ringing (408, 480).
    NoAnswer,
    /// The agent could not be reached (404, 503, transport error).
    Failed,
}

/// Inputs of the router, besides agent control (which answers) and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Enqueue(EnqueueRequest),
    /// The caller's leg ended while queued, ringing or connected: hung up by the caller,
    /// or by the system (media timeout, no ACK, shutdown), which is no abandonment.
    CallerGone {
        call_id: String,
        by: HungUpBy,
    },
    OfferOutcome {
        call_id: String,
        offer: OfferId,
        outcome: OfferOutcome,
    },
    /// A connected call ended.
    CallEnded {
        call_id: String,
        hung_up_by: HungUpBy,
    },
    /// The registrar's view of a phone changed: `contact` is where to INVITE it, `None`
    /// once its last binding is gone.
    Registration {
        user: String,
        contact: Option<String>,
    },
    /// OPTIONS probes found an agent reached by URI up or down: one that is down is
    /// offered no call, and stays logged in.
    Reachability {
        agent: String,
        up: bool,
    },
}

/// Agent control from the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    Login,
    /// `reason` goes to the event log (`AgentLogout`).
    Logout {
        reason: String,
    },
    Pause {
        reason: String,
    },
    /// Ends a pause, or ends wrap-up early.
    Resume,
}

/// Where to send the INVITE for an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The Contact of the agent's registered phone.
    Registered(String),
    /// A URI reached through the trunk (agents on the existing PBX).
    Trunk(String),
}

/// What the router tells one call task. After `Leave` the router forgets the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// The call joined `queue` (first instruction after enqueue, and again after moving to
    /// an overflow queue).
    Queued {
        queue: String,
        position: u32,
        estimated_wait: Option<Duration>,
    },
    /// Play position and estimated wait (`None`: no agent staffed to estimate from).
    Announce {
        position: u32,
        estimated_wait: Option<Duration>,
    },
    /// INVITE this agent, passing the call's context in headers; report the outcome.
    Offer {
        offer: OfferId,
        queue: String,
        agent: String,
        target: Target,
    },
    /// Drop this agent leg: CANCEL while it rings, BYE if it answered meanwhile. May come
    /// twice for one offer (the ring timed out as the agent answered): handle it once.
    CancelOffer { offer: OfferId },
    /// The agent of `offer` has the call: bridge media.
    Connected { offer: OfferId, agent: String },
    /// The call leaves the ACD without an agent: continue the dialplan at `next_step`, or
    /// with the step after the queue when `None`. Any agent leg still up must be dropped.
    Leave {
        reason: LeaveReason,
        next_step: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReason {
    /// Maximum wait passed; the queue overflows to a dialplan step.
    Overflow,
    /// Maximum wait passed and there is nowhere to overflow to.
    Timeout,
    /// The last member logged out and the queue sends its callers away.
    Empty,
    /// No member logged in and the queue does not take callers then.
    JoinRefused,
    /// The request itself was wrong.
    Rejected(InputError),
}

/// An input the router refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("unknown queue `{0}`")]
    UnknownQueue(String),
    #[error("call `{0}` is already in the ACD")]
    DuplicateCall(String),
    #[error("no agent registers as `{0}`")]
    UnknownUser(String),
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("agent `{0}` has no registered phone and no trunk URI")]
    NotReachable(String),
    #[error("agent `{0}` is logged out")]
    LoggedOut(String),
    #[error("the ACD has stopped")]
    Stopped,
}

/// An agent's state as supervisors see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    LoggedOut,
    Available,
    /// Reserved: a call is offered and the phone rings.
    Ringing,
    OnCall,
    WrapUp,
    Paused {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub state: AgentState,
    pub in_state_ms: u64,
    pub queues: Vec<String>,
    pub registered: bool,
    /// Probes find the agent's phone answering (`[trunks.qualify] agents`), or nothing says
    /// otherwise: an agent found down is offered no call.
    pub reachable: bool,
    pub answered: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingView {
    pub call_id: String,
    pub caller: String,
    pub position: u32,
    pub priority: i32,
    pub language: String,
    pub waited_ms: u64,
    /// Agents whose phones ring for this call.
    pub ringing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueView {
    pub name: String,
    pub waiting: Vec<WaitingView>,
    pub logged_in: u32,
    pub available: u32,
    /// Mean handle time (talk + wrap-up) the wait estimate uses.
    pub handle_time_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcdSnapshot {
    pub queues: Vec<QueueView>,
    pub agents: Vec<AgentView>,
}

/// What the router produces, drained with `Router::poll_output`.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Deliver to the call's task.
    Call {
        call_id: String,
        instruction: Instruction,
    },
    /// The router holds nothing more about the call: its channel can go.
    Forget { call_id: String },
    /// For the event log.
    Event(crate::events::EventKind),
}
