//! Restarting the stats actor on the same SQLite file gives the same figures as before, and
//! a pure replay of the file equals the live fold exactly, calls in flight included.

mod common;

use hotline::events::{Event, EventKind, HungUpBy, now_ms};
use hotline::metrics::Registry;
use hotline::stats::{EventLog, FoldSettings, Overview, Roster, Stats, replay};

fn kinds(base: i64) -> Vec<Event> {
    let e = |at: i64, kind| Event {
        at: base + at,
        kind,
    };
    let enter = |call: &str, queue: &str, position| EventKind::EnterQueue {
        call_id: call.into(),
        queue: queue.into(),
        position,
        language: "cmn".into(),
        intent: Some("tax".into()),
        priority: 0,
    };
    vec![
        e(
            0,
            EventKind::AgentLogin {
                agent: "a1".into(),
                queues: vec!["tax".into()],
            },
        ),
        e(
            0,
            EventKind::AgentLogin {
                agent: "a2".into(),
                queues: vec!["tax".into(), "water".into()],
            },
        ),
        e(
            1_000,
            EventKind::CallOffered {
                call_id: "c1".into(),
                caller: "1380000".into(),
                called: "12345".into(),
            },
        ),
        e(2_000, enter("c1", "tax", 1)),
        e(2_500, enter("c2", "tax", 2)),
        e(3_000, enter("c3", "water", 1)),
        e(
            4_000,
            EventKind::AgentOffered {
                call_id: "c1".into(),
                queue: "tax".into(),
                agent: "a1".into(),
            },
        ),
        e(
            7_000,
            EventKind::Connected {
                call_id: "c1".into(),
                queue: "tax".into(),
                agent: "a1".into(),
                wait_ms: 5_000,
                ring_ms: 3_000,
            },
        ),
        e(
            9_000,
            EventKind::Abandoned {
                call_id: "c2".into(),
                queue: "tax".into(),
                position: 1,
                wait_ms: 6_500,
            },
        ),
        e(
            10_000,
            EventKind::AgentOffered {
                call_id: "c3".into(),
                queue: "water".into(),
                agent: "a2".into(),
            },
        ),
        e(
            12_000,
            EventKind::Connected {
                call_id: "c3".into(),
                queue: "water".into(),
                agent: "a2".into(),
                wait_ms: 9_000,
                ring_ms: 2_000,
            },
        ),
        e(
            40_000,
            EventKind::CallEnded {
                call_id: "c1".into(),
                queue: "tax".into(),
                agent: "a1".into(),
                talk_ms: 33_000,
                hung_up_by: HungUpBy::Agent,
            },
        ),
        e(
            40_000,
            EventKind::WrapUpStarted {
                agent: "a1".into(),
                queue: "tax".into(),
            },
        ),
        e(50_000, EventKind::WrapUpEnded { agent: "a1".into() }),
        e(
            55_000,
            EventKind::CallEnded {
                call_id: "c3".into(),
                queue: "water".into(),
                agent: "a2".into(),
                talk_ms: 43_000,
                hung_up_by: HungUpBy::Caller,
            },
        ),
        e(
            60_000,
            EventKind::AgentPause {
                agent: "a2".into(),
                reason: "meeting".into(),
            },
        ),
        e(
            70_000,
            EventKind::AgentLogout {
                agent: "a1".into(),
                reason: "shift end".into(),
            },
        ),
        e(
            75_000,
            EventKind::AgentLogout {
                agent: "a2".into(),
                reason: "shift end".into(),
            },
        ),
    ]
}

