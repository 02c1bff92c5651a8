//! The router's records of agents, queues, callers and offers, with the small questions
//! each record answers about itself. The router (mod.rs and its siblings) mutates them.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::acd::config::{AgentConfig, OverflowTarget, QueueConfig, Strategy};
use crate::acd::estimate::HandleTimes;
use crate::acd::messages::{AgentState, OfferId, Target};

pub type AgentIdx = usize;
pub type QueueIdx = usize;
pub type CallerIdx = usize;

/// Order of callers in a queue: higher priority first, then arrival. `seq` is global and
/// grows with time, so the same key also orders callers of different queues.
pub type QueueKey = (Reverse<i32>, u64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    LoggedOut,
    Ready,
    Paused(String),
    WrapUp { until: Instant },
}

#[derive(Debug)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub trunk_uri: Option<String>,
    pub contact: Option<String>,
    /// False while OPTIONS probes find `trunk_uri` down.
    pub reachable: bool,
    pub languages: Vec<String>,
    pub queues: Vec<QueueIdx>,
    pub max_offers: usize,
    pub auto_login: bool,
    pub presence: Presence,
    /// Offers ringing on this agent.
    pub offers: Vec<OfferId>,
    /// Callers connected to this agent.
    pub connected: Vec<CallerIdx>,
    /// When the agent last became free with nothing to do (longest-idle order).
    pub idle_since: Instant,
    /// When `state()` last changed, for "time in state".
    pub state_since: Instant,
    pub last_state: AgentState,
    pub no_answer_streak: u32,
    pub answered: u64,
    /// Cached `can_take_calls()`, kept equal by `Router::refresh_agent`.
    pub free: bool,
}

impl Agent {
    pub fn new(cfg: &AgentConfig, queues: Vec<QueueIdx>, now: Instant) -> Agent {
        Agent {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            trunk_uri: cfg.uri.clone(),
            contact: None,
            reachable: true,
            languages: cfg.languages.clone(),
            queues,
            max_offers: usize::try_from(cfg.max_offers).unwrap_or(usize::MAX),
            auto_login: cfg.auto_login,
            presence: Presence::LoggedOut,
            offers: Vec::new(),
            connected: Vec::new(),
            idle_since: now,
            state_since: now,
            last_state: AgentState::LoggedOut,
            no_answer_streak: 0,
            answered: 0,
            free: false,
        }
    }

    /// Where an offer would ring: the registered phone first, the trunk otherwise (unless
    /// probes find it down).
    pub fn target(&self) -> Option<Target> {
        match (&self.contact, &self.trunk_uri) {
            (Some(c), _) => Some(Target::Registered(c.clone())),
            (None, Some(u)) if self.reachable => Some(Target::Trunk(u.clone())),
            (None, _) => None,
        }
    }

    /// A registered phone or a trunk URI (reachable or not): something to log in with.
    pub fn has_phone(&self) -> bool {
        self.contact.is_some() || self.trunk_uri.is_some()
    }

    pub fn logged_in(&self) -> bool {
        self.presence != Presence::LoggedOut
    }

    /// Logged in, not paused, and reachable: counted as staff for wait estimates.
    pub fn working(&self) -> bool {
        matches!(self.presence, Presence::Ready | Presence::WrapUp { .. })
            && self.target().is_some()
    }

    /// Logged in with somewhere to ring: a queue with such an agent is not empty.
    pub fn staffing(&self) -> bool {
        self.logged_in() && self.target().is_some()
    }

    pub fn can_take_calls(&self) -> bool {
        self.presence == Presence::Ready
            && self.target().is_some()
            && self.offers.len() + self.connected.len() < self.max_offers
    }

    pub fn speaks(&self, language: &str) -> bool {
        language.is_empty() || self.languages.iter().any(|l| l == language)
    }

    pub fn state(&self) -> AgentState {
        if !self.connected.is_empty() {
            return AgentState::OnCall;
        }
        if !self.offers.is_empty() {
            return AgentState::Ringing;
        }
        match &self.presence {
            Presence::LoggedOut => AgentState::LoggedOut,
            Presence::Ready => AgentState::Available,
            Presence::Paused(reason) => AgentState::Paused {
                reason: reason.clone(),
            },
            Presence::WrapUp { .. } => AgentState::WrapUp,
        }
    }
}

