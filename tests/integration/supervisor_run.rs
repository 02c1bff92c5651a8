//! What supervisors see, checked against what really happened: SIPp callers and baresip
//! agents go through the engine while a headless Chromium shows the dashboard; the waiting
//! count on the page follows the calls as they arrive and are answered, and the API's
//! figures equal what this test counted itself. A screenshot is saved in the test's folder.

use crate::common;

use std::time::Duration;

use common::agents::{Agent, engine, phone, wait_agent_state};
use common::chromium::{CHROMIUM, base64_decode, devtools, launch};
use common::{ADMIN_TOKEN, Act, Sipp, actions, out_dir, tone_callers};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const WAITING: &str = r#"(() => { const c = document.querySelector('tr[data-queue="support"] td.waiting'); return c ? Number(c.textContent) : -1; })()"#;

#[test]
fn dashboard_and_api_figures_follow_a_real_run() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is needed (make setup)"
    );
    let dir = out_dir("supervisor_run");
    let agents = [
        Agent {
            id: "a1",
            languages: "[\"cmn\"]",
        },
        Agent {
            id: "a2",
            languages: "[\"cmn\"]",
        },
    ];
    let engine = engine(&dir, &agents, "");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let profile = dir.join("profile");
    let _browser = launch(&profile);
    let mut cdp = rt.block_on(devtools(&profile));
    let url = format!(
        "http://127.0.0.1:{}/?token={ADMIN_TOKEN}&lang=en",
        engine.api
    );
    rt.block_on(cdp.call("Page.navigate", json!({ "url": url })));
    let waiting =
        |cdp: &mut common::chromium::Cdp| rt.block_on(cdp.eval(WAITING)).as_i64().unwrap_or(-1);
    let wait_waiting = |cdp: &mut common::chromium::Cdp, want: i64| {
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < until {
            if waiting(cdp) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    rt.block_on(cdp.eval("window.__same_page = true"));

    // Nobody is logged in: two callers wait on the page, then give up after 7 s (long
    // enough not to count as short abandons).
    let impatient = Sipp::start(
        &engine.dir,
        engine.addr(),
        "ivr_caller.xml",
        &[
            ("CALLED", "100"),
            ("ACTIONS", &actions(&[Act::Pause(7000)])),
        ],
        &["-m", "2", "-r", "10"],
    );
    assert!(
        wait_waiting(&mut cdp, 2),
        "the page never showed 2 waiting (shows {})",
        waiting(&mut cdp)
    );
    assert!(impatient.finish(WAIT).success);
    assert!(
        wait_waiting(&mut cdp, 0),
        "abandoned calls still shown waiting"
    );

    // Two agents, four callers at once: two wait while two talk, then all are answered.
    let phones = [
        phone(&dir, &engine, "a1", Duration::from_secs(3)),
        phone(&dir, &engine, "a2", Duration::from_secs(3)),
    ];
    for p in &phones {
        assert!(wait_agent_state(&engine, &p.user, "available"));
    }
    let patient = tone_callers(&engine, "100", 40.0, &["-m", "4", "-r", "20", "-l", "4"]);
    assert!(
        wait_waiting(&mut cdp, 2),
        "the page never showed the 2 callers waiting for an agent"
    );
    std::fs::write(dir.join("dashboard-busy.png"), screenshot(&rt, &mut cdp))
        .expect("save screenshot");
    assert!(patient.finish(Duration::from_secs(90)).success);
    assert!(
        wait_waiting(&mut cdp, 0),
        "answered calls still shown waiting"
    );
    assert_eq!(
        rt.block_on(cdp.eval("window.__same_page === true")),
        json!(true),
        "the page reloaded"
    );

    // What the test saw: 4 answered (by the phones), 2 abandoned.
    let answered: Vec<usize> = phones.iter().map(|p| p.calls_answered()).collect();
    assert_eq!(answered.iter().sum::<usize>(), 4);
    let queue = wait_for_figures(&engine, 4, 2);
    let today = &queue["today"];
    assert_eq!(today["offered"], 6, "{queue}");
    assert_eq!(today["answered"], 4, "{queue}");
    assert_eq!(today["abandoned"], 2, "{queue}");
    assert_eq!(today["short_abandoned"], 0, "{queue}");
    assert_eq!(today["handled"], 4, "{queue}");
    // Service level: answered within 20 s over all 6 that left the queue.
    let sl = today["service_level_pct"].as_f64().unwrap_or(-1.0);
    assert!((sl - 4.0 / 6.0 * 100.0).abs() < 0.01, "service level {sl}");
    assert!(
        today["max_wait_ms"].as_u64().unwrap_or(0) >= 6000,
        "the abandoned callers waited 7 s: {queue}"
    );
    assert_eq!(queue["live"]["waiting"], 0);
    for (p, n) in phones.iter().zip(answered) {
        let agent = engine.api_get(&format!("/api/v1/agents/{}", p.user));
        assert_eq!(agent["today"]["calls"], n as u64, "{agent}");
        let talk = agent["today"]["talk_ms"].as_u64().unwrap_or(0);
        assert!(
            talk >= 2500 * n as u64,
            "{} talked {talk} ms over {n} calls",
            p.user
        );
    }
    std::fs::write(dir.join("dashboard.png"), screenshot(&rt, &mut cdp)).expect("save screenshot");
}

/// The queue's view once `answered` calls are counted as answered and handled and
/// `abandoned` as abandoned (the stats publish in batches, and a call is handled only
/// once it ended).
fn wait_for_figures(engine: &common::Engine, answered: u64, abandoned: u64) -> Value {
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let q = engine.api_get("/api/v1/queues/support");
        let today = &q["today"];
        if (today["answered"] == answered
            && today["handled"] == answered
            && today["abandoned"] == abandoned)
            || std::time::Instant::now() > until
        {
            return q;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn screenshot(rt: &tokio::runtime::Runtime, cdp: &mut common::chromium::Cdp) -> Vec<u8> {
    let shot = rt.block_on(cdp.call("Page.captureScreenshot", json!({ "format": "png" })));
    let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    png
}
