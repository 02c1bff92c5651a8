//! The figures supervisors see, and the additive tallies they are computed from. Tallies
//! are integers summed per 15-minute interval; every mean is computed from exact sums and
//! counts only when a figure is shown. Pure data: no state machine, no I/O.
//!
//! Definitions (README of the stats module, repeated where they are computed):
//! - a call counts in the interval in which it entered the queue;
//! - short abandon: hung up after waiting less than the short-abandon threshold; excluded
//!   from offered, abandoned, waits and the service level, reported apart;
//! - offered = entered - short abandons;
//! - service level = answered within T (wait <= T) / (answered + abandoned + overflowed +
//!   timed out + exited empty), i.e. over every call that left the queue except short abandons and calls
//!   lost to an engine restart;
//! - ASA = sum of answered waits / answered;
//! - average, maximum and percentile waits are over the same calls as the service level's
//!   denominator (nearest-rank percentiles);
//! - AHT = (talk + wrap-up) / handled calls (calls that ended after being answered);
//! - waiting calls (average and peak) are measured by the clock within the interval;
//! - agent occupancy = (ringing + talk + wrap-up) / (available + ringing + talk + wrap-up).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::EpochMs;

/// The length of a reporting interval. Every time zone's offset is a multiple of 15
/// minutes, so intervals aligned on the epoch are aligned on local time too.
pub const INTERVAL_MS: i64 = 900_000;

pub fn interval_start(at: EpochMs) -> EpochMs {
    at.div_euclid(INTERVAL_MS) * INTERVAL_MS
}

/// What happened in one queue in one interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueTally {
    pub entered: u64,
    pub answered: u64,
    pub answered_within_sl: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub overflowed: u64,
    pub timed_out: u64,
    /// Calls sent away because the queue had no agent left (EXITEMPTY).
    pub exited_empty: u64,
    /// Calls turned away at the door with nobody logged in (JOINEMPTY); not offered.
    pub join_refused: u64,
    /// Calls still queued when the engine restarted.
    pub interrupted: u64,
    pub answer_wait_ms: u64,
    /// Waits of every call counted in the service level's denominator.
    pub waits_ms: Vec<u64>,
    pub handled: u64,
    pub talk_ms: u64,
    pub wrapup_ms: u64,
    /// The integral of the number of waiting calls over time (call-milliseconds).
    pub waiting_call_ms: u64,
    pub peak_waiting: u32,
}

impl QueueTally {
    pub fn add(&mut self, o: &QueueTally) {
        self.entered += o.entered;
        self.answered += o.answered;
        self.answered_within_sl += o.answered_within_sl;
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.overflowed += o.overflowed;
        self.timed_out += o.timed_out;
        self.exited_empty += o.exited_empty;
        self.join_refused += o.join_refused;
        self.interrupted += o.interrupted;
        self.answer_wait_ms += o.answer_wait_ms;
        self.waits_ms.extend_from_slice(&o.waits_ms);
        self.handled += o.handled;
        self.talk_ms += o.talk_ms;
        self.wrapup_ms += o.wrapup_ms;
        self.waiting_call_ms += o.waiting_call_ms;
        self.peak_waiting = self.peak_waiting.max(o.peak_waiting);
    }
}

/// A queue's figures over a span of time (one interval or a day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub start: EpochMs,
    pub end: EpochMs,
    pub offered: u64,
    pub answered: u64,
    pub answered_within_sl: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub overflowed: u64,
    pub timed_out: u64,
    pub exited_empty: u64,
    pub join_refused: u64,
    pub interrupted: u64,
    pub service_level_s: u64,
    /// Percent, `None` when no call left the queue.
    pub service_level_pct: Option<f64>,
    pub asa_ms: Option<f64>,
    pub avg_wait_ms: Option<f64>,
    pub max_wait_ms: Option<u64>,
    pub wait_p50_ms: Option<u64>,
    pub wait_p80_ms: Option<u64>,
    pub wait_p90_ms: Option<u64>,
    pub wait_p95_ms: Option<u64>,
    pub handled: u64,
    pub talk_ms: u64,
    pub wrapup_ms: u64,
    pub aht_ms: Option<f64>,
    pub avg_waiting: f64,
    pub peak_waiting: u32,
}

