//! Hand-written event sequences folded into exact figures.

use std::path::Path;

use crate::events::{EpochMs, Event, EventKind, HungUpBy};

use super::config::FoldSettings;
use super::figures::AgentStatus;
use super::fold::{Fold, Roster};
use super::tz::{Zone, days_from_civil};

/// 2025-06-02 08:00:00 UTC, on an interval boundary.
const T0: EpochMs = 1_748_851_200_000;
const S: i64 = 1000;
const MIN: i64 = 60 * S;

fn settings() -> FoldSettings {
    FoldSettings::utc()
}

struct Script(Vec<Event>);

impl Script {
    fn new() -> Script {
        Script(Vec::new())
    }
    fn at(&mut self, at: EpochMs, kind: EventKind) -> &mut Self {
        self.0.push(Event { at, kind });
        self
    }
    fn enter(&mut self, at: EpochMs, call: &str, queue: &str) -> &mut Self {
        self.at(
            at,
            EventKind::EnterQueue {
                call_id: call.into(),
                queue: queue.into(),
                position: 1,
                language: "cmn".into(),
                intent: None,
                priority: 0,
            },
        )
    }
    fn offer(&mut self, at: EpochMs, call: &str, queue: &str, agent: &str) -> &mut Self {
        self.at(
            at,
            EventKind::AgentOffered {
                call_id: call.into(),
                queue: queue.into(),
                agent: agent.into(),
            },
        )
    }
    fn connect(
        &mut self,
        at: EpochMs,
        call: &str,
        queue: &str,
        agent: &str,
        wait: i64,
    ) -> &mut Self {
        self.at(
            at,
            EventKind::Connected {
                call_id: call.into(),
                queue: queue.into(),
                agent: agent.into(),
                wait_ms: wait as u64,
                ring_ms: 0,
            },
        )
    }
    fn end(&mut self, at: EpochMs, call: &str, queue: &str, agent: &str, talk: i64) -> &mut Self {
        self.at(
            at,
            EventKind::CallEnded {
                call_id: call.into(),
                queue: queue.into(),
                agent: agent.into(),
                talk_ms: talk as u64,
                hung_up_by: HungUpBy::Caller,
            },
        )
    }
    fn abandon(&mut self, at: EpochMs, call: &str, queue: &str, wait: i64) -> &mut Self {
        self.at(
            at,
            EventKind::Abandoned {
                call_id: call.into(),
                queue: queue.into(),
                position: 1,
                wait_ms: wait as u64,
            },
        )
    }
    fn login(&mut self, at: EpochMs, agent: &str, queues: &[&str]) -> &mut Self {
        self.at(
            at,
            EventKind::AgentLogin {
                agent: agent.into(),
                queues: queues.iter().map(|q| q.to_string()).collect(),
            },
        )
    }
    fn fold(&self, settings: FoldSettings) -> Fold {
        let mut f = Fold::new(settings);
        for e in &self.0 {
            f.apply(e);
        }
        f
    }
}

