//! /metrics: the engine's registry (SIP, RTP, ASR pool... counters owned by their modules)
//! followed by the queue figures, rendered from the stats fold at the moment of the scrape
//! so that they can never drift from what the dashboard shows.

use std::fmt::Write as _;

use crate::metrics::Registry;
use crate::stats::Overview;

pub(super) fn render(registry: &Registry, o: &Overview) -> String {
    let mut out = registry.render();
    let mut family = |name: &str, help: &str, kind: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let q = |queue: &str| format!("queue=\"{}\"", escape(queue));
    family(
        "hotline_queue_waiting_calls",
        "Calls waiting in the queue now",
        "gauge",
        o.queues
            .iter()
            .map(|v| (q(&v.queue), v.live.waiting.to_string()))
            .collect(),
    );
    family(
        "hotline_queue_longest_wait_seconds",
        "How long the longest-waiting call has waited",
        "gauge",
        o.queues
            .iter()
            .map(|v| (q(&v.queue), secs(v.live.longest_wait_ms)))
            .collect(),
    );
    family(
        "hotline_queue_agents",
        "Agents serving the queue, by state",
        "gauge",
        o.queues
            .iter()
            .flat_map(|v| {
                let a = &v.live.agents;
                [
                    ("logged_out", a.logged_out),
                    ("available", a.available),
                    ("ringing", a.ringing),
                    ("on_call", a.on_call),
                    ("wrap_up", a.wrap_up),
                    ("paused", a.paused),
                ]
                .map(|(state, n)| (format!("{},state=\"{state}\"", q(&v.queue)), n.to_string()))
            })
            .collect(),
    );
    family(
        "hotline_queue_service_level_ratio",
        "Today's service level (answered within T over calls that left the queue)",
        "gauge",
        o.queues
            .iter()
            .filter_map(|v| {
                let pct = v.today.service_level_pct?;
                Some((q(&v.queue), format!("{}", pct / 100.0)))
            })
            .collect(),
    );
    family(
        "hotline_queue_calls_total",
        "Calls by queue outcome since the engine started (the log's replayed days included)",
        "counter",
        o.queues
            .iter()
            .flat_map(|v| {
                let t = &v.totals;
                [
                    ("entered", t.entered),
                    ("answered", t.answered),
                    ("abandoned", t.abandoned),
                    ("short_abandoned", t.short_abandoned),
                    ("overflowed", t.overflowed),
                    ("timed_out", t.timed_out),
                    ("exited_empty", t.exited_empty),
                    ("join_refused", t.join_refused),
                    ("interrupted", t.interrupted),
                ]
                .map(|(outcome, n)| {
                    (
                        format!("{},outcome=\"{outcome}\"", q(&v.queue)),
                        n.to_string(),
                    )
                })
            })
            .collect(),
    );
    out
}

fn secs(ms: u64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
