//! The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven over the
//! DevTools protocol): fed with synthetic events, the waiting count it shows follows them
//! live, the language switch works, and a screenshot lands in tests/out/dashboard_chromium/.

use crate::common;

use std::path::Path;

use common::chromium::{CHROMIUM, base64_decode, devtools, launch};
use hotline::events::{EventKind, now_ms};
use serde_json::json;

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
    // Answered earlier today (the figures are the day's; the stats clock is UTC): five
    // minutes ago, or just after midnight when the test runs in the day's first minutes.
    let early = (t - 300_000).max(t - t % 86_400_000);
    r.sink.emit_at(early, enter("early"));
    r.sink.emit_at(
        early.max(t - 290_000),
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
    // The stream (read with fetch, the token in its Authorization header) is up.
    assert_eq!(
        cdp.eval("document.querySelector('#conn').className").await,
        json!("conn up")
    );
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
    cdp.wait_for(
        "(document.querySelector('#chart path.waiting')?.getAttribute('d') ?? '').startsWith('M')",
        json!(true),
    )
    .await;

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