#[test]
fn service_level_edges_short_abandon_and_overflow() {
    let mut s = Script::new();
    s.login(T0, "a1", &["q"]).login(T0, "a2", &["q"]);
    s.enter(T0, "c1", "q")
        .enter(T0 + S, "c2", "q")
        .enter(T0 + 2 * S, "c3", "q")
        .enter(T0 + 3 * S, "c4", "q")
        .enter(T0 + 4 * S, "c5", "q")
        .enter(T0 + 5 * S, "c6", "q");
    // Short abandon: one millisecond under the 5 s threshold; the next one is exactly at it.
    s.abandon(T0 + 2 * S + 4_999, "c3", "q", 4_999);
    s.abandon(T0 + 8 * S, "c4", "q", 5_000);
    // Answered at exactly T (20 s) is within the service level; 1 ms later is not.
    s.connect(T0 + 20 * S, "c1", "q", "a1", 20_000);
    s.connect(T0 + 21 * S + 1, "c2", "q", "a2", 20_001);
    s.at(
        T0 + 64 * S,
        EventKind::Overflowed {
            call_id: "c5".into(),
            queue: "q".into(),
            target: "other".into(),
            wait_ms: 60_000,
            position: 1,
        },
    );
    s.at(
        T0 + 95 * S,
        EventKind::ExitWithTimeout {
            call_id: "c6".into(),
            queue: "q".into(),
            position: 1,
            wait_ms: 90_000,
        },
    );
    s.end(T0 + 120 * S, "c1", "q", "a1", 100_000);
    s.at(
        T0 + 120 * S,
        EventKind::WrapUpStarted {
            agent: "a1".into(),
            queue: "q".into(),
        },
    );
    s.end(T0 + 71 * S + 1, "c2", "q", "a2", 50_000);
    s.at(T0 + 130 * S, EventKind::WrapUpEnded { agent: "a1".into() });

    let fold = s.fold(settings());
    let day = fold.queue_day("q", T0, T0 + 10 * MIN).unwrap();
    let f = &day.intervals[32]; // 08:00-08:15
    assert_eq!(f.start, T0);
    assert_eq!(f.offered, 5);
    assert_eq!(f.answered, 2);
    assert_eq!(f.answered_within_sl, 1);
    assert_eq!(f.abandoned, 1);
    assert_eq!(f.short_abandoned, 1);
    assert_eq!(f.overflowed, 1);
    assert_eq!(f.timed_out, 1);
    // 1 within T / (2 answered + 1 abandoned + 1 overflowed + 1 timed out).
    assert_eq!(f.service_level_pct, Some(20.0));
    assert_eq!(f.asa_ms, Some(20_000.5));
    assert_eq!(f.avg_wait_ms, Some(195_001.0 / 5.0));
    assert_eq!(f.max_wait_ms, Some(90_000));
    assert_eq!(f.wait_p50_ms, Some(20_001));
    assert_eq!(f.wait_p80_ms, Some(60_000));
    assert_eq!(f.wait_p90_ms, Some(90_000));
    assert_eq!(f.handled, 2);
    assert_eq!(f.wrapup_ms, 10_000);
    assert_eq!(f.aht_ms, Some(80_000.0));
    // The day adds up to the same, since nothing happened in other intervals.
    assert_eq!(day.day.offered, 5);
    assert_eq!(day.day.service_level_pct, Some(20.0));
    assert_eq!(day.intervals.len(), 33);
    assert!(day.intervals[..32].iter().all(|i| i.offered == 0));
}

#[test]
fn per_queue_service_level_target() {
    let mut st = settings();
    st.queue_service_level_ms.insert("slow".into(), 30_000);
    let mut s = Script::new();
    s.enter(T0, "c1", "slow")
        .connect(T0 + 25 * S, "c1", "slow", "a", 25_000);
    s.enter(T0, "c2", "fast")
        .connect(T0 + 25 * S, "c2", "fast", "b", 25_000);
    let o = s.fold(st).overview(T0 + MIN);
    let sl = |q: &str| {
        let v = o.queues.iter().find(|v| v.queue == q).unwrap();
        (v.today.service_level_s, v.today.service_level_pct)
    };
    assert_eq!(sl("slow"), (30, Some(100.0)));
    assert_eq!(sl("fast"), (20, Some(0.0)));
}

