//! The shipped 12345 dialplan driven end to end by SIPp callers over RTP: keys to a queue,
//! speech to a queue (a real clip through the real model), silence to the key menu, a
//! hang-up mid-prompt cleaned up, out-of-hours in early media, and a dialplan reload.

use crate::common;

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use common::{
    Act, Engine, Sipp, actions, out_dir, shared, shipped_acd, to_mulaw, tone, wait_until,
};
use hotline::media::g711::Law;
use hotline::media::rtp::Packet;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn engine(dir: &Path, extra: &[(&str, &str)]) -> Engine {
    Engine::start_full(dir, extra, &shipped_acd())
}

fn call(engine: &Engine, called: &str, acts: &[Act]) -> Sipp {
    callers(engine, called, acts, &["-m", "1"])
}

/// SIPp callers doing `acts`, as many and as fast as `sipp_args` say.
fn callers(engine: &Engine, called: &str, acts: &[Act], sipp_args: &[&str]) -> Sipp {
    Sipp::start(
        &engine.dir,
        engine.addr(),
        "ivr_caller.xml",
        &[("CALLED", called), ("ACTIONS", &actions(acts))],
        sipp_args,
    )
}

fn kind(e: &Value) -> &str {
    e["event"].as_str().unwrap_or_default()
}

#[test]
fn keys_choose_cantonese_and_a_service_and_reach_its_queue() {
    let dir = out_dir("ivr_keys");
    let engine = engine(&dir, &[]);
    // 2 = Cantonese; it has no recognizer here, so the key menu comes at once; 6 = labor.
    let sipp = call(
        &engine,
        "12345",
        &[
            Act::Pause(1500),
            Act::Key('2'),
            Act::Pause(2500),
            Act::Key('6'),
            Act::Pause(3000),
        ],
    );
    let run = sipp.finish(WAIT);
    assert!(run.success, "{}\n{}", run.output, run.errors);
    let queued = engine
        .wait_event(Duration::from_secs(5), |e| kind(e) == "enter_queue")
        .unwrap_or_else(|| panic!("no EnterQueue: {:?}\n{}", engine.events(), engine.log()));
    assert_eq!(queued["queue"], "labor", "{queued}");
    assert_eq!(queued["language"], "yue", "{queued}");
    let events = engine.events();
    assert!(
        events
            .iter()
            .any(|e| kind(e) == "dtmf_fallback" && e["reason"] == "no_recognizer"),
        "{events:?}"
    );
    assert!(
        engine
            .wait_event(Duration::from_secs(5), |e| kind(e) == "abandoned"
                && e["queue"] == "labor")
            .is_some(),
        "the caller hung up while queued: {:?}",
        engine.events()
    );
}

#[test]
fn a_spoken_request_is_recognised_and_routed_to_its_queue() {
    let dir = out_dir("ivr_speech");
    let engine = engine(&dir, &[]);
    for (clip, queue) in [
        ("cmn-dev-006.wav", "housing_fund"),
        ("cmn-dev-011.wav", "noise_environment"),
    ] {
        let wav = dir.join(format!("{clip}.ulaw.wav"));
        to_mulaw(&shared().join("speech/dev").join(clip), &wav);
        // 1 = Mandarin; then the request, said over the "please say what you need" prompt;
        // 1 again confirms if the engine asks.
        let sipp = call(
            &engine,
            "12345",
            &[
                Act::Pause(1500),
                Act::Key('1'),
                Act::Pause(1500),
                Act::Stream(&wav),
                Act::Pause(7000),
                Act::Key('1'),
                Act::Pause(5000),
            ],
        );
        let run = sipp.finish(WAIT);
        assert!(run.success, "{}\n{}", run.output, run.errors);
        let recognised = engine
            .wait_event(Duration::from_secs(5), |e| {
                kind(e) == "intent_recognised" && e["intent"] == queue
            })
            .unwrap_or_else(|| {
                panic!(
                    "{clip}: no IntentRecognised for {queue}: {:?}",
                    engine.events()
                )
            });
        assert_eq!(recognised["language"], "cmn");
        assert!(
            engine
                .wait_event(Duration::from_secs(5), |e| kind(e) == "enter_queue"
                    && e["queue"] == queue)
                .is_some(),
            "{clip}: not queued in {queue}: {:?}",
            engine.events()
        );
    }
}

