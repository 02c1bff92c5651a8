//! The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven over the
//! DevTools protocol): fed with synthetic events, the waiting count it shows follows them
//! live, the language switch works, and a screenshot lands in tests/out/dashboard_chromium/.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hotline::events::{EventKind, now_ms};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CHROMIUM: &str = "/usr/bin/chromium";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Kills the browser when the test ends, however it ends.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn launch(profile: &Path) -> Browser {
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--window-size=1280,1100",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    Browser(child)
}

struct Cdp {
    ws: Ws,
    next_id: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws
            .send(Message::Text(msg.into()))
            .await
            .expect("send to chromium");
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("chromium answers")
                .expect("devtools socket open")
                .expect("devtools message");
            if let Message::Text(text) = msg {
                let v: Value = serde_json::from_str(&text).expect("devtools JSON");
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` until it returns `want` (the page updates asynchronously).
    async fn wait_for(&mut self, expr: &str, want: Value) {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = self.eval(expr).await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{expr} stayed {last}, wanted {want}");
    }
}

async fn devtools(profile: &Path) -> Cdp {
    let port_file = profile.join("DevToolsActivePort");
    let mut port = None;
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&port_file)
            && let Some(p) = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<u16>().ok())
        {
            port = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let port = port.expect("chromium wrote its DevTools port");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let list = common::stats::http(addr, "GET", "/json/list", None, None)
        .await
        .json();
    let page = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["type"] == "page"))
        .expect("a page target");
    let url = page["webSocketDebuggerUrl"]
        .as_str()
        .expect("a websocket URL");
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("devtools websocket");
    Cdp { ws, next_id: 0 }
}

fn enter(call: &str) -> EventKind {
    EventKind::EnterQueue {
        call_id: call.into(),
        queue: "tax".into(),
        position: 1,
        language: "cmn".into(),
        intent: None,
        priority: 0,
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|c| u32::from(val(*c))).collect();
        let n = v
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, x)| acc | (x << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_waiting_calls_live() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is needed (Debian package chromium)"
    );
    let dir = common::out_dir("dashboard_chromium");
    let r = common::stats::start(&dir, common::stats::api_config(), None).await;
    let t = now_ms();
    r.sink.emit_at(
        t - 600_000,
        EventKind::AgentLogin {
            agent: "a1".into(),
            queues: vec!["tax".into()],
        },
    );
    r.sink.emit_at(
        t - 600_000,
        EventKind::AgentLogin {
            agent: "a2".into(),
            queues: vec!["tax".into()],
        },
    );
    r.sink.emit_at(t - 300_000, enter("early"));
    r.sink.emit_at(
        t - 290_000,
        EventKind::Connected {
            call_id: "early".into(),
            queue: "tax".into(),
            agent: "a2".into(),
            wait_ms: 10_000,
            ring_ms: 2_000,
        },
    );
    r.sink.emit(enter("c1"));

    let profile = dir.join("profile");
    let _browser = launch(&profile);
    let mut cdp = devtools(&profile).await;
    let url = format!(
        "http://{}/?token={}&lang=en",
        r.addr,
        common::stats::SUPERVISOR
    );
    cdp.call("Page.navigate", json!({ "url": url })).await;

    let waiting = r#"(() => { const c = document.querySelector('tr[data-queue="tax"] td.waiting'); return c ? c.textContent : null; })()"#;
    cdp.wait_for(waiting, json!("1")).await;
    // The token was taken from the address and kept in the page.
    assert_eq!(cdp.eval("location.search").await, json!("?lang=en"));
    assert_eq!(
        cdp.eval("localStorage.getItem('hotline.token')").await,
        json!(common::stats::SUPERVISOR)
    );

    // Calls arrive: the count follows without a reload.
    cdp.eval("window.__same_page = true").await;
    r.sink.emit(enter("c2"));
    r.sink.emit(enter("c3"));
    cdp.wait_for(waiting, json!("3")).await;
    // One is answered.
    r.sink.emit(EventKind::AgentOffered {
        call_id: "c1".into(),
        queue: "tax".into(),
        agent: "a1".into(),
    });
    r.sink.emit(EventKind::Connected {
        call_id: "c1".into(),
        queue: "tax".into(),
        agent: "a1".into(),
        wait_ms: 4_000,
        ring_ms: 1_000,
    });
    cdp.wait_for(waiting, json!("2")).await;
    assert_eq!(
        cdp.eval("window.__same_page === true").await,
        json!(true),
        "the page reloaded"
    );
    cdp.wait_for(
        r#"document.querySelector('tr[data-agent="a1"] .state').className"#,
        json!("state on_call"),
    )
    .await;
    cdp.wait_for(
        r#"document.querySelector('tr[data-queue="tax"] td.answered').textContent"#,
        json!("2"),
    )
    .await;
    // The chart has drawn today's line.
    let path = cdp
        .eval("document.querySelector('#chart path.waiting').getAttribute('d')")
        .await;
    assert!(path.as_str().is_some_and(|d| d.starts_with('M')), "{path}");

    // Mandarin labels by the switch.
    assert_eq!(
        cdp.eval("document.querySelector('#queues th:nth-child(2)').textContent")
            .await,
        json!("Waiting")
    );
    cdp.eval("document.querySelector('#lang').click()").await;
    assert_eq!(
        cdp.eval("document.querySelector('#queues th:nth-child(2)').textContent")
            .await,
        json!("排队")
    );
    cdp.wait_for(
        r#"document.querySelector('tr[data-agent="a1"] .state').textContent.startsWith('通话中')"#,
        json!(true),
    )
    .await;

    let shot = cdp
        .call("Page.captureScreenshot", json!({ "format": "png" }))
        .await;
    let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    std::fs::write(dir.join("dashboard.png"), &png).unwrap();
    r.stats.stop().await;
}