#[test]
fn waiting_level_spans_intervals_and_counts_up_to_now() {
    let mut s = Script::new();
    s.enter(T0 + 14 * MIN, "c1", "q")
        .enter(T0 + 14 * MIN + 30 * S, "c2", "q");
    let fold = s.fold(settings());
    let now = T0 + 16 * MIN;
    let o = fold.overview(now);
    let live = &o.queues[0].live;
    assert_eq!(live.waiting, 2);
    assert_eq!(live.longest_wait_ms, 2 * 60_000);
    assert_eq!(live.oldest_entered_at, Some(T0 + 14 * MIN));
    let day = fold.queue_day("q", now, now).unwrap();
    let first = &day.intervals[32];
    // 1 call for 30 s and 2 calls for 30 s over a 15-minute interval.
    assert_eq!(first.avg_waiting, 90_000.0 / 900_000.0);
    assert_eq!(first.peak_waiting, 2);
    assert_eq!(first.offered, 2);
    let second = &day.intervals[33];
    assert_eq!((second.start, second.end), (T0 + 15 * MIN, now));
    assert_eq!(second.avg_waiting, 2.0);
    assert_eq!(second.peak_waiting, 2);
    assert_eq!(second.offered, 0);
    // Asking again later gives the later figures: the query did not change the fold.
    assert_eq!(
        fold.overview(now + MIN).queues[0].live.longest_wait_ms,
        3 * 60_000
    );
    assert_eq!(fold.overview(now), o);
}

#[test]
fn agent_time_by_state_pause_reasons_and_occupancy() {
    let mut s = Script::new();
    s.login(T0, "a", &["q"]).enter(T0 + 5 * S, "c", "q");
    s.offer(T0 + 10 * S, "c", "q", "a")
        .connect(T0 + 15 * S, "c", "q", "a", 10_000)
        .end(T0 + 75 * S, "c", "q", "a", 60_000)
        .at(
            T0 + 75 * S,
            EventKind::WrapUpStarted {
                agent: "a".into(),
                queue: "q".into(),
            },
        )
        .at(T0 + 95 * S, EventKind::WrapUpEnded { agent: "a".into() })
        .at(
            T0 + 100 * S,
            EventKind::AgentPause {
                agent: "a".into(),
                reason: "lunch".into(),
            },
        )
        .at(T0 + 160 * S, EventKind::AgentResume { agent: "a".into() })
        .at(
            T0 + 170 * S,
            EventKind::AgentPause {
                agent: "a".into(),
                reason: "training".into(),
            },
        );
    let fold = s.fold(settings());
    let o = fold.overview(T0 + 200 * S);
    let a = &o.agents[0];
    assert_eq!(
        a.status,
        AgentStatus::Paused {
            reason: "training".into()
        }
    );
    assert_eq!((a.since, a.time_in_state_ms), (T0 + 170 * S, 30_000));
    let t = &a.today.tally;
    assert_eq!(t.calls, 1);
    assert_eq!(t.available_ms, 10_000 + 5_000 + 10_000);
    assert_eq!(t.ringing_ms, 5_000);
    assert_eq!(t.talk_ms, 60_000);
    assert_eq!(t.wrapup_ms, 20_000);
    assert_eq!(t.paused_ms, 90_000);
    assert_eq!(t.pause_by_reason_ms["lunch"], 60_000);
    assert_eq!(t.pause_by_reason_ms["training"], 30_000);
    assert_eq!(a.today.logged_in_ms, 200_000);
    assert_eq!(a.today.occupancy_pct, Some(85.0 / 110.0 * 100.0));
    assert_eq!(o.queues[0].live.agents.paused, 1);
    // The wrap-up counts in the handle time of the queue's call.
    assert_eq!(o.queues[0].today.aht_ms, Some(80_000.0));
}

#[test]
fn an_agents_phone_probed_down_shows_unreachable_until_it_answers_again() {
    let peer = |kind: &str, up: bool| {
        let (peer, kind) = ("a".to_owned(), kind.to_owned());
        if up {
            EventKind::PeerUp { peer, kind }
        } else {
            EventKind::PeerDown {
                peer,
                kind,
                reason: "timeout".into(),
            }
        }
    };
    let mut s = Script::new();
    s.login(T0, "a", &["q"]);
    // A trunk of the same name is not the agent.
    s.at(T0 + S, peer("trunk", false));
    let reachable = |s: &Script, at| s.fold(settings()).overview(at).agents[0].reachable;
    assert!(reachable(&s, T0 + 2 * S));
    s.at(T0 + 3 * S, peer("agent", false));
    assert!(!reachable(&s, T0 + 4 * S));
    s.at(T0 + 5 * S, peer("agent", true));
    assert!(reachable(&s, T0 + 6 * S));
    s.at(T0 + 7 * S, peer("agent", false))
        .at(T0 + 8 * S, EventKind::EngineStarted {});
    assert!(
        reachable(&s, T0 + 9 * S),
        "after a restart nothing is known yet"
    );
}

