//! `hotline stats`: the supervisor figures in the terminal, for one queue or all, either
//! from a running engine (its API URL and a token) or straight from the event log file.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use hotline::events::now_ms;
use hotline::sip::uri::percent_encode;
use hotline::stats::{EventLog, FoldSettings, Overview, QueueDay, replay};

use super::serve::load_config;

#[derive(clap::Args)]
pub struct Args {
    /// The queue to show; every queue when absent.
    pub queue: Option<String>,
    /// A running engine's API, e.g. http://127.0.0.1:8080 (plain HTTP).
    #[arg(long, conflicts_with = "db")]
    pub url: Option<String>,
    /// Bearer token for --url; HOTLINE_TOKEN when absent.
    #[arg(long)]
    pub token: Option<String>,
    /// Read this event log instead of the config's `[stats] database`.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Also print today's 15-minute intervals of each queue shown.
    #[arg(long)]
    pub intervals: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<()> {
    let (overview, days) = match &args.url {
        Some(url) => {
            let token = match &args.token {
                Some(t) => t.clone(),
                None => std::env::var("HOTLINE_TOKEN")
                    .context("--url needs --token or HOTLINE_TOKEN")?,
            };
            from_api(url, &token, &args)?
        }
        None => from_db(config_path, &args)?,
    };
    let mut queues = overview.queues.clone();
    if let Some(q) = &args.queue {
        queues.retain(|v| &v.queue == q);
        if queues.is_empty() {
            bail!("no queue {q:?} (known: {})", names(&overview));
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({ "queues": queues, "agents": overview.agents, "days": days });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(());
    }
    write!(out, "{}", render_queues(&overview, &queues))?;
    for day in &days {
        write!(out, "{}", render_day(day))?;
    }
    write!(out, "{}", render_agents(&overview, args.queue.as_deref()))?;
    Ok(())
}

fn names(o: &Overview) -> String {
    o.queues
        .iter()
        .map(|q| q.queue.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn shown(o: &Overview, args: &Args) -> Vec<String> {
    o.queues
        .iter()
        .map(|q| q.queue.clone())
        .filter(|q| args.queue.as_ref().is_none_or(|want| want == q))
        .collect()
}

fn from_db(config_path: &Path, args: &Args) -> anyhow::Result<(Overview, Vec<QueueDay>)> {
    let config = load_config(config_path).context("loading the config")?;
    let path = args.db.clone().unwrap_or(config.stats.database.clone());
    let settings = FoldSettings::from_config(&config.stats)?;
    let log = EventLog::open_read_only(&path)?;
    let now = now_ms();
    let mut fold = replay(&log, settings, now)?;
    fold.roster(now, &hotline::engine::roster(&config));
    let overview = fold.overview(now);
    let days = if args.intervals {
        shown(&overview, args)
            .iter()
            .filter_map(|q| fold.queue_day(q, now, now))
            .collect()
    } else {
        Vec::new()
    };
    Ok((overview, days))
}

fn from_api(url: &str, token: &str, args: &Args) -> anyhow::Result<(Overview, Vec<QueueDay>)> {
    let overview: Overview = serde_json::from_slice(&get(url, "/api/v1/overview", token)?)
        .context("reading the overview")?;
    let mut days = Vec::new();
    if args.intervals {
        for q in shown(&overview, args) {
            let path = format!("/api/v1/queues/{}/intervals", percent_encode(&q));
            days.push(
                serde_json::from_slice(&get(url, &path, token)?).context("reading intervals")?,
            );
        }
    }
    Ok((overview, days))
}

/// A plain HTTP/1.1 GET (the engine's API is on a trusted network; no TLS here).
fn get(base: &str, path: &str, token: &str) -> anyhow::Result<Vec<u8>> {
    let rest = base
        .strip_prefix("http://")
        .with_context(|| format!("{base}: only http:// URLs are supported"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    let mut stream = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the answer has no HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw[split + 4..].to_vec();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!(
            "GET {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if chunked { dechunk(&body) } else { Ok(body) }
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&body[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).context("bad chunk size")?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).context("short chunk")?);
        body = body.get(size + 2..).context("short chunk")?;
    }
}

fn dur(ms: Option<f64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) => {
            let s = (ms / 1000.0).round() as u64;
            if s >= 3600 {
                format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{}:{:02}", s / 60, s % 60)
            }
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.1}%"))
}

/// Terminal columns a text takes: CJK characters are two wide.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            if ('\u{2E80}'..='\u{FFEF}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Left-aligned first column, right-aligned others, widths from the content.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(width(c));
        }
    }
    let line = |cells: Vec<String>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w.saturating_sub(width(c)));
            if i == 0 {
                l.push_str(&format!("{c}{pad}"));
            } else {
                l.push_str(&format!("  {pad}{c}"));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn render_queues(o: &Overview, queues: &[hotline::stats::QueueView]) -> String {
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| {
            let f = &q.today;
            vec![
                q.queue.clone(),
                q.live.waiting.to_string(),
                dur(Some(q.live.longest_wait_ms as f64)),
                format!(
                    "{}/{}",
                    q.live.agents.available,
                    q.live.agents.available
                        + q.live.agents.ringing
                        + q.live.agents.on_call
                        + q.live.agents.wrap_up
                        + q.live.agents.paused
                ),
                f.offered.to_string(),
                f.answered.to_string(),
                format!("{} ({})", f.abandoned, f.short_abandoned),
                (f.overflowed + f.timed_out).to_string(),
                format!("{} (T={}s)", pct(f.service_level_pct), f.service_level_s),
                dur(f.asa_ms),
                dur(f.avg_wait_ms),
                dur(f.max_wait_ms.map(|v| v as f64)),
                dur(f.wait_p90_ms.map(|v| v as f64)),
                dur(f.aht_ms),
            ]
        })
        .collect();
    format!(
        "Queues, live and since local midnight ({}):\n{}\n",
        o.timezone,
        table(
            &[
                "queue",
                "waiting",
                "longest",
                "free/in",
                "offered",
                "answered",
                "abandoned (short)",
                "overflow+timeout",
                "service level",
                "ASA",
                "avg wait",
                "max wait",
                "p90 wait",
                "AHT",
            ],
            &rows,
        )
    )
}

