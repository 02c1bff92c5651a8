//! Stats throughput: folding a synthetic busy day, computing the live overview from it (done
//! every `publish_ms` and on every API read), and appending events to the SQLite log in
//! batches against one transaction per event (the baseline the batching is measured by).
//!
//! Run: `cargo bench --bench stats_fold`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hotline::events::{Event, EventKind, HungUpBy};
use hotline::stats::{EventLog, Fold, FoldSettings};

const DAY_START: i64 = 1_748_822_400_000; // 2025-06-02 00:00 UTC

/// `calls` calls spread over one day across 10 queues and 100 agents: enter, offer,
/// connect, end, wrap-up, with every tenth call abandoned.
fn day(calls: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(calls * 7 + 100);
    for a in 0..100 {
        out.push(Event {
            at: DAY_START,
            kind: EventKind::AgentLogin {
                agent: format!("agent{a}"),
                queues: vec![format!("queue{}", a % 10)],
            },
        });
    }
    let step = 86_400_000 / calls as i64;
    for i in 0..calls {
        let t = DAY_START + i as i64 * step;
        let call_id = format!("call-{i}");
        let queue = format!("queue{}", i % 10);
        let agent = format!("agent{}", i % 100);
        let ev = |at: i64, kind| Event { at, kind };
        out.push(ev(
            t,
            EventKind::EnterQueue {
                call_id: call_id.clone(),
                queue: queue.clone(),
                position: 1,
                language: "cmn".into(),
                intent: None,
                priority: 0,
            },
        ));
        if i % 10 == 9 {
            out.push(ev(
                t + 30_000,
                EventKind::Abandoned {
                    call_id,
                    queue,
                    position: 1,
                    wait_ms: 30_000,
                },
            ));
            continue;
        }
        let wait = (i % 40) as i64 * 1000;
        out.push(ev(
            t + wait - 3000,
            EventKind::AgentOffered {
                call_id: call_id.clone(),
                queue: queue.clone(),
                agent: agent.clone(),
            },
        ));
        out.push(ev(
            t + wait,
            EventKind::Connected {
                call_id: call_id.clone(),
                queue: queue.clone(),
                agent: agent.clone(),
                wait_ms: wait as u64,
                ring_ms: 3000,
            },
        ));
        out.push(ev(
            t + wait + 120_000,
            EventKind::CallEnded {
                call_id,
                queue: queue.clone(),
                agent: agent.clone(),
                talk_ms: 120_000,
                hung_up_by: HungUpBy::Caller,
            },
        ));
        out.push(ev(
            t + wait + 120_000,
            EventKind::WrapUpStarted {
                agent: agent.clone(),
                queue,
            },
        ));
        out.push(ev(t + wait + 150_000, EventKind::WrapUpEnded { agent }));
    }
    out
}

fn fold_all(events: &[Event]) -> Fold {
    let mut f = Fold::new(FoldSettings::utc());
    for e in events {
        f.apply(e);
    }
    f
}

fn benches(c: &mut Criterion) {
    // Beijing's 40,000 calls a day.
    let events = day(40_000);
    let mut g = c.benchmark_group("fold");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("a 40k-call day", |b| {
        b.iter(|| black_box(fold_all(&events)))
    });
    g.finish();

    let fold = fold_all(&events);
    c.bench_function("overview of a 40k-call day, 100 agents", |b| {
        b.iter(|| black_box(fold.overview(DAY_START + 86_399_000)))
    });

    let dir = std::env::temp_dir().join(format!("hotline-bench-{}", std::process::id()));
    let sample: Vec<Event> = events[..256].to_vec();
    let mut g = c.benchmark_group("log append 256 events");
    g.sample_size(10);
    g.throughput(Throughput::Elements(sample.len() as u64));
    for (name, batch) in [
        ("one transaction per event (baseline)", 1),
        ("batches of 1024", 1024),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let _ = std::fs::remove_dir_all(&dir);
                    EventLog::open(&dir.join("events.sqlite")).expect("open log")
                },
                |mut log| {
                    for chunk in sample.chunks(batch) {
                        log.append(chunk).expect("append");
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(stats, benches);
criterion_main!(stats);