#[test]
fn ring_no_answer_and_abandon_while_ringing_free_the_agent() {
    let mut s = Script::new();
    s.login(T0, "a", &["q"]).login(T0, "b", &["q"]);
    s.enter(T0, "c", "q").offer(T0 + S, "c", "q", "a");
    let mid = s.fold(settings()).overview(T0 + 2 * S);
    assert_eq!(mid.queues[0].live.ringing, 1);
    assert_eq!(mid.queues[0].live.agents.ringing, 1);
    s.at(
        T0 + 16 * S,
        EventKind::RingNoAnswer {
            call_id: "c".into(),
            queue: "q".into(),
            agent: "a".into(),
            ring_ms: 15_000,
        },
    );
    s.offer(T0 + 16 * S, "c", "q", "b");
    s.abandon(T0 + 20 * S, "c", "q", 20_000);
    let o = s.fold(settings()).overview(T0 + 30 * S);
    let q = &o.queues[0];
    assert_eq!(q.live.waiting, 0);
    assert_eq!(q.live.agents.available, 2);
    assert_eq!(q.today.abandoned, 1);
    assert_eq!(q.today.service_level_pct, Some(0.0));
    assert_eq!(o.agents[0].today.tally.ring_no_answer, 1);
    assert_eq!(o.agents[0].today.tally.ringing_ms, 15_000);
    assert_eq!(o.agents[1].today.tally.ringing_ms, 4_000);
}

#[test]
fn a_call_refused_at_the_door_is_counted_apart_and_never_offered() {
    let mut s = Script::new();
    s.at(
        T0 + S,
        EventKind::JoinRefused {
            call_id: "c".into(),
            queue: "q".into(),
        },
    );
    s.enter(T0 + 2 * S, "c", "other");
    let o = s.fold(settings()).overview(T0 + 3 * S);
    let q = o.queues.iter().find(|q| q.queue == "q").expect("queue q");
    assert_eq!(q.today.join_refused, 1);
    assert_eq!(q.today.offered, 0);
    assert_eq!(q.today.service_level_pct, None);
    assert_eq!(q.totals.join_refused, 1);
    let other = o
        .queues
        .iter()
        .find(|q| q.queue == "other")
        .expect("queue other");
    assert_eq!(other.today.offered, 1);
    assert_eq!(other.today.join_refused, 0);
}

#[test]
fn ring_all_frees_the_other_ringing_agents_when_one_answers_or_the_caller_leaves() {
    let mut s = Script::new();
    for a in ["a", "b", "c"] {
        s.login(T0, a, &["q"]);
    }
    s.enter(T0, "c1", "q");
    for a in ["a", "b", "c"] {
        s.offer(T0 + S, "c1", "q", a);
    }
    let ringing = s.fold(settings()).overview(T0 + 2 * S);
    assert_eq!(ringing.queues[0].live.agents.ringing, 3);
    s.connect(T0 + 3 * S, "c1", "q", "b", 3_000);
    let o = s.fold(settings()).overview(T0 + 4 * S);
    assert_eq!(o.queues[0].live.agents.ringing, 0);
    assert_eq!(o.queues[0].live.agents.available, 2);
    assert_eq!(o.queues[0].live.agents.on_call, 1);

    // A caller who hangs up while all ring frees every one of them.
    s.enter(T0 + 5 * S, "c2", "q");
    s.offer(T0 + 6 * S, "c2", "q", "a")
        .offer(T0 + 6 * S, "c2", "q", "c");
    s.abandon(T0 + 8 * S, "c2", "q", 3_000);
    let o = s.fold(settings()).overview(T0 + 9 * S);
    assert_eq!(o.queues[0].live.agents.ringing, 0);
    assert_eq!(o.queues[0].live.agents.available, 2);
}

