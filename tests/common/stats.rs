//! For the stats/API tests: the stats actor on a real SQLite file, the API on a free
//! loopback port, and a minimal HTTP client.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hotline::api::{AgentControl, Api, ApiConfig, Role, TokenConfig};
use hotline::events::EventSink;
use hotline::metrics::Registry;
use hotline::stats::{Roster, Stats, StatsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub const SUPERVISOR: &str = "sup-token-123";
pub const ADMIN: &str = "admin-token-456";

pub fn stats_config(dir: &Path) -> StatsConfig {
    StatsConfig {
        database: dir.join("events.sqlite"),
        queue_log: Some(dir.join("queue_log")),
        timezone: "UTC".to_owned(),
        publish_ms: 50,
        ..StatsConfig::default()
    }
}

pub fn api_config() -> ApiConfig {
    ApiConfig {
        tokens: vec![
            TokenConfig {
                name: "supervisor".into(),
                token: hotline::registrar::Secret::new(SUPERVISOR),
                role: Role::Supervisor,
            },
            TokenConfig {
                name: "admin".into(),
                token: hotline::registrar::Secret::new(ADMIN),
                role: Role::Admin,
            },
        ],
        ..ApiConfig::default()
    }
}

pub struct Running {
    pub sink: EventSink,
    pub stats: Stats,
    pub addr: SocketAddr,
    pub metrics: Arc<Registry>,
}

/// The stats actor on `dir`'s database and the API on a free port; agent commands go to
/// `control` when given.
pub async fn start(
    dir: &Path,
    api: ApiConfig,
    control: Option<mpsc::Sender<AgentControl>>,
) -> Running {
    let (sink, rx) = EventSink::new();
    let metrics = Registry::new();
    let stats =
        Stats::start(&stats_config(dir), &Roster::default(), rx, &metrics).expect("start stats");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (_, trunks) = tokio::sync::watch::channel(Vec::new());
    let (_, peers) = tokio::sync::watch::channel(Vec::new());
    let server = Api::new(
        &api,
        stats.handle.clone(),
        metrics.clone(),
        control,
        None,
        trunks,
        peers,
    );
    tokio::spawn(server.serve(listener, std::future::pending()));
    Running {
        sink,
        stats,
        addr,
        metrics,
    }
}

pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Response {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.expect("send");
    // Read the header, then as much body as Content-Length says (some servers, such as
    // Chromium's DevTools endpoint, keep the connection open), or to the end.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "connection closed before the header ended");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    let mut body = raw[split + 4..].to_vec();
    match length {
        Some(len) => {
            while body.len() < len {
                let n = s.read(&mut buf).await.expect("read");
                assert!(n > 0, "connection closed before the body ended");
                body.extend_from_slice(&buf[..n]);
            }
        }
        None => {
            s.read_to_end(&mut body).await.expect("read");
        }
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Response { status, head, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
    out
}
