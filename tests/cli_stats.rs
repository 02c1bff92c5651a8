//! `hotline stats` prints the same figures from the event log file and from a running
//! engine's API.

mod common;

use std::process::Command;

use hotline::events::{Event, EventKind, now_ms};
use hotline::stats::EventLog;

fn events(t: i64) -> Vec<Event> {
    let e = |at: i64, kind| Event { at: t + at, kind };
    vec![
        e(
            0,
            EventKind::AgentLogin {
                agent: "王芳".into(),
                queues: vec!["社保".into()],
            },
        ),
        e(
            0,
            EventKind::EnterQueue {
                call_id: "c1".into(),
                queue: "社保".into(),
                position: 1,
                language: "cmn".into(),
                intent: None,
                priority: 0,
            },
        ),
        e(
            0,
            EventKind::EnterQueue {
                call_id: "c2".into(),
                queue: "社保".into(),
                position: 2,
                language: "cmn".into(),
                intent: None,
                priority: 0,
            },
        ),
        e(
            12_000,
            EventKind::Connected {
                call_id: "c1".into(),
                queue: "社保".into(),
                agent: "王芳".into(),
                wait_ms: 12_000,
                ring_ms: 3_000,
            },
        ),
        e(
            30_000,
            EventKind::Abandoned {
                call_id: "c2".into(),
                queue: "社保".into(),
                position: 1,
                wait_ms: 30_000,
            },
        ),
    ]
}

fn hotline(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("--config")
        .arg(config)
        .arg("stats")
        .args(args)
        .output()
        .expect("run hotline");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn check(table: &str) {
    let row = table
        .lines()
        .find(|l| l.starts_with("社保"))
        .unwrap_or_else(|| panic!("no queue row:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    // queue waiting longest free/in offered answered abandoned (short) ...
    assert_eq!(
        &cells[..8],
        ["社保", "0", "0:00", "0/1", "2", "1", "1", "(0)"],
        "{table}"
    );
    assert!(row.contains("50.0% (T=20s)"), "{table}");
    assert!(table.contains("王芳"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("王芳") && l.contains("on_call")),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_from_the_database_and_from_the_api_agree() {
    let dir = common::out_dir("cli_stats");
    let t = now_ms() - 60_000;
    // From the file: written by the log's own writer, read by the CLI.
    let db = dir.join("offline.sqlite");
    EventLog::open(&db).unwrap().append(&events(t)).unwrap();
    let config = dir.join("hotline.toml");
    std::fs::write(&config, "[stats]\ntimezone = \"UTC\"\n").unwrap();
    let db_arg = db.to_str().unwrap().to_owned();
    let from_db = hotline(&config, &["--db", &db_arg, "--intervals"]);
    check(&from_db);
    assert!(from_db.contains("by 15 minutes"), "{from_db}");

    // From a running engine.
    let r = common::stats::start(&dir, common::stats::api_config(), None).await;
    for ev in events(t) {
        r.sink.emit_at(ev.at, ev.kind);
    }
    let url = format!("http://{}", r.addr);
    let config2 = config.clone();
    let mut from_api = String::new();
    for _ in 0..100 {
        let (c, u) = (config2.clone(), url.clone());
        from_api = tokio::task::spawn_blocking(move || {
            hotline(
                &c,
                &["--url", &u, "--token", common::stats::SUPERVISOR, "社保"],
            )
        })
        .await
        .unwrap();
        if from_api.contains("王芳") && from_api.contains("50.0%") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    check(&from_api);
    // JSON for scripts.
    let json = hotline(&config, &["--db", &db_arg, "--json", "社保"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["queues"][0]["today"]["answered_within_sl"], 1);
    r.stats.stop().await;
}