/// A waiting call whose media stopped (or that the engine hung up at shutdown) leaves its
/// queue without an Abandoned event (the router sends none for the system's hang-ups): its
/// CallFinished counts it as interrupted, so the abandon rate stays the callers' own.
#[test]
fn a_queued_call_the_system_ended_counts_as_interrupted_not_abandoned() {
    let mut s = Script::new();
    s.enter(T0, "c1", "q").enter(T0, "c2", "q");
    s.abandon(T0 + 5 * S, "c1", "q", 5_000);
    s.at(
        T0 + 30 * S,
        EventKind::CallFinished {
            call_id: "c2".into(),
            outcome: "media_timeout".into(),
        },
    );
    let o = s.fold(settings()).overview(T0 + MIN);
    let q = &o.queues[0];
    assert_eq!(
        (q.today.offered, q.today.abandoned, q.today.interrupted),
        (2, 1, 1)
    );
    assert_eq!(q.live.waiting, 0);
}

/// Supervisors see the whole configured floor from the start of a quiet day: every queue
/// (with its intervals, so the trend chart is drawn at zero) and every agent, logged out
/// until it logs in.
#[test]
fn the_configured_queues_and_agents_show_before_any_event() {
    let mut fold = Fold::new(settings());
    let roster = Roster {
        queues: vec!["q".into(), "quiet".into()],
        agents: vec![
            ("a".into(), vec!["q".into()]),
            ("b".into(), vec!["quiet".into()]),
        ],
    };
    fold.roster(T0, &roster);
    let o = fold.overview(T0 + 30 * MIN);
    let queues: Vec<&str> = o.queues.iter().map(|q| q.queue.as_str()).collect();
    assert_eq!(queues, ["q", "quiet"]);
    let agents: Vec<(&str, &AgentStatus)> = o
        .agents
        .iter()
        .map(|a| (a.agent.as_str(), &a.status))
        .collect();
    assert_eq!(
        agents,
        [
            ("a", &AgentStatus::LoggedOut),
            ("b", &AgentStatus::LoggedOut)
        ]
    );
    assert_eq!(o.queues[1].live.agents.logged_out, 1, "b serves `quiet`");
    let day = fold
        .queue_day("quiet", T0 + 30 * MIN, T0 + 30 * MIN)
        .expect("a configured queue has a day");
    assert!(
        day.intervals.iter().all(|i| i.offered == 0) && day.intervals.len() >= 2,
        "{day:?}"
    );

    let mut s = Script::new();
    s.login(T0 + 31 * MIN, "a", &["q"]);
    for e in &s.0 {
        fold.apply(e);
    }
    let o = fold.overview(T0 + 32 * MIN);
    assert_eq!(o.agents[0].status, AgentStatus::Available);
    assert_eq!(o.agents[1].status, AgentStatus::LoggedOut);
}

#[test]
fn engine_restart_closes_everything_at_the_last_event() {
    let mut s = Script::new();
    s.login(T0, "a", &["q"])
        .enter(T0, "c1", "q")
        .enter(T0, "c2", "q");
    s.offer(T0 + S, "c1", "q", "a")
        .connect(T0 + 2 * S, "c1", "q", "a", 2_000);
    s.at(T0 + 10 * MIN, EventKind::EngineStarted {});
    let fold = s.fold(settings());
    let o = fold.overview(T0 + 11 * MIN);
    let q = &o.queues[0];
    assert_eq!(q.live.waiting, 0);
    assert_eq!(q.live.connected, 0);
    assert_eq!(q.today.interrupted, 1);
    assert_eq!(q.today.offered, 2);
    // Both waited from T0 (c2 until the last event before the restart, T0 + 2 s), averaged
    // over the day so far (08:00 to 08:11).
    assert_eq!(
        q.today.avg_waiting,
        4_000.0 / (8.0 * 3_600_000.0 + 11.0 * 60_000.0)
    );
    assert_eq!(q.today.peak_waiting, 2);
    let a = &o.agents[0];
    assert_eq!(a.status, AgentStatus::LoggedOut);
    assert_eq!(a.since, T0 + 2 * S);
    assert_eq!(a.today.tally.talk_ms, 0);
    assert_eq!(a.today.logged_in_ms, 2_000);
}

