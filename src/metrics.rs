//! Prometheus metrics: a registry of named counters and gauges that modules create once at
//! start-up and then bump lock-free. It renders the text exposition format for /metrics.
//! It holds no other state: figures that can be folded from the event log live in `stats`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

enum Value {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
}

struct Series {
    name: &'static str,
    help: &'static str,
    labels: Vec<(&'static str, String)>,
    value: Value,
}

/// All metrics of one engine. Cheap to share (`Arc`); registration takes a lock, updates
/// do not.
#[derive(Default)]
pub struct Registry {
    series: Mutex<Vec<Series>>,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// The counter with this name and labels, created on first use.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Arc<Counter> {
        let mut series = self.lock();
        if let Some(Value::Counter(c)) = find(&series, name, labels) {
            return c.clone();
        }
        let c = Arc::new(Counter::default());
        series.push(Series {
            name,
            help,
            labels: own(labels),
            value: Value::Counter(c.clone()),
        });
        c
    }

    /// The gauge with this name and labels, created on first use.
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Arc<Gauge> {
        let mut series = self.lock();
        if let Some(Value::Gauge(g)) = find(&series, name, labels) {
            return g.clone();
        }
        let g = Arc::new(Gauge::default());
        series.push(Series {
            name,
            help,
            labels: own(labels),
            value: Value::Gauge(g.clone()),
        });
        g
    }

    /// The Prometheus text exposition of every series, grouped by name.
    pub fn render(&self) -> String {
        let series = self.lock();
        let mut names: Vec<&'static str> = series.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        let mut out = String::new();
        for name in names {
            let mut first = true;
            for s in series.iter().filter(|s| s.name == name) {
                if first {
                    let kind = match s.value {
                        Value::Counter(_) => "counter",
                        Value::Gauge(_) => "gauge",
                    };
                    let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", s.help);
                    first = false;
                }
                out.push_str(name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in s.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let v = v
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        let _ = write!(out, "{k}=\"{v}\"");
                    }
                    out.push('}');
                }
                let _ = match &s.value {
                    Value::Counter(c) => writeln!(out, " {}", c.get()),
                    Value::Gauge(g) => writeln!(out, " {}", g.get()),
                };
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Series>> {
        // A panic while holding this lock cannot leave the list half-updated (push is
        // atomic from our point of view), so a poisoned lock is still usable.
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn find<'a>(series: &'a [Series], name: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    series
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && s.labels
                    .iter()
                    .zip(labels)
                    .all(|((a, b), (c, d))| a == c && b == d)
        })
        .map(|s| &s.value)
}

fn own(labels: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_labels() {
        let r = Registry::new();
        let a = r.counter(
            "hotline_sip_responses_total",
            "SIP responses sent",
            &[("code", "200")],
        );
        let b = r.counter(
            "hotline_sip_responses_total",
            "SIP responses sent",
            &[("code", "486")],
        );
        a.add(3);
        b.inc();
        r.gauge("hotline_calls", "Calls in progress", &[]).set(7);
        // The same name and labels give back the same counter.
        r.counter(
            "hotline_sip_responses_total",
            "SIP responses sent",
            &[("code", "200")],
        )
        .inc();
        let text = r.render();
        assert!(
            text.contains("# TYPE hotline_sip_responses_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("hotline_sip_responses_total{code=\"200\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("hotline_sip_responses_total{code=\"486\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE hotline_calls gauge\nhotline_calls 7\n"),
            "{text}"
        );
    }
}