impl Figures {
    pub fn from_tally(start: EpochMs, end: EpochMs, t: &QueueTally, sl_ms: u64) -> Figures {
        let mut waits = t.waits_ms.clone();
        waits.sort_unstable();
        let exits = waits.len() as u64;
        let span = (end - start).max(1) as f64;
        Figures {
            start,
            end,
            offered: t.entered.saturating_sub(t.short_abandoned),
            answered: t.answered,
            answered_within_sl: t.answered_within_sl,
            abandoned: t.abandoned,
            short_abandoned: t.short_abandoned,
            overflowed: t.overflowed,
            timed_out: t.timed_out,
            exited_empty: t.exited_empty,
            join_refused: t.join_refused,
            interrupted: t.interrupted,
            service_level_s: sl_ms / 1000,
            service_level_pct: ratio(t.answered_within_sl, exits).map(|r| r * 100.0),
            asa_ms: ratio(t.answer_wait_ms, t.answered),
            avg_wait_ms: ratio(waits.iter().sum(), exits),
            max_wait_ms: waits.last().copied(),
            wait_p50_ms: percentile(&waits, 50),
            wait_p80_ms: percentile(&waits, 80),
            wait_p90_ms: percentile(&waits, 90),
            wait_p95_ms: percentile(&waits, 95),
            handled: t.handled,
            talk_ms: t.talk_ms,
            wrapup_ms: t.wrapup_ms,
            aht_ms: ratio(t.talk_ms + t.wrapup_ms, t.handled),
            avg_waiting: t.waiting_call_ms as f64 / span,
            peak_waiting: t.peak_waiting,
        }
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Nearest-rank percentile of sorted values: the smallest value with at least p% of the
/// values at or below it.
pub fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

/// Time an agent spent in each state in one interval, and the calls they took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTally {
    pub calls: u64,
    pub ring_no_answer: u64,
    pub available_ms: u64,
    pub ringing_ms: u64,
    pub talk_ms: u64,
    pub wrapup_ms: u64,
    pub paused_ms: u64,
    pub pause_by_reason_ms: BTreeMap<String, u64>,
}

impl AgentTally {
    pub fn add(&mut self, o: &AgentTally) {
        self.calls += o.calls;
        self.ring_no_answer += o.ring_no_answer;
        self.available_ms += o.available_ms;
        self.ringing_ms += o.ringing_ms;
        self.talk_ms += o.talk_ms;
        self.wrapup_ms += o.wrapup_ms;
        self.paused_ms += o.paused_ms;
        for (reason, ms) in &o.pause_by_reason_ms {
            *self.pause_by_reason_ms.entry(reason.clone()).or_default() += ms;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentFigures {
    #[serde(flatten)]
    pub tally: AgentTally,
    pub logged_in_ms: u64,
    /// Percent of logged-in, unpaused time spent ringing, talking or in wrap-up.
    pub occupancy_pct: Option<f64>,
}

impl AgentFigures {
    pub fn from_tally(tally: AgentTally) -> AgentFigures {
        let busy = tally.ringing_ms + tally.talk_ms + tally.wrapup_ms;
        let staffed = busy + tally.available_ms;
        AgentFigures {
            logged_in_ms: staffed + tally.paused_ms,
            occupancy_pct: ratio(busy, staffed).map(|r| r * 100.0),
            tally,
        }
    }
}

/// An agent's current state as the events tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentStatus {
    LoggedOut,
    Available,
    Ringing { call_id: String, queue: String },
    OnCall { call_id: String, queue: String },
    WrapUp { queue: String },
    Paused { reason: String },
}

impl AgentStatus {
    /// The name the API and the JSON use for this state.
    pub fn name(&self) -> &'static str {
        match self {
            AgentStatus::LoggedOut => "logged_out",
            AgentStatus::Available => "available",
            AgentStatus::Ringing { .. } => "ringing",
            AgentStatus::OnCall { .. } => "on_call",
            AgentStatus::WrapUp { .. } => "wrap_up",
            AgentStatus::Paused { .. } => "paused",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCounts {
    pub logged_out: u32,
    pub available: u32,
    pub ringing: u32,
    pub on_call: u32,
    pub wrap_up: u32,
    pub paused: u32,
}

impl AgentCounts {
    pub fn count(&mut self, s: &AgentStatus) {
        match s {
            AgentStatus::LoggedOut => self.logged_out += 1,
            AgentStatus::Available => self.available += 1,
            AgentStatus::Ringing { .. } => self.ringing += 1,
            AgentStatus::OnCall { .. } => self.on_call += 1,
            AgentStatus::WrapUp { .. } => self.wrap_up += 1,
            AgentStatus::Paused { .. } => self.paused += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueLive {
    pub waiting: u32,
    pub longest_wait_ms: u64,
    /// When the longest-waiting call entered: lets a page tick the wait between updates.
    pub oldest_entered_at: Option<EpochMs>,
    /// Calls whose offered agent is ringing (included in `waiting`).
    pub ringing: u32,
    pub connected: u32,
    pub agents: AgentCounts,
}

/// Counts since the fold began (the replayed history plus everything after): they only
/// grow, which is what Prometheus counters need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTotals {
    pub entered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub overflowed: u64,
    pub timed_out: u64,
    pub exited_empty: u64,
    pub join_refused: u64,
    pub interrupted: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub queue: String,
    pub live: QueueLive,
    /// Since local midnight.
    pub today: Figures,
    pub totals: QueueTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent: String,
    #[serde(flatten)]
    pub status: AgentStatus,
    pub since: EpochMs,
    pub time_in_state_ms: u64,
    pub queues: Vec<String>,
    /// The agent's phone answers OPTIONS probes (`[trunks.qualify] agents`), or nobody
    /// probes it: one found down is offered no call.
    pub reachable: bool,
    pub today: AgentFigures,
}

/// Everything live plus today's figures: what the dashboard and `hotline stats` show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub now: EpochMs,
    pub timezone: String,
    pub day_start: EpochMs,
    pub queues: Vec<QueueView>,
    pub agents: Vec<AgentView>,
}

/// One queue's day: the day's figures and each 15-minute interval up to `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDay {
    pub queue: String,
    pub date: String,
    pub day: Figures,
    pub intervals: Vec<Figures>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 80), Some(8));
        assert_eq!(percentile(&v, 95), Some(10));
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
    }

    #[test]
    fn occupancy_excludes_pause() {
        let t = AgentTally {
            available_ms: 600,
            ringing_ms: 100,
            talk_ms: 200,
            wrapup_ms: 100,
            paused_ms: 1000,
            ..AgentTally::default()
        };
        let f = AgentFigures::from_tally(t);
        assert_eq!(f.logged_in_ms, 2000);
        assert_eq!(f.occupancy_pct, Some(40.0));
    }
}