#[test]
fn calls_a_crash_left_open_are_closed_so_outcomes_add_up() {
    let mut s = Script::new();
    let offered = |call: &str| EventKind::CallOffered {
        call_id: call.into(),
        caller: "13800000000".into(),
        called: "12345".into(),
    };
    s.login(T0, "a", &["q"])
        .at(T0, offered("ivr"))
        .at(T0, offered("queued"))
        .at(T0, offered("talking"))
        .at(T0, offered("done"))
        .enter(T0 + S, "queued", "q")
        .enter(T0 + S, "talking", "q")
        .enter(T0 + S, "done", "q");
    s.offer(T0 + 2 * S, "talking", "q", "a")
        .connect(T0 + 3 * S, "talking", "q", "a", 2_000);
    s.abandon(T0 + 4 * S, "done", "q", 3_000);
    // kill -9 here: the last event is at T0 + 4 s.
    let fold = s.fold(settings());
    let closing = fold.closing_events();
    assert_eq!(
        closing,
        [
            EventKind::CallFinished {
                call_id: "ivr".into(),
                outcome: "interrupted".into()
            },
            EventKind::CallFinished {
                call_id: "queued".into(),
                outcome: "interrupted".into()
            },
            EventKind::CallEnded {
                call_id: "talking".into(),
                queue: "q".into(),
                agent: "a".into(),
                talk_ms: 1_000,
                hung_up_by: HungUpBy::System
            },
        ]
    );
    for kind in closing {
        s.at(T0 + 4 * S, kind);
    }
    s.at(T0 + 10 * MIN, EventKind::EngineStarted {});
    let fold = s.fold(settings());
    assert!(fold.closing_events().is_empty(), "nothing left open");
    let q = &fold.overview(T0 + 11 * MIN).queues[0];
    // Offered (the short abandon is reported apart) = answered + interrupted.
    assert_eq!(q.today.offered, 2);
    assert_eq!(
        (q.today.answered, q.today.abandoned, q.today.interrupted),
        (1, 0, 1),
        "{:?}",
        q.today
    );
    assert_eq!(q.today.short_abandoned, 1);
    assert_eq!(q.today.handled, 1);
}

#[test]
fn today_starts_at_local_midnight() {
    let mut st = settings();
    st.zone = Zone::load("+08:00", Path::new("/nonexistent")).unwrap();
    // 2025-06-02 00:00 +08:00 is 2025-06-01 16:00 UTC.
    let midnight = days_from_civil(2025, 6, 1) * 86_400_000 + 16 * 3_600_000;
    let mut s = Script::new();
    s.enter(midnight - MIN, "late", "q")
        .connect(midnight - MIN + 10 * S, "late", "q", "a", 10_000)
        .enter(midnight + MIN, "early", "q");
    let o = s.fold(st).overview(midnight + 2 * MIN);
    assert_eq!(o.day_start, midnight);
    assert_eq!(o.queues[0].today.offered, 1);
    assert_eq!(o.queues[0].today.answered, 0);
    assert_eq!(o.queues[0].totals.entered, 2);
}

