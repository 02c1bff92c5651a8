//! The fold: every statistic is derived from the event sequence alone, in the order the log
//! stores it, so replaying the log after a restart rebuilds exactly the same state. Pure:
//! no clock (each event carries its time, queries take `now`), no I/O. Read-only views of
//! this state live in `view.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::events::{EpochMs, Event, EventKind, HungUpBy};

use super::config::FoldSettings;
use super::figures::{
    AgentStatus, AgentTally, INTERVAL_MS, QueueTally, QueueTotals, interval_start,
};

const DAY_MS: i64 = 86_400_000;

/// The outcome of a call the engine stopped without ending (see `Fold::closing_events`).
pub const INTERRUPTED: &str = "interrupted";

/// The queues and agents the ACD is configured with (agents with the queues they serve).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    pub queues: Vec<String>,
    pub agents: Vec<(String, Vec<String>)>,
}

/// Event times the fold accepts (2000-01-01 to 2200-01-01): anything else is a broken clock
/// or a hand-edited log, and is skipped rather than allowed to overflow the arithmetic.
const PLAUSIBLE_AT: std::ops::RangeInclusive<EpochMs> = 946_684_800_000..=7_258_118_400_000;

/// Durations are capped at 30 days for the same reason.
const MAX_DURATION_MS: u64 = 30 * 86_400_000;

fn capped(ms: u64) -> u64 {
    ms.min(MAX_DURATION_MS)
}

/// The instant `ms` before `at`.
fn minus(at: EpochMs, ms: u64) -> EpochMs {
    at - capped(ms) as i64
}