#[derive(Debug)]
pub struct Member {
    pub agent: AgentIdx,
    pub level: u8,
    /// Calls of this queue the member answered since it last logged in (fewest-calls
    /// order: a shift's count, so a member back from yesterday does not start behind).
    pub answered: u64,
}

/// A queue's settings in the units the router uses.
#[derive(Debug)]
pub struct QueueRules {
    pub strategy: Strategy,
    pub ring_timeout: Duration,
    pub retry: Duration,
    pub max_wait: Option<Duration>,
    pub overflow: Option<OverflowTarget>,
    pub language_relax: Option<Duration>,
    pub join_when_empty: bool,
    pub leave_when_empty: bool,
    pub wrap_up: Duration,
    pub announce_period: Option<Duration>,
    pub max_no_answer: u32,
}

impl QueueRules {
    pub fn new(cfg: &QueueConfig) -> QueueRules {
        let secs = Duration::from_secs;
        QueueRules {
            strategy: cfg.strategy,
            ring_timeout: secs(cfg.ring_timeout_s),
            retry: secs(cfg.retry_s),
            max_wait: cfg.max_wait_s.map(secs),
            overflow: cfg.overflow.clone(),
            language_relax: cfg.language_relax_s.map(secs),
            join_when_empty: cfg.join_when_empty,
            leave_when_empty: cfg.leave_when_empty,
            wrap_up: secs(cfg.wrap_up_s),
            announce_period: (cfg.announce_period_s > 0).then(|| secs(cfg.announce_period_s)),
            max_no_answer: cfg.max_no_answer,
        }
    }
}

#[derive(Debug)]
pub struct Queue {
    pub name: String,
    pub rules: QueueRules,
    pub members: Vec<Member>,
    pub waiting: BTreeMap<QueueKey, CallerIdx>,
    /// Round-robin memory: the member position to try first next time.
    pub rr_next: usize,
    pub handle_times: HandleTimes,
    /// Something changed that may let a waiting caller get an agent.
    pub dirty: bool,
}

impl Queue {
    pub fn new(cfg: &QueueConfig) -> Queue {
        Queue {
            name: cfg.name.clone(),
            rules: QueueRules::new(cfg),
            members: Vec::new(),
            waiting: BTreeMap::new(),
            rr_next: 0,
            handle_times: HandleTimes::new(Duration::from_secs(cfg.handle_time_estimate_s)),
            dirty: false,
        }
    }

    /// 1-based place of the caller with this key.
    pub fn position(&self, key: QueueKey) -> u32 {
        let ahead = self.waiting.range(..key).count();
        u32::try_from(ahead).unwrap_or(u32::MAX).saturating_add(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerStatus {
    Waiting,
    Connected {
        agent: AgentIdx,
        offer: OfferId,
        since: Instant,
    },
}

#[derive(Debug)]
pub struct Caller {
    pub call_id: String,
    pub number: String,
    pub language: String,
    pub intent: Option<String>,
    pub priority: i32,
    /// Renewed on every (re)entry into a queue; timers carry it to tell stale from live.
    pub seq: u64,
    pub queue: QueueIdx,
    pub entered: Instant,
    pub status: CallerStatus,
    pub offers: Vec<OfferId>,
    /// Agents who did not take this call since the last retry round.
    pub tried: Vec<AgentIdx>,
    pub retry_at: Option<Instant>,
    pub max_wait_at: Option<Instant>,
    pub relax_at: Option<Instant>,
    pub next_announce: Option<Instant>,
}

impl Caller {
    pub fn key(&self) -> QueueKey {
        (Reverse(self.priority), self.seq)
    }

    pub fn language_relaxed(&self, now: Instant) -> bool {
        self.relax_at.is_some_and(|t| now >= t)
    }
}

#[derive(Debug)]
pub struct Offer {
    pub caller: CallerIdx,
    pub agent: AgentIdx,
    pub queue: QueueIdx,
    pub started: Instant,
    pub deadline: Instant,
}

/// Milliseconds between two instants, for event fields.
pub fn ms_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
}