#[test]
fn events_for_unknown_calls_still_count_and_never_panic() {
    let mut s = Script::new();
    // The window of a replay can start mid-call: no EnterQueue for these.
    s.connect(T0 + 30 * S, "x", "q", "a", 30_000)
        .end(T0 + 90 * S, "x", "q", "a", 60_000)
        .abandon(T0 + 40 * S, "y", "q", 40_000)
        .at(
            T0 + 41 * S,
            EventKind::WrapUpEnded {
                agent: "ghost".into(),
            },
        )
        .at(
            T0 + 42 * S,
            EventKind::CallFinished {
                call_id: "nobody".into(),
                outcome: "hangup".into(),
            },
        );
    let o = s.fold(settings()).overview(T0 + 2 * MIN);
    let q = &o.queues[0];
    assert_eq!(
        (q.today.answered, q.today.abandoned, q.today.handled),
        (1, 1, 1)
    );
    assert_eq!(q.live.waiting, 0);
}

mod random {
    use proptest::prelude::*;

    use super::*;

    fn kind(k: u8, call: u8, agent: u8, queue: u8, ms: u64) -> EventKind {
        let call_id = format!("c{call}");
        let agent = format!("a{agent}");
        let queue = format!("q{queue}");
        match k % 14 {
            0 | 1 => EventKind::EnterQueue {
                call_id,
                queue,
                position: 1,
                language: "cmn".into(),
                intent: None,
                priority: 0,
            },
            2 => EventKind::AgentOffered {
                call_id,
                queue,
                agent,
            },
            3 => EventKind::RingNoAnswer {
                call_id,
                queue,
                agent,
                ring_ms: ms,
            },
            4 => EventKind::Connected {
                call_id,
                queue,
                agent,
                wait_ms: ms,
                ring_ms: ms,
            },
            5 => EventKind::CallEnded {
                call_id,
                queue,
                agent,
                talk_ms: ms,
                hung_up_by: HungUpBy::Agent,
            },
            6 => EventKind::Abandoned {
                call_id,
                queue,
                position: 1,
                wait_ms: ms,
            },
            7 => EventKind::Overflowed {
                call_id,
                queue,
                target: "x".into(),
                wait_ms: ms,
                position: 1,
            },
            8 => EventKind::ExitWithTimeout {
                call_id,
                queue,
                position: 1,
                wait_ms: ms,
            },
            9 => EventKind::AgentLogin {
                agent,
                queues: vec![queue],
            },
            10 => EventKind::AgentPause {
                agent,
                reason: "r".into(),
            },
            11 => EventKind::WrapUpStarted { agent, queue },
            12 => EventKind::CallFinished {
                call_id,
                outcome: "x".into(),
            },
            _ => EventKind::EngineStarted {},
        }
    }

    proptest! {
        #[test]
        fn any_sequence_folds_deterministically_without_panicking(
            steps in prop::collection::vec(
                (-5_000i64..600_000, any::<u8>(), 0u8..6, 0u8..3, 0u8..2,
                 prop_oneof![0u64..120_000, any::<u64>()], any::<bool>(), any::<i64>()),
                0..120,
            )
        ) {
            let mut at = T0;
            let mut events = Vec::new();
            for (dt, k, call, agent, queue, ms, wild, wild_at) in steps {
                at += dt;
                // Now and then a time from a broken clock.
                let t = if wild && dt % 7 == 0 { wild_at } else { at };
                events.push(Event { at: t, kind: kind(k, call, agent, queue, ms) });
            }
            let fold = |events: &[Event]| {
                let mut f = Fold::new(settings());
                for e in events {
                    f.apply(e);
                }
                f
            };
            let (a, b) = (fold(&events), fold(&events));
            let now = at + 1;
            let o = a.overview(now);
            prop_assert_eq!(&o, &b.overview(now));
            for q in &o.queues {
                if let Some(sl) = q.today.service_level_pct {
                    prop_assert!((0.0..=100.0).contains(&sl));
                }
                prop_assert!(q.today.avg_waiting >= 0.0);
                prop_assert!(q.live.ringing <= q.live.waiting);
                let day = a.queue_day(&q.queue, now, now);
                prop_assert!(day.is_some());
            }
            for ag in &o.agents {
                if let Some(occ) = ag.today.occupancy_pct {
                    prop_assert!((0.0..=100.0).contains(&occ));
                }
            }
        }
    }
}