#[test]
fn a_silent_caller_hears_the_no_input_prompt_and_then_the_key_menu() {
    let dir = out_dir("ivr_silence");
    let engine = engine(&dir, &[]);
    let silence = dir.join("silence.wav");
    tone(&silence, 100.0, 0, true);
    let sipp = call(
        &engine,
        "12345",
        &[
            Act::Pause(1500),
            Act::Key('1'),
            Act::Stream(&silence),
            Act::Pause(120_000),
        ],
    );
    assert!(
        engine.wait_log("prompts=menu_main", Duration::from_secs(110)),
        "the key menu never came:\n{}",
        engine.log()
    );
    drop(sipp.finish(Duration::ZERO));
    let log = engine.log();
    let order: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("prompts=").nth(1))
        .flat_map(|p| p.split_whitespace().next().unwrap_or_default().split(','))
        .collect();
    // The welcome in both languages; then twice "say what you need" and no input; then keys.
    assert_eq!(
        order,
        [
            "welcome",
            "welcome",
            "ask_need",
            "no_input",
            "ask_need",
            "no_input",
            "menu_main"
        ],
        "{log}"
    );
    let fallback = engine.wait_event(Duration::from_secs(5), |e| kind(e) == "dtmf_fallback");
    assert_eq!(
        fallback.map(|e| e["reason"].clone()),
        Some(Value::from("failures"))
    );
}

#[test]
fn a_caller_who_hangs_up_mid_prompt_leaves_nothing_behind() {
    let dir = out_dir("ivr_hangup");
    let engine = engine(&dir, &[]);
    let run = call(&engine, "12345", &[Act::Pause(2000)]).finish(WAIT);
    assert!(run.success, "{}\n{}", run.output, run.errors);
    assert!(
        engine.wait_log("outcome=caller_hung_up", Duration::from_secs(5)),
        "{}",
        engine.log()
    );
    let settled = |series: &str| {
        wait_until(Duration::from_secs(5), || {
            engine.metric(series) == Some(0.0)
        })
    };
    assert!(settled("hotline_calls"), "call task still routed");
    assert!(settled("hotline_media_legs"), "media leg still open");
    assert!(
        settled("hotline_speech_sessions_active"),
        "recognizer still held"
    );
    let port: u16 = run
        .logs
        .lines()
        .find_map(|l| l.split("rtp_port=").nth(1)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("the scenario logged no RTP port: {}", run.logs));
    UdpSocket::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("RTP port {port} still taken: {e}"));
    let finished = engine.wait_event(Duration::from_secs(5), |e| kind(e) == "call_finished");
    assert_eq!(
        finished.map(|e| e["outcome"].clone()),
        Some(Value::from("caller_hung_up"))
    );
}

#[test]
fn out_of_hours_callers_hear_the_closed_message_as_early_media_and_are_never_answered() {
    let dir = out_dir("ivr_closed");
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let holiday = format!("timezone = \"UTC\"\nholidays = [\"{today}\"]\n");
    let engine = engine(&dir, &[("dialplan", &holiday)]);
    // The caller's media port is ours, to hear what the engine plays before any answer.
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind the caller's RTP port");
    rtp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    let port = rtp.local_addr().expect("local address").port().to_string();
    let sipp = Sipp::start(
        &engine.dir,
        engine.addr(),
        "early_media.xml",
        &[("RTP_PORT", &port), ("CODE", "480")],
        &["-m", "1"],
    );
    let mut heard = Vec::new();
    let mut buf = [0u8; 2048];
    let until = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < until && !engine.log().contains("outcome=out_of_hours") {
        if let Ok(n) = rtp.recv(&mut buf)
            && let Ok(p) = Packet::parse(&buf[..n])
            && p.payload_type == Law::Ulaw.payload_type()
        {
            heard.extend(p.payload.iter().map(|&b| Law::Ulaw.decode(b)));
        }
    }
    let run = sipp.finish(WAIT);
    assert!(run.success, "{}\n{}", run.output, run.errors);
    assert!(engine.log().contains("prompts=closed"), "{}", engine.log());
    let seconds = heard.len() as f64 / 8000.0;
    assert!(seconds > 5.0, "{seconds} s of early media heard");
    assert!(
        common::rms(&heard) > 300.0,
        "the announcement, not silence: RMS {}",
        common::rms(&heard)
    );
    assert!(
        !engine.log().contains("caller_leg: answered"),
        "never answered:\n{}",
        engine.log()
    );
}

