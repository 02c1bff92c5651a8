//! The supervisor API over real HTTP on a loopback port: roles and 401/403, figures as
//! JSON, the OpenAPI description covering every route, the SSE stream delivering an event,
//! agent commands relayed to a channel speaking the ACD's side, and /metrics.

mod common;

use std::time::Duration;

use common::stats::{ADMIN, SUPERVISOR, http};
use hotline::api::{AgentCommand, Api, ControlError};
use hotline::events::{EventKind, now_ms};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn enter(call: &str, queue: &str) -> EventKind {
    EventKind::EnterQueue {
        call_id: call.into(),
        queue: queue.into(),
        position: 1,
        language: "cmn".into(),
        intent: None,
        priority: 0,
    }
}

/// Polls until `f` holds for the overview (the actor folds asynchronously).
async fn until(
    addr: std::net::SocketAddr,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..2000 {
        let o = http(addr, "GET", "/api/v1/overview", Some(SUPERVISOR), None)
            .await
            .json();
        if f(&o) {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held");
}

#[tokio::test]
async fn tokens_and_roles() {
    let dir = common::out_dir("api_roles");
    let r = common::stats::start(&dir, common::stats::api_config(), None).await;
    let a = r.addr;
    // No token, a wrong token: no data.
    let none = http(a, "GET", "/api/v1/queues", None, None).await;
    assert_eq!(none.status, 401);
    assert!(
        none.head
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );
    assert_eq!(
        http(a, "GET", "/api/v1/queues", Some("nope"), None)
            .await
            .status,
        401
    );
    assert_eq!(http(a, "GET", "/metrics", None, None).await.status, 401);
    assert_eq!(
        http(a, "GET", "/api/v1/stream", None, None).await.status,
        401
    );
    // The token in the query string works too (EventSource cannot send headers).
    let q = http(
        a,
        "GET",
        &format!("/api/v1/queues?access_token={SUPERVISOR}"),
        None,
        None,
    )
    .await;
    assert_eq!(q.status, 200);
    // A supervisor reads but may not control agents.
    assert_eq!(
        http(a, "GET", "/api/v1/agents", Some(SUPERVISOR), None)
            .await
            .status,
        200
    );
    let pause = http(
        a,
        "POST",
        "/api/v1/agents/a1/pause",
        Some(SUPERVISOR),
        Some(r#"{"reason":"x"}"#),
    )
    .await;
    assert_eq!(pause.status, 403);
    // An admin may, but no ACD is connected here.
    let pause = http(
        a,
        "POST",
        "/api/v1/agents/a1/pause",
        Some(ADMIN),
        Some(r#"{"reason":"x"}"#),
    )
    .await;
    assert_eq!(pause.status, 503);
    // The page and the description are open; they hold no data. Every answer, the
    // refusals too, keeps the page out of other sites' frames and scripts.
    let page = http(a, "GET", "/", None, None).await;
    assert_eq!(page.status, 200);
    for answer in [&page, &none] {
        let head = answer.head.to_ascii_lowercase();
        for header in [
            "content-security-policy: default-src 'self'; frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "x-frame-options: deny",
        ] {
            assert!(head.contains(header), "{header} missing in {head}");
        }
    }
    assert_eq!(
        http(a, "GET", "/openapi.json", None, None).await.status,
        200
    );
    r.stats.stop().await;
}

#[tokio::test]
async fn metrics_can_be_open() {
    let dir = common::out_dir("api_metrics");
    let mut config = common::stats::api_config();
    config.metrics_open = true;
    let r = common::stats::start(&dir, config, None).await;
    r.metrics
        .counter(
            "hotline_sip_responses_total",
            "SIP responses sent",
            &[("code", "200")],
        )
        .add(7);
    r.sink.emit(enter("c1", "税务"));
    until(r.addr, |o| o["queues"][0]["live"]["waiting"] == 1).await;
    let m = http(r.addr, "GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(
        text.contains("hotline_sip_responses_total{code=\"200\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains("hotline_queue_waiting_calls{queue=\"税务\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("hotline_queue_calls_total{queue=\"税务\",outcome=\"entered\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("hotline_events_logged_total 2\n"), "{text}");
    r.stats.stop().await;
}

#[tokio::test]
async fn figures_events_and_intervals_as_json() {
    let dir = common::out_dir("api_figures");
    let r = common::stats::start(&dir, common::stats::api_config(), None).await;
    let t = now_ms();
    r.sink.emit_at(
        t,
        EventKind::AgentLogin {
            agent: "a1".into(),
            queues: vec!["tax".into()],
        },
    );
    r.sink.emit_at(t, enter("c1", "tax"));
    r.sink.emit_at(
        t + 1_000,
        EventKind::Connected {
            call_id: "c1".into(),
            queue: "tax".into(),
            agent: "a1".into(),
            wait_ms: 1_000,
            ring_ms: 500,
        },
    );
    let o = until(r.addr, |o| o["queues"][0]["today"]["answered"] == 1).await;
    assert_eq!(o["queues"][0]["today"]["service_level_pct"], 100.0);
    assert_eq!(o["agents"][0]["state"], "on_call");
    let q = http(r.addr, "GET", "/api/v1/queues/tax", Some(SUPERVISOR), None).await;
    assert_eq!(q.json()["today"]["asa_ms"], 1000.0);
    assert_eq!(
        http(r.addr, "GET", "/api/v1/queues/none", Some(SUPERVISOR), None)
            .await
            .status,
        404
    );
    let day = http(
        r.addr,
        "GET",
        "/api/v1/queues/tax/intervals",
        Some(SUPERVISOR),
        None,
    )
    .await
    .json();
    assert_eq!(day["day"]["answered"], 1);
    assert!(!day["intervals"].as_array().unwrap().is_empty());
    let bad = http(
        r.addr,
        "GET",
        "/api/v1/queues/tax/intervals?date=2025-13-01",
        Some(SUPERVISOR),
        None,
    )
    .await;
    assert_eq!(bad.status, 400);
    let old = http(
        r.addr,
        "GET",
        "/api/v1/queues/tax/intervals?date=2020-01-01",
        Some(SUPERVISOR),
        None,
    )
    .await
    .json();
    assert_eq!(old["day"]["offered"], 0);
    assert_eq!(old["date"], "2020-01-01");
    let agent = http(r.addr, "GET", "/api/v1/agents/a1", Some(SUPERVISOR), None)
        .await
        .json();
    assert_eq!(agent["call_id"], "c1");
    let events = http(
        r.addr,
        "GET",
        "/api/v1/events?limit=2",
        Some(SUPERVISOR),
        None,
    )
    .await
    .json();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "connected");
    assert_eq!(events[1]["event"], "enter_queue");
    assert!(events[0]["seq"].as_i64() > events[1]["seq"].as_i64());
    r.stats.stop().await;
}

#[tokio::test]
async fn openapi_describes_every_route_and_nothing_else() {
    let spec: serde_json::Value = serde_json::from_str(Api::openapi()).expect("valid JSON");
    let paths = spec["paths"].as_object().expect("paths");
    let routes = Api::routes();
    for (method, path) in &routes {
        assert!(
            paths.get(*path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in openapi.json"
        );
    }
    let described: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert_eq!(
        described,
        routes.len(),
        "openapi.json describes routes the API does not have"
    );
    // Every $ref points at something that exists.
    let text = Api::openapi();
    for part in text.split("\"$ref\": \"#/components/").skip(1) {
        let target = &part[..part.find('"').unwrap()];
        let mut node = &spec["components"];
        for seg in target.split('/') {
            node = &node[seg];
        }
        assert!(!node.is_null(), "dangling $ref {target}");
    }
    // And the server answers every described route (not 404/405).
    let dir = common::out_dir("api_openapi");
    let r = common::stats::start(&dir, common::stats::api_config(), None).await;
    for (method, path) in &routes {
        if path.ends_with("/stream") {
            continue; // never ends; covered by the SSE test
        }
        let concrete = path.replace("{queue}", "q").replace("{agent}", "a");
        let resp = http(
            r.addr,
            &method.to_uppercase(),
            &concrete,
            Some(ADMIN),
            Some(r#"{"reason":"r"}"#),
        )
        .await;
        assert!(
            resp.status != 405
                && !(resp.status == 404 && !concrete.contains("/q") && !concrete.contains("/a")),
            "{method} {concrete}: {}",
            resp.status
        );
    }
    r.stats.stop().await;
}

#[tokio::test]
async fn sse_stream_delivers_events_as_they_are_logged() {
    let dir = common::out_dir("api_sse");
    let r = common::stats::start(&dir, common::stats::api_config(), None).await;
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    let req = format!(
        "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SUPERVISOR}\r\nAccept: text/event-stream\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut emitted = false;
    while !seen.contains("sse-call-1") {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("stream timed out")
            .unwrap();
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if !emitted && seen.contains("event: overview") {
            r.sink.emit(enter("sse-call-1", "tax"));
            emitted = true;
        }
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase()
            .contains("content-type: text/event-stream")
    );
    assert!(seen.contains("event: events"), "{seen}");
    // The overview after the batch follows, showing the call waiting.
    while !seen.contains("\"waiting\":1") {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("no overview")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    r.stats.stop().await;
}

#[tokio::test]
async fn agent_commands_reach_the_acd_and_its_answers_map_to_statuses() {
    let dir = common::out_dir("api_control");
    let (tx, mut rx) = mpsc::channel(8);
    let r = common::stats::start(&dir, common::stats::api_config(), Some(tx)).await;
    // The ACD's side of the channel: answers by agent name, and notes what it was asked.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let noted = seen.clone();
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let answer = match req.agent.as_str() {
                "ghost" => Err(ControlError::UnknownAgent(req.agent.clone())),
                "busy" => Err(ControlError::Refused("already paused".into())),
                _ => Ok(()),
            };
            noted.lock().unwrap().push((
                req.agent.clone(),
                req.command.clone(),
                req.requested_by.clone(),
            ));
            let _ = req.reply.send(answer);
        }
    });
    let a = r.addr;
    let post =
        |path: &'static str, body: Option<&'static str>| http(a, "POST", path, Some(ADMIN), body);
    assert_eq!(post("/api/v1/agents/a1/login", None).await.status, 200);
    assert_eq!(
        post("/api/v1/agents/a1/pause", Some(r#"{"reason":"午休"}"#))
            .await
            .status,
        200
    );
    assert_eq!(post("/api/v1/agents/a1/pause", None).await.status, 400);
    assert_eq!(
        post("/api/v1/agents/a1/pause", Some("{not json"))
            .await
            .status,
        400
    );
    assert_eq!(post("/api/v1/agents/a1/resume", None).await.status, 200);
    assert_eq!(post("/api/v1/agents/a1/logout", None).await.status, 200);
    assert_eq!(post("/api/v1/agents/ghost/login", None).await.status, 404);
    assert_eq!(
        post("/api/v1/agents/busy/pause", Some(r#"{"reason":"x"}"#))
            .await
            .status,
        409
    );
    // The supervisor's attempt never reached the ACD; bad bodies were refused before it.
    assert_eq!(
        http(
            a,
            "POST",
            "/api/v1/agents/a1/resume",
            Some(SUPERVISOR),
            None
        )
        .await
        .status,
        403
    );
    let seen = seen.lock().unwrap().clone();
    let admin = || "admin".to_owned();
    assert_eq!(
        seen,
        [
            ("a1".to_owned(), AgentCommand::Login, admin()),
            (
                "a1".to_owned(),
                AgentCommand::Pause {
                    reason: "午休".into()
                },
                admin()
            ),
            ("a1".to_owned(), AgentCommand::Resume, admin()),
            (
                "a1".to_owned(),
                AgentCommand::Logout {
                    reason: "api".into()
                },
                admin()
            ),
            ("ghost".to_owned(), AgentCommand::Login, admin()),
            (
                "busy".to_owned(),
                AgentCommand::Pause { reason: "x".into() },
                admin()
            ),
        ]
    );
    r.stats.stop().await;
}

/// Whether the server closed `s` within `wait`.
async fn closed(s: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// No client can take the API away: one address holds at most its share of connections,
/// a connection that sends nothing is closed after idle_s, live streams are capped (503),
/// and requests still get answers meanwhile.
#[tokio::test]
async fn connections_and_streams_are_limited() {
    let dir = common::out_dir("api_limits");
    let mut config = common::stats::api_config();
    config.max_per_source = 3;
    config.idle_s = 2;
    config.max_streams = 1;
    let r = common::stats::start(&dir, config, None).await;
    let connect = || tokio::net::TcpStream::connect(r.addr);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(connect().await.expect("connect"));
    }
    // A third from the same address is still within its share: a request is answered.
    let ok = http(r.addr, "GET", "/api/v1/overview", Some(SUPERVISOR), None).await;
    assert_eq!(ok.status, 200);
    held.push(connect().await.expect("connect"));
    let mut over = connect().await.expect("the kernel accepts it");
    assert!(
        closed(&mut over, Duration::from_secs(2)).await,
        "a fourth connection from one address is closed at once"
    );
    for s in &mut held {
        assert!(
            closed(s, Duration::from_secs(4)).await,
            "a connection that sends nothing is closed after idle_s"
        );
    }
    let refused = r
        .metrics
        .counter(
            "hotline_api_connections_refused_total",
            "API connections closed at accept: max_connections or max_per_source were open",
            &[],
        )
        .get();
    assert_eq!(refused, 1);

    let mut stream = connect().await.expect("connect");
    let request = format!(
        "GET /api/v1/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {SUPERVISOR}\r\n\r\n",
        r.addr
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut first = [0u8; 64];
    let n = stream.read(&mut first).await.expect("the stream starts");
    assert!(
        first[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&first[..n])
    );
    let second = http(r.addr, "GET", "/api/v1/stream", Some(SUPERVISOR), None).await;
    assert_eq!(second.status, 503, "one live stream at most");
    drop(stream);
    let ok = http(r.addr, "GET", "/api/v1/overview", Some(SUPERVISOR), None).await;
    assert_eq!(ok.status, 200);
    r.stats.stop().await;
}