/// A call between entering a queue and its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTrack {
    pub queue: String,
    pub entered_at: EpochMs,
    /// The interval the call counts in: the one it entered the queue in.
    pub interval: EpochMs,
    pub orig_position: u32,
    /// The agent ringing for it or talking to it.
    pub agent: Option<String>,
    /// Every agent still ringing for it (more than one in a ring-all queue): all are free
    /// again when the call is answered elsewhere or leaves the queue.
    pub ringing: Vec<String>,
    pub connected: bool,
    pub wait_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct QueueState {
    pub intervals: BTreeMap<EpochMs, QueueTally>,
    /// (entered at, call id) of the calls waiting, oldest first.
    pub waiting: BTreeSet<(EpochMs, String)>,
    /// Since when the waiting count has been what it is.
    pub level_since: EpochMs,
    pub totals: QueueTotals,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AgentState {
    pub status: AgentStatus,
    pub since: EpochMs,
    pub queues: BTreeSet<String>,
    pub intervals: BTreeMap<EpochMs, AgentTally>,
    /// (queue, interval) of the agent's last ended call: its wrap-up adds to that call's
    /// handle time.
    pub last_call: Option<(String, EpochMs)>,
    /// The agent's phone answers OPTIONS probes, or nobody probes it (`peer_down` with
    /// kind `agent` until the next `peer_up`).
    pub reachable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    pub(super) settings: FoldSettings,
    pub(super) queues: BTreeMap<String, QueueState>,
    pub(super) agents: BTreeMap<String, AgentState>,
    pub(super) calls: HashMap<String, CallTrack>,
    /// Caller numbers from `CallOffered`, until the call is over (the queue_log wants them).
    callers: HashMap<String, String>,
    /// The latest event time seen.
    pub(super) latest: EpochMs,
    /// Intervals before this are dropped (`history_days` before the latest day).
    pub(super) window_start: EpochMs,
}

impl Fold {
    pub fn new(settings: FoldSettings) -> Fold {
        let mut queues = BTreeMap::new();
        for q in &settings.known_queues {
            queues.insert(q.clone(), QueueState::default());
        }
        Fold {
            settings,
            queues,
            agents: BTreeMap::new(),
            calls: HashMap::new(),
            callers: HashMap::new(),
            latest: i64::MIN,
            window_start: i64::MIN,
        }
    }

    pub fn settings(&self) -> &FoldSettings {
        &self.settings
    }

    /// The first instant whose figures the fold keeps, for an engine whose clock reads `at`.
    pub fn window_start_for(settings: &FoldSettings, at: EpochMs) -> EpochMs {
        settings
            .zone
            .day_start(at - i64::from(settings.history_days) * DAY_MS)
    }

    pub fn call(&self, call_id: &str) -> Option<&CallTrack> {
        self.calls.get(call_id)
    }

    pub fn caller(&self, call_id: &str) -> Option<&str> {
        self.callers.get(call_id).map(String::as_str)
    }

    /// What closes every call the log leaves open (offered and never ended: the engine
    /// stopped without ending it, by a crash or `kill -9`), for a start to write before
    /// `EngineStarted`: a connected call ends as hung up by the system, with its talk up
    /// to the last event logged; every other call finishes `interrupted`, which counts in
    /// its queue's interrupted outcome if it was queued. So offered always equals the sum
    /// of the outcomes, and no call stays open for the rest of the day. Sorted by call.
    pub fn closing_events(&self) -> Vec<EventKind> {
        let open: BTreeSet<&String> = self.callers.keys().chain(self.calls.keys()).collect();
        open.into_iter()
            .map(|call_id| match self.calls.get(call_id) {
                Some(CallTrack {
                    queue,
                    agent: Some(agent),
                    connected: true,
                    entered_at,
                    wait_ms,
                    ..
                }) => EventKind::CallEnded {
                    call_id: call_id.clone(),
                    queue: queue.clone(),
                    agent: agent.clone(),
                    talk_ms: u64::try_from(
                        self.latest - entered_at.saturating_add_unsigned(*wait_ms),
                    )
                    .unwrap_or(0),
                    hung_up_by: HungUpBy::System,
                },
                _ => EventKind::CallFinished {
                    call_id: call_id.clone(),
                    outcome: INTERRUPTED.to_owned(),
                },
            })
            .collect()
    }

    /// The queues an agent serves, as its logins and calls told.
    pub fn agent_queues(&self, agent: &str) -> Vec<String> {
        self.agents
            .get(agent)
            .map(|a| a.queues.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn apply(&mut self, ev: &Event) {
        let at = ev.at;
        if !PLAUSIBLE_AT.contains(&at) {
            tracing::warn!(at, "event with an implausible time skipped");
            return;
        }
        let before = self.latest;
        if at > self.latest {
            self.latest = at;
            let window = Fold::window_start_for(&self.settings, at);
            if window > self.window_start {
                self.window_start = window;
                self.prune();
            }
        }
        match &ev.kind {
            EventKind::CallOffered {
                call_id, caller, ..
            } => {
                self.callers.insert(call_id.clone(), caller.clone());
            }
            EventKind::PeerUp { peer, kind } if kind == "agent" => {
                self.agent(at, peer).reachable = true;
            }
            EventKind::PeerDown { peer, kind, .. } if kind == "agent" => {
                self.agent(at, peer).reachable = false;
            }
            EventKind::IntentRecognised { .. }
            | EventKind::DtmfFallback { .. }
            | EventKind::PeerUp { .. }
            | EventKind::PeerDown { .. }
            | EventKind::CallReferred { .. }
            | EventKind::EngineStopped {} => {}
            EventKind::EnterQueue {
                call_id,
                queue,
                position,
                ..
            } => self.enter_queue(at, call_id, queue, *position),
            EventKind::AgentOffered {
                call_id,
                queue,
                agent,
            } => {
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.agent = Some(agent.clone());
                    if !c.ringing.contains(agent) {
                        c.ringing.push(agent.clone());
                    }
                }
                let a = self.agent(at, agent);
                a.queues.insert(queue.clone());
                let status = AgentStatus::Ringing {
                    call_id: call_id.clone(),
                    queue: queue.clone(),
                };
                self.transition(at, agent, status);
            }
            EventKind::RingNoAnswer { call_id, agent, .. } => {
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.ringing.retain(|a| a != agent);
                    if c.agent.as_ref() == Some(agent) {
                        c.agent = None;
                    }
                }
                let interval = self.clamped_interval(at);
                let a = self.agent(at, agent);
                a.intervals.entry(interval).or_default().ring_no_answer += 1;
                self.release_agent(at, agent, call_id);
            }
            EventKind::Connected {
                call_id,
                queue,
                agent,
                wait_ms,
                ..
            } => self.connected(at, call_id, queue, agent, *wait_ms),
            EventKind::CallEnded {
                call_id,
                queue,
                agent,
                talk_ms,
                ..
            } => {
                self.callers.remove(call_id);
                let interval = match self.calls.remove(call_id) {
                    Some(c) => c.interval,
                    None => interval_start(minus(at, *talk_ms)),
                };
                let t = self.tally(queue, interval);
                t.handled += 1;
                t.talk_ms += capped(*talk_ms);
                self.agent(at, agent).last_call = Some((queue.clone(), interval));
                if matches!(self.agents.get(agent).map(|a| &a.status),
                    Some(AgentStatus::OnCall { call_id: c, .. }) if c == call_id)
                {
                    self.transition(at, agent, AgentStatus::Available);
                }
            }
            EventKind::Abandoned {
                call_id,
                queue,
                wait_ms,
                ..
            } => {
                let short = *wait_ms < self.settings.short_abandon_ms;
                self.left_queue(at, call_id, queue, *wait_ms, |t| {
                    if short {
                        t.short_abandoned += 1;
                    } else {
                        t.abandoned += 1;
                    }
                    !short
                });
                let totals = &mut self.queue(queue).totals;
                if short {
                    totals.short_abandoned += 1;
                } else {
                    totals.abandoned += 1;
                }
                self.callers.remove(call_id);
            }
            EventKind::Overflowed {
                call_id,
                queue,
                wait_ms,
                ..
            } => {
                self.left_queue(at, call_id, queue, *wait_ms, |t| {
                    t.overflowed += 1;
                    true
                });
                self.queue(queue).totals.overflowed += 1;
            }
            EventKind::ExitWithTimeout {
                call_id,
                queue,
                wait_ms,
                ..
            } => {
                self.left_queue(at, call_id, queue, *wait_ms, |t| {
                    t.timed_out += 1;
                    true
                });
                self.queue(queue).totals.timed_out += 1;
                self.callers.remove(call_id);
            }
            EventKind::ExitEmpty {
                call_id,
                queue,
                wait_ms,
                ..
            } => {
                self.left_queue(at, call_id, queue, *wait_ms, |t| {
                    t.exited_empty += 1;
                    true
                });
                self.queue(queue).totals.exited_empty += 1;
                self.callers.remove(call_id);
            }
            EventKind::JoinRefused { queue, .. } => {
                self.tally(queue, interval_start(at)).join_refused += 1;
                self.queue(queue).totals.join_refused += 1;
            }
            EventKind::CallFinished { call_id, .. } => {
                self.callers.remove(call_id);
                if let Some(c) = self.calls.get(call_id) {
                    // Its queue exit was never reported: count it as lost, not as waiting forever.
                    let queue = c.queue.clone();
                    let wait = u64::try_from(at - c.entered_at).unwrap_or(0);
                    self.left_queue(at, call_id, &queue, wait, |t| {
                        t.interrupted += 1;
                        false
                    });
                    self.queue(&queue).totals.interrupted += 1;
                }
            }
            EventKind::AgentLogin { agent, queues } => {
                let a = self.agent(at, agent);
                if !queues.is_empty() {
                    a.queues = queues.iter().cloned().collect();
                }
                for q in queues {
                    self.queue(q);
                }
                self.transition(at, agent, AgentStatus::Available);
            }
            EventKind::AgentLogout { agent, .. } => {
                self.transition(at, agent, AgentStatus::LoggedOut)
            }
            EventKind::AgentPause { agent, reason } => {
                let status = AgentStatus::Paused {
                    reason: reason.clone(),
                };
                self.transition(at, agent, status);
            }
            EventKind::AgentResume { agent } => self.transition(at, agent, AgentStatus::Available),
            EventKind::WrapUpStarted { agent, queue } => {
                let status = AgentStatus::WrapUp {
                    queue: queue.clone(),
                };
                self.transition(at, agent, status);
            }
            EventKind::WrapUpEnded { agent } => {
                if matches!(
                    self.agents.get(agent).map(|a| &a.status),
                    Some(AgentStatus::WrapUp { .. })
                ) {
                    self.transition(at, agent, AgentStatus::Available);
                }
            }
            EventKind::EngineStarted {} => self.engine_started(at, before),
        }
    }

    fn enter_queue(&mut self, at: EpochMs, call_id: &str, queue: &str, position: u32) {
        // Re-queued without an exit event: it no longer waits where it was.
        self.remove_waiting(at, call_id);
        let interval = interval_start(at);
        self.settle_level(queue, at);
        let q = self.queue(queue);
        q.waiting.insert((at, call_id.to_owned()));
        q.totals.entered += 1;
        self.tally(queue, interval).entered += 1;
        self.note_peak(queue, at);
        self.calls.insert(
            call_id.to_owned(),
            CallTrack {
                queue: queue.to_owned(),
                entered_at: at,
                interval,
                orig_position: position,
                agent: None,
                ringing: Vec::new(),
                connected: false,
                wait_ms: 0,
            },
        );
    }

    fn connected(&mut self, at: EpochMs, call_id: &str, queue: &str, agent: &str, wait_ms: u64) {
        let wait_ms = capped(wait_ms);
        let entered_at = minus(at, wait_ms);
        let interval = match self.calls.get(call_id) {
            Some(c) => c.interval,
            None => interval_start(entered_at),
        };
        self.remove_waiting(at, call_id);
        let within = wait_ms <= self.settings.service_level_ms(queue);
        let t = self.tally(queue, interval);
        t.answered += 1;
        t.answer_wait_ms += wait_ms;
        t.answered_within_sl += u64::from(within);
        t.waits_ms.push(wait_ms);
        self.queue(queue).totals.answered += 1;
        let c = self
            .calls
            .entry(call_id.to_owned())
            .or_insert_with(|| CallTrack {
                queue: queue.to_owned(),
                entered_at,
                interval,
                orig_position: 0,
                agent: None,
                ringing: Vec::new(),
                connected: false,
                wait_ms: 0,
            });
        c.agent = Some(agent.to_owned());
        c.connected = true;
        c.wait_ms = wait_ms;
        let others: Vec<String> = std::mem::take(&mut c.ringing)
            .into_iter()
            .filter(|a| a != agent)
            .collect();
        for other in others {
            self.release_agent(at, &other, call_id);
        }
        let call_interval = self.clamped_interval(at);
        let a = self.agent(at, agent);
        a.queues.insert(queue.to_owned());
        a.intervals.entry(call_interval).or_default().calls += 1;
        let status = AgentStatus::OnCall {
            call_id: call_id.to_owned(),
            queue: queue.to_owned(),
        };
        self.transition(at, agent, status);
    }

    /// A waiting call left the queue without being answered. `count` records the outcome
    /// in the call's interval and says whether its wait counts in the service level.
    fn left_queue(
        &mut self,
        at: EpochMs,
        call_id: &str,
        queue: &str,
        wait_ms: u64,
        count: impl FnOnce(&mut QueueTally) -> bool,
    ) {
        let wait_ms = capped(wait_ms);
        self.remove_waiting(at, call_id);
        let track = self.calls.remove(call_id);
        let interval = match &track {
            Some(c) => c.interval,
            None => interval_start(minus(at, wait_ms)),
        };
        let t = self.tally(queue, interval);
        if count(t) {
            t.waits_ms.push(wait_ms);
        }
        if let Some(c) = track {
            for agent in c.ringing.iter().chain(c.agent.as_ref()) {
                self.release_agent(at, agent, call_id);
            }
        }
    }

    /// An agent offered `call_id` is free again if it still rings for that call.
    fn release_agent(&mut self, at: EpochMs, agent: &str, call_id: &str) {
        if matches!(self.agents.get(agent).map(|a| &a.status),
            Some(AgentStatus::Ringing { call_id: c, .. }) if c == call_id)
        {
            self.transition(at, agent, AgentStatus::Available);
        }
    }

    fn engine_started(&mut self, at: EpochMs, before: EpochMs) {
        // Nothing is known between the last event and the restart: close everything at the
        // last event, so downtime counts as nobody's talk or idle time.
        let end = if before == i64::MIN { at } else { before };
        let queues: Vec<String> = self.queues.keys().cloned().collect();
        for queue in &queues {
            self.settle_level(queue, end);
            let q = self.queue(queue);
            q.waiting.clear();
            q.level_since = q.level_since.max(at);
        }
        let calls: Vec<CallTrack> = self.calls.drain().map(|(_, c)| c).collect();
        for c in calls.into_iter().filter(|c| !c.connected) {
            self.tally(&c.queue, c.interval).interrupted += 1;
            self.queue(&c.queue).totals.interrupted += 1;
        }
        self.callers.clear();
        let agents: Vec<String> = self.agents.keys().cloned().collect();
        for agent in agents {
            self.transition(end, &agent, AgentStatus::LoggedOut);
            // Probes start again from nothing known.
            self.agent(at, &agent).reachable = true;
        }
    }

    fn remove_waiting(&mut self, at: EpochMs, call_id: &str) {
        let Some((queue, entered)) = self
            .calls
            .get(call_id)
            .map(|c| (c.queue.clone(), c.entered_at))
        else {
            return;
        };
        self.settle_level(&queue, at);
        self.queue(&queue)
            .waiting
            .remove(&(entered, call_id.to_owned()));
    }

    /// Adds the waiting count since `level_since` up to `at` to the intervals it spans.
    fn settle_level(&mut self, queue: &str, at: EpochMs) {
        let window = self.window_start;
        let q = self.queue(queue);
        let level = q.waiting.len() as u64;
        let from = q.level_since.max(window);
        if level > 0 {
            split(from, at, |start, ms| {
                let t = q.intervals.entry(start).or_default();
                t.waiting_call_ms += level * ms;
                t.peak_waiting = t.peak_waiting.max(level as u32);
            });
        }
        q.level_since = q.level_since.max(at);
    }

    fn note_peak(&mut self, queue: &str, at: EpochMs) {
        let interval = self.clamped_interval(at);
        let q = self.queue(queue);
        let level = q.waiting.len() as u32;
        let t = q.intervals.entry(interval).or_default();
        t.peak_waiting = t.peak_waiting.max(level);
    }

    fn transition(&mut self, at: EpochMs, agent: &str, status: AgentStatus) {
        let window = self.window_start;
        let a = self.agent(at, agent);
        if a.status == status {
            // A repeated login or logout: the state, and how long it has lasted, go on.
            return;
        }
        let from = a.since.max(window);
        let old = std::mem::replace(&mut a.status, status);
        split(from, at, |start, ms| {
            let t = a.intervals.entry(start).or_default();
            add_state_time(t, &old, ms);
        });
        let wrapup = match &old {
            AgentStatus::WrapUp { queue } => Some((queue.clone(), (at - a.since).max(0))),
            _ => None,
        };
        let last_call = a.last_call.clone();
        let since = a.since;
        a.since = a.since.max(at);
        if let Some((queue, ms)) = wrapup {
            let interval = match last_call {
                Some((q, interval)) if q == queue => interval,
                _ => interval_start(since),
            };
            self.tally(&queue, interval).wrapup_ms += ms as u64;
        }
    }

    fn clamped_interval(&self, at: EpochMs) -> EpochMs {
        interval_start(at.max(self.window_start))
    }

    fn prune(&mut self) {
        let keep_from = interval_start(self.window_start);
        for q in self.queues.values_mut() {
            q.intervals = q.intervals.split_off(&keep_from);
        }
        for a in self.agents.values_mut() {
            a.intervals = a.intervals.split_off(&keep_from);
        }
    }

    /// A new queue's waiting count is 0, so when its level was last settled does not matter.
    /// Shows every configured queue and agent from `at` on, before any event names them:
    /// supervisors expect the whole floor, with an agent who has not logged in shown as
    /// logged out. What the log already said about them stays.
    pub fn roster(&mut self, at: EpochMs, roster: &Roster) {
        for queue in &roster.queues {
            self.queue(queue);
        }
        for (agent, queues) in &roster.agents {
            let a = self.agent(at, agent);
            if a.queues.is_empty() {
                a.queues = queues.iter().cloned().collect();
            }
        }
    }

    fn queue(&mut self, queue: &str) -> &mut QueueState {
        self.queues.entry(queue.to_owned()).or_default()
    }

    fn tally(&mut self, queue: &str, interval: EpochMs) -> &mut QueueTally {
        self.queue(queue).intervals.entry(interval).or_default()
    }

    /// The agent's record, created as logged out since `at` when the log first names it.
    fn agent(&mut self, at: EpochMs, agent: &str) -> &mut AgentState {
        self.agents
            .entry(agent.to_owned())
            .or_insert_with(|| AgentState {
                status: AgentStatus::LoggedOut,
                since: at,
                queues: BTreeSet::new(),
                intervals: BTreeMap::new(),
                last_call: None,
                reachable: true,
            })
    }
}

/// Calls `f(interval start, overlap in ms)` for every interval that `[from, to)` touches.
pub(super) fn split(from: EpochMs, to: EpochMs, mut f: impl FnMut(EpochMs, u64)) {
    let mut t = from;
    while t < to {
        let start = interval_start(t);
        let end = (start + INTERVAL_MS).min(to);
        f(start, (end - t) as u64);
        t = end;
    }
}

pub(super) fn add_state_time(t: &mut AgentTally, status: &AgentStatus, ms: u64) {
    match status {
        AgentStatus::LoggedOut => {}
        AgentStatus::Available => t.available_ms += ms,
        AgentStatus::Ringing { .. } => t.ringing_ms += ms,
        AgentStatus::OnCall { .. } => t.talk_ms += ms,
        AgentStatus::WrapUp { .. } => t.wrapup_ms += ms,
        AgentStatus::Paused { reason } => {
            t.paused_ms += ms;
            *t.pause_by_reason_ms.entry(reason.clone()).or_default() += ms;
        }
    }
}
