//! Headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol, for
//! the dashboard tests: launch with a throw-away profile, evaluate JavaScript in the page,
//! wait for a value, take a screenshot. Started with the flags this closed network needs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub const CHROMIUM: &str = "/usr/bin/chromium";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Kills the browser when the test ends, however it ends.
pub struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn launch(profile: &Path) -> Browser {
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

pub struct Cdp {
    ws: Ws,
    next_id: u64,
}

impl Cdp {
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
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

    pub async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` until it returns `want` (the page updates asynchronously).
    pub async fn wait_for(&mut self, expr: &str, want: Value) {
        let mut last = Value::Null;
        for _ in 0..400 {
            last = self.eval(expr).await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{expr} stayed {last}, wanted {want}");
    }
}

pub async fn devtools(profile: &Path) -> Cdp {
    let port_file = profile.join("DevToolsActivePort");
    let mut port = None;
    for _ in 0..600 {
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
    // The page target may be listed a moment after the port file is written.
    let mut page = None;
    for _ in 0..200 {
        let list = super::stats::http(addr, "GET", "/json/list", None, None)
            .await
            .json();
        page = list
            .as_array()
            .and_then(|l| l.iter().find(|t| t["type"] == "page").cloned());
        if page.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = page.expect("a page target");
    let url = page["webSocketDebuggerUrl"]
        .as_str()
        .expect("a websocket URL");
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("devtools websocket");
    Cdp { ws, next_id: 0 }
}

pub fn base64_decode(s: &str) -> Vec<u8> {
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
