//! Read-only views of the fold: the live state and the figures of a day or an interval at
//! a given `now`. The open parts (calls still waiting, the agent's current state) are
//! counted up to `now` without changing the fold, so asking never alters an answer.

use std::collections::BTreeMap;

use crate::events::EpochMs;

use super::figures::{
    AgentCounts, AgentFigures, AgentTally, AgentView, Figures, INTERVAL_MS, Overview, QueueDay,
    QueueLive, QueueTally, QueueView, interval_start,
};
use super::fold::{AgentState, Fold, QueueState, add_state_time, split};

impl Fold {
    pub fn queue_names(&self) -> Vec<String> {
        self.queues.keys().cloned().collect()
    }

    pub fn overview(&self, now: EpochMs) -> Overview {
        let zone = &self.settings.zone;
        let day_start = zone.day_start(now);
        let day_end = zone.day_end(now);
        let queues = self
            .queues
            .iter()
            .map(|(name, q)| {
                let tally = self.queue_tally(q, day_start, day_end, now);
                QueueView {
                    queue: name.clone(),
                    live: self.queue_live(name, q, now),
                    today: Figures::from_tally(
                        day_start,
                        day_end.min(now.max(day_start)),
                        &tally,
                        self.settings.service_level_ms(name),
                    ),
                    totals: q.totals.clone(),
                }
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .map(|(name, a)| AgentView {
                agent: name.clone(),
                status: a.status.clone(),
                since: a.since,
                time_in_state_ms: u64::try_from(now - a.since).unwrap_or(0),
                queues: a.queues.iter().cloned().collect(),
                reachable: a.reachable,
                today: AgentFigures::from_tally(self.agent_tally(a, day_start, day_end, now)),
            })
            .collect();
        Overview {
            now,
            timezone: zone.name().to_owned(),
            day_start,
            queues,
            agents,
        }
    }

    /// The figures of the local day holding `day`, and of each of its intervals up to `now`.
    pub fn queue_day(&self, queue: &str, day: EpochMs, now: EpochMs) -> Option<QueueDay> {
        let q = self.queues.get(queue)?;
        let zone = &self.settings.zone;
        let start = zone.day_start(day);
        let end = zone.day_end(day);
        let sl_ms = self.settings.service_level_ms(queue);
        let open = self.open_level(q, now);
        let mut intervals = Vec::new();
        let mut t = start;
        while t < end.min(now) {
            let mut tally = q.intervals.get(&t).cloned().unwrap_or_default();
            open.add_to(&mut tally, t);
            let shown_end = (t + INTERVAL_MS).min(now);
            intervals.push(Figures::from_tally(t, shown_end, &tally, sl_ms));
            t += INTERVAL_MS;
        }
        let (y, m, d) = zone.date(start);
        Some(QueueDay {
            queue: queue.to_owned(),
            date: format!("{y:04}-{m:02}-{d:02}"),
            day: Figures::from_tally(
                start,
                end.min(now.max(start)),
                &self.queue_tally(q, start, end, now),
                sl_ms,
            ),
            intervals,
        })
    }

    fn queue_live(&self, name: &str, q: &QueueState, now: EpochMs) -> QueueLive {
        let oldest = q.waiting.first().map(|(at, _)| *at);
        let mut ringing = 0;
        for (_, call_id) in &q.waiting {
            if self.calls.get(call_id).is_some_and(|c| c.agent.is_some()) {
                ringing += 1;
            }
        }
        let connected = self
            .calls
            .values()
            .filter(|c| c.connected && c.queue == name)
            .count() as u32;
        let mut agents = AgentCounts::default();
        for a in self.agents.values().filter(|a| a.queues.contains(name)) {
            agents.count(&a.status);
        }
        QueueLive {
            waiting: q.waiting.len() as u32,
            longest_wait_ms: oldest.map_or(0, |at| u64::try_from(now - at).unwrap_or(0)),
            oldest_entered_at: oldest,
            ringing,
            connected,
            agents,
        }
    }

    /// The current waiting count, and the time it has held not yet settled into the
    /// intervals (ms per interval).
    fn open_level(&self, q: &QueueState, now: EpochMs) -> OpenLevel {
        let mut open = OpenLevel {
            level: q.waiting.len() as u32,
            ms: BTreeMap::new(),
        };
        if open.level > 0 {
            split(q.level_since.max(self.window_start), now, |start, ms| {
                open.ms.insert(start, ms);
            });
        }
        open
    }

    fn queue_tally(&self, q: &QueueState, from: EpochMs, to: EpochMs, now: EpochMs) -> QueueTally {
        let mut tally = QueueTally::default();
        for (_, t) in q.intervals.range(from..to) {
            tally.add(t);
        }
        let open = self.open_level(q, now);
        for (&start, _) in open.ms.range(from..to) {
            open.add_to(&mut tally, start);
        }
        tally
    }

    fn agent_tally(&self, a: &AgentState, from: EpochMs, to: EpochMs, now: EpochMs) -> AgentTally {
        let mut tally = AgentTally::default();
        for (_, t) in a.intervals.range(from..to) {
            tally.add(t);
        }
        let open_from = a.since.max(self.window_start).max(from);
        split(open_from, now.min(to), |_, ms| {
            add_state_time(&mut tally, &a.status, ms)
        });
        tally
    }
}

struct OpenLevel {
    level: u32,
    ms: BTreeMap<EpochMs, u64>,
}

impl OpenLevel {
    fn add_to(&self, tally: &mut QueueTally, interval: EpochMs) {
        if let Some(&ms) = self.ms.get(&interval_start(interval)) {
            tally.waiting_call_ms += u64::from(self.level) * ms;
            tally.peak_waiting = tally.peak_waiting.max(self.level);
        }
    }
}