#[test]
fn with_every_recognizer_busy_the_next_caller_gets_the_key_menu_at_once() {
    let dir = out_dir("ivr_pool_busy");
    let engine = engine(&dir, &[("speech", "max_sessions = 1\n")]);
    let silence = dir.join("silence.wav");
    tone(&silence, 60.0, 0, true);
    // Two Mandarin callers at once: one recognizer between them.
    let sipp = callers(
        &engine,
        "12345",
        &[
            Act::Pause(1500),
            Act::Key('1'),
            Act::Stream(&silence),
            Act::Pause(15_000),
        ],
        &["-m", "2", "-r", "10", "-l", "2"],
    );
    let fallback = engine.wait_event(Duration::from_secs(30), |e| kind(e) == "dtmf_fallback");
    let run = sipp.finish(WAIT);
    assert!(run.success, "{}\n{}", run.output, run.errors);
    let fallback = fallback.unwrap_or_else(|| panic!("no fallback: {:?}", engine.events()));
    assert_eq!(fallback["reason"], "pool_busy", "{fallback}");
    assert_eq!(
        engine.count_log("prompts=menu_main"),
        1,
        "only the second caller got the menu"
    );
    assert!(
        engine
            .metric("hotline_speech_unavailable_total{lang=\"cmn\",reason=\"busy\"}")
            .unwrap_or(0.0)
            >= 1.0,
        "the refusal is counted"
    );
    assert_eq!(
        engine.count_log("prompts=speech_busy"),
        1,
        "the caller is told why before the menu"
    );
}

/// Twenty Mandarin callers at once (arriving within two seconds, all in the IVR together),
/// with the shipped speech config, each saying a request over the prompt: every one is
/// recognised and queued, none falls back to keys, no frame is dropped (the decoders
/// multiplex the sessions and decode speech only). A clear request needs no confirmation,
/// so the callers press nothing after speaking.
#[test]
fn twenty_callers_speaking_at_once_are_all_understood() {
    let dir = out_dir("ivr_twenty");
    let engine = engine(&dir, &[]);
    let wav = dir.join("request.ulaw.wav");
    to_mulaw(&shared().join("speech/dev/cmn-dev-006.wav"), &wav);
    let sipp = callers(
        &engine,
        "12345",
        &[
            Act::Pause(1500),
            Act::Key('1'),
            Act::Pause(1500),
            Act::Stream(&wav),
            Act::Pause(15_000),
        ],
        &["-m", "20", "-r", "10", "-l", "20"],
    );
    let run = sipp.finish(Duration::from_secs(120));
    assert!(run.success, "{}\n{}", run.output, run.errors);
    let queued = |e: &Value| kind(e) == "enter_queue" && e["queue"] == "housing_fund";
    assert!(
        wait_until(Duration::from_secs(10), || engine
            .events()
            .iter()
            .filter(|e| queued(e))
            .count()
            == 20),
        "not all 20 queued by speech: {:?}",
        engine.events()
    );
    let events = engine.events();
    let fallbacks: Vec<&Value> = events
        .iter()
        .filter(|e| kind(e) == "dtmf_fallback")
        .collect();
    assert!(fallbacks.is_empty(), "{fallbacks:?}");
    let recognised = events
        .iter()
        .filter(|e| kind(e) == "intent_recognised" && e["intent"] == "housing_fund")
        .count();
    assert_eq!(recognised, 20);
    for metric in [
        "hotline_speech_unavailable_total{lang=\"cmn\",reason=\"busy\"}",
        "hotline_speech_frames_dropped_total{lang=\"cmn\"}",
    ] {
        assert_eq!(engine.metric(metric), Some(0.0), "{metric}");
    }
}