async fn wait_for_events(stats: &Stats, want: usize) {
    for _ in 0..2000 {
        if stats.handle.recent(1000, None).await.unwrap().len() >= want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the actor did not log {want} events");
}

#[tokio::test]
async fn restart_replays_to_identical_figures() {
    let dir = common::out_dir("stats_replay");
    let config = common::stats::stats_config(&dir);
    let (sink, rx) = hotline::events::EventSink::new();
    let stats = Stats::start(&config, &Roster::default(), rx, &Registry::new()).unwrap();
    // After the actor's EngineStarted, as in the engine.
    let base = now_ms() + 1;
    let events = kinds(base);
    let query_now = base + 80_000;
    for ev in &events {
        sink.emit_at(ev.at, ev.kind.clone());
    }
    wait_for_events(&stats, events.len() + 1).await;
    let before: Overview = stats.handle.overview(query_now).await.unwrap();
    let tax = before.queues.iter().find(|q| q.queue == "tax").unwrap();
    assert_eq!(
        (tax.today.offered, tax.today.answered, tax.today.abandoned),
        (2, 1, 1)
    );
    assert_eq!(tax.today.aht_ms, Some(43_000.0));
    drop(sink);
    stats.stop().await;

    // Pure replay of the file, at the same `now`, with the same settings.
    let log = EventLog::open_read_only(&config.database).unwrap();
    let settings = FoldSettings::from_config(&config).unwrap();
    let replayed = replay(&log, settings, query_now).unwrap();
    assert_eq!(replayed.overview(query_now), before);
    drop(log);

    // A restarted actor: everything was closed before the stop, so the restart marker
    // changes nothing and the figures are identical.
    let (_sink, rx) = hotline::events::EventSink::new();
    let again = Stats::start(&config, &Roster::default(), rx, &Registry::new()).unwrap();
    let after = again.handle.overview(query_now).await.unwrap();
    assert_eq!(after.queues, before.queues);
    assert_eq!(after.agents, before.agents);
    again.stop().await;

    let queue_log = std::fs::read_to_string(dir.join("queue_log")).unwrap();
    let s = base / 1000;
    assert!(
        queue_log.contains(&format!("{}|c1|tax|NONE|ENTERQUEUE||1380000|1\n", s + 2)),
        "{queue_log}"
    );
    assert!(
        queue_log.contains(&format!("{}|c2|tax|NONE|ABANDON|1|2|6\n", s + 9)),
        "{queue_log}"
    );
    assert!(
        queue_log.contains(&format!("{}|c1|tax|a1|COMPLETEAGENT|5|33|1\n", s + 40)),
        "{queue_log}"
    );
    assert_eq!(queue_log.matches("QUEUESTART").count(), 2, "{queue_log}");
}

#[tokio::test]
async fn replay_with_calls_in_flight_equals_the_live_fold() {
    let dir = common::out_dir("stats_replay_in_flight");
    let config = common::stats::stats_config(&dir);
    let (sink, rx) = hotline::events::EventSink::new();
    let stats = Stats::start(&config, &Roster::default(), rx, &Registry::new()).unwrap();
    let base = now_ms() + 1;
    // Stop after c1 connected while c2 and c3 wait: calls and agents are mid-state.
    let events: Vec<Event> = kinds(base).into_iter().take(8).collect();
    for ev in &events {
        sink.emit_at(ev.at, ev.kind.clone());
    }
    wait_for_events(&stats, events.len() + 1).await;
    let now = base + 30_000;
    let live = stats.handle.overview(now).await.unwrap();
    let tax = live.queues.iter().find(|q| q.queue == "tax").unwrap();
    assert_eq!(tax.live.waiting, 1);
    assert_eq!(tax.live.longest_wait_ms, 27_500);
    stats.stop().await;
    let log = EventLog::open_read_only(&config.database).unwrap();
    let fold = replay(&log, FoldSettings::from_config(&config).unwrap(), now).unwrap();
    assert_eq!(fold.overview(now), live);
    for q in ["tax", "water"] {
        assert_eq!(
            fold.queue_day(q, now, now),
            stats_day(&config, q, now).await,
        );
    }
    drop(log);

    // The engine starts again after this stop (as after kill -9): the calls left open are
    // logged closed, and the outcomes add up to what was offered.
    let (_sink, rx) = hotline::events::EventSink::new();
    let again = Stats::start(&config, &Roster::default(), rx, &Registry::new()).unwrap();
    let recent = again.handle.recent(1000, None).await.unwrap();
    let closed: Vec<&EventKind> = recent
        .iter()
        .map(|s| &s.event.kind)
        .filter(|k| {
            matches!(k, EventKind::CallFinished { outcome, .. } if outcome == "interrupted")
                || matches!(
                    k,
                    EventKind::CallEnded {
                        hung_up_by: HungUpBy::System,
                        ..
                    }
                )
        })
        .collect();
    assert_eq!(
        closed.len(),
        3,
        "c1 ended, c2 and c3 interrupted: {closed:?}"
    );
    let later = now + 60_000;
    let o = again.handle.overview(later).await.unwrap();
    for q in &o.queues {
        let t = &q.today;
        assert_eq!(q.live.waiting + q.live.connected, 0, "{}", q.queue);
        assert_eq!(
            t.offered,
            t.answered + t.abandoned + t.overflowed + t.timed_out + t.exited_empty + t.interrupted,
            "{}: {t:?}",
            q.queue
        );
    }
    again.stop().await;
}

/// The same day through a freshly replayed fold (a second, independent read of the file).
async fn stats_day(
    config: &hotline::stats::StatsConfig,
    queue: &str,
    now: i64,
) -> Option<hotline::stats::QueueDay> {
    let log = EventLog::open_read_only(&config.database).unwrap();
    let fold = replay(&log, FoldSettings::from_config(config).unwrap(), now).unwrap();
    fold.queue_day(queue, now, now)
}