fn render_day(d: &QueueDay) -> String {
    let rows: Vec<Vec<String>> = d
        .intervals
        .iter()
        .filter(|f| f.offered + f.short_abandoned > 0 || f.peak_waiting > 0)
        .map(|f| {
            let minutes = (f.start - d.day.start) / 60_000;
            vec![
                format!("{:02}:{:02}", minutes / 60, minutes % 60),
                f.offered.to_string(),
                f.answered.to_string(),
                f.abandoned.to_string(),
                pct(f.service_level_pct),
                dur(f.asa_ms),
                format!("{:.2}", f.avg_waiting),
                f.peak_waiting.to_string(),
            ]
        })
        .collect();
    format!(
        "Queue {} on {}, by 15 minutes:\n{}\n",
        d.queue,
        d.date,
        table(
            &[
                "from",
                "offered",
                "answered",
                "abandoned",
                "service level",
                "ASA",
                "avg waiting",
                "peak"
            ],
            &rows,
        )
    )
}

fn render_agents(o: &Overview, queue: Option<&str>) -> String {
    let rows: Vec<Vec<String>> = o
        .agents
        .iter()
        .filter(|a| queue.is_none_or(|q| a.queues.iter().any(|aq| aq == q)))
        .map(|a| {
            let t = &a.today.tally;
            let pauses: Vec<String> = t
                .pause_by_reason_ms
                .iter()
                .map(|(r, ms)| format!("{r} {}", dur(Some(*ms as f64))))
                .collect();
            vec![
                a.agent.clone(),
                a.status.name().to_owned(),
                dur(Some(a.time_in_state_ms as f64)),
                t.calls.to_string(),
                dur(Some(t.talk_ms as f64)),
                dur(Some(t.wrapup_ms as f64)),
                pct(a.today.occupancy_pct),
                pauses.join(", "),
            ]
        })
        .collect();
    format!(
        "Agents today:\n{}",
        table(
            &[
                "agent",
                "state",
                "in state",
                "calls",
                "talk",
                "wrap-up",
                "occupancy",
                "pauses"
            ],
            &rows,
        )
    )
}
