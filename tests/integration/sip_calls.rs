//! Calls from a real peer (SIPp) over loopback, UDP and TCP: answering, audio both ways,
//! CANCEL, a lost 200, DTMF, hold, the media timeout and refusals.

use crate::common;

use std::time::{Duration, Instant};

use common::{Engine, out_dir, read_wav, rms, sipp, tone, wait_closed};

fn assert_ok(run: &common::SippRun) {
    assert!(run.success, "SIPp failed:\n{}\n{}", run.output, run.errors);
}

/// 200 calls at 50 calls/s, each streaming audio, all hung up by the engine after its
/// prompt; then the same over TCP.
#[test]
fn two_hundred_calls_at_fifty_per_second_over_udp_and_tcp() {
    let dir = out_dir("load_200");
    let engine = Engine::start(&dir, 1.0, &[]);
    let wav = dir.join("caller.wav");
    tone(&wav, 0.8, 440, true);
    let wav = wav.display().to_string();
    for transport in ["u1", "t1"] {
        let run = sipp(
            &engine,
            "caller_prompt.xml",
            &[("WAV", &wav)],
            &["-m", "200", "-r", "50", "-t", transport],
        );
        assert_ok(&run);
    }
    // SIPp may exit before the engine logs the last call's end (after the 200 to its BYE).
    assert!(
        engine.wait_log_count("call ended", 400, Duration::from_secs(30)),
        "{}",
        engine.log()
    );
    assert_eq!(engine.count_log("call ended"), 400, "{}", engine.log());
    assert_eq!(engine.count_log("outcome=prompt_played"), 400);
}

/// The caller's audio reaches the engine: the recording has the streamed file's length and
/// is not silent.
#[test]
fn caller_audio_is_received_and_recorded() {
    let dir = out_dir("recording");
    let rec = dir.join("rec");
    let rec_config = format!("enabled = true\ndir = \"{}\"\n", rec.display());
    let engine = Engine::start(&dir, 10.0, &[("recording", &rec_config)]);
    let wav = dir.join("caller.wav");
    tone(&wav, 2.0, 440, true);
    for transport in ["u1", "t1"] {
        let run = sipp(
            &engine,
            "caller_hangs_up.xml",
            &[("WAV", &wav.display().to_string()), ("HOLD_MS", "4000")],
            &["-m", "1", "-t", transport],
        );
        assert_ok(&run);
    }
    assert!(engine.wait_log_count("outcome=caller_hung_up", 2, Duration::from_secs(20)));
    let files: Vec<_> = std::fs::read_dir(&rec)
        .expect("recordings folder")
        .flatten()
        .collect();
    assert_eq!(files.len(), 2, "one recording per call");
    for f in files {
        assert!(
            wait_closed(&f.path(), Duration::from_secs(10)),
            "{} never closed",
            f.path().display()
        );
        let (samples, rate) = read_wav(&f.path());
        assert_eq!(rate, 8000);
        let secs = samples.len() as f64 / 8000.0;
        assert!(
            (secs - 2.0).abs() <= 0.1,
            "{} lasts {secs} s, expected 2.0",
            f.path().display()
        );
        // A 0.5-amplitude sine has an RMS of about 0.35 of full scale (11,600).
        let level = rms(&samples);
        assert!(level > 9000.0 && level < 13000.0, "RMS {level}");
    }
}

#[test]
fn cancel_while_ringing_gets_200_and_487() {
    let dir = out_dir("cancel");
    let engine = Engine::start(&dir, 2.0, &[("sip", "answer_delay_ms = 3000\n")]);
    for transport in ["u1", "t1"] {
        let run = sipp(&engine, "cancel.xml", &[], &["-m", "1", "-t", transport]);
        assert_ok(&run);
    }
    assert_eq!(
        engine.count_log("answered"),
        0,
        "a cancelled call is never answered"
    );
}

#[test]
fn a_lost_200_is_retransmitted_and_the_call_completes() {
    let dir = out_dir("lost_200");
    let engine = Engine::start(&dir, 1.0, &[]);
    let run = sipp(&engine, "lost_200.xml", &[], &["-m", "3", "-r", "3"]);
    assert_ok(&run);
    // SIPp's screen: `200 <----------  E-RTD1 3  <retransmissions> ...`
    let retrans: u32 = run
        .output
        .lines()
        .find(|l| l.contains("200 <----------") && l.contains("E-RTD1"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .expect("SIPp's statistics line for the 200");
    assert!(
        retrans >= 3,
        "each of the 3 calls saw its 200 again: {retrans}"
    );
    assert!(engine.wait_log_count("outcome=prompt_played", 3, Duration::from_secs(20)));
    assert_eq!(
        engine.count_log("outcome=prompt_played"),
        3,
        "{}",
        engine.log()
    );
}

#[test]
fn rfc_4733_keys_from_sipp_are_decoded_once_each() {
    let dir = out_dir("dtmf");
    let engine = Engine::start(&dir, 10.0, &[]);
    for transport in ["u1", "t1"] {
        let run = sipp(&engine, "dtmf.xml", &[], &["-m", "1", "-t", transport]);
        assert_ok(&run);
    }
    assert!(engine.wait_log_count("outcome=caller_hung_up", 2, Duration::from_secs(20)));
    assert_eq!(engine.count_log("keys=12#"), 2, "{}", engine.log());
}

#[test]
fn keys_sent_as_sip_info_are_answered_and_heard() {
    let dir = out_dir("dtmf_info");
    let engine = Engine::start(&dir, 10.0, &[]);
    for transport in ["u1", "t1"] {
        let run = sipp(&engine, "dtmf_info.xml", &[], &["-m", "1", "-t", transport]);
        assert_ok(&run);
    }
    assert!(engine.wait_log_count("outcome=caller_hung_up", 2, Duration::from_secs(20)));
    assert_eq!(engine.count_log("keys=42#"), 2, "{}", engine.log());
}

#[test]
fn hold_and_resume_by_reinvite_are_answered_with_mirrored_directions() {
    let dir = out_dir("hold");
    let engine = Engine::start(&dir, 10.0, &[]);
    let run = sipp(&engine, "hold.xml", &[], &["-m", "1"]);
    assert_ok(&run);
    assert_eq!(
        engine.count_log("re-INVITE hold=true"),
        1,
        "{}",
        engine.log()
    );
    assert_eq!(engine.count_log("re-INVITE hold=false"), 1);
}

#[test]
fn a_caller_whose_rtp_stops_is_hung_up_after_the_media_timeout() {
    let dir = out_dir("media_timeout");
    let engine = Engine::start(&dir, 30.0, &[("media", "media_timeout_s = 2\n")]);
    let started = Instant::now();
    let run = sipp(&engine, "silent_caller.xml", &[], &["-m", "1"]);
    assert_ok(&run);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "hung up after {took:?}"
    );
    assert!(
        engine.wait_log("media timeout", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
}

#[test]
fn calls_are_refused_without_a_common_codec_or_from_an_unknown_source() {
    let dir = out_dir("refused");
    let engine = Engine::start(&dir, 1.0, &[]);
    let run = sipp(
        &engine,
        "refused.xml",
        &[("CODE", "488"), ("FORMATS", "18"), ("HEADERS", "")],
        &["-m", "1"],
    );
    assert_ok(&run);
    drop(engine);
    let engine = Engine::start(&dir, 1.0, &[("trunks", "allow = [\"10.0.0.0/8\"]\n")]);
    let run = sipp(
        &engine,
        "refused.xml",
        &[("CODE", "403"), ("FORMATS", "0"), ("HEADERS", "")],
        &["-m", "1"],
    );
    assert_ok(&run);
}

/// The dialplan sees the named trunk a call came in on (`switch: trunk`).
#[test]
fn the_trunk_a_call_came_in_on_reaches_the_dialplan() {
    let dir = out_dir("trunk_var");
    let steps = "
  start:
    switch: trunk
    cases:
      pbx: on_pbx
    default: other
  on_pbx:
    play: hello
    next: pbx_done
  pbx_done:
    hangup: from_pbx
  other:
    play: hello
    next: other_done
  other_done:
    hangup: from_elsewhere
";
    let wav = dir.join("caller.wav");
    tone(&wav, 0.3, 440, true);
    let pbx = [("trunks.named.pbx", "allow = [\"127.0.0.1/32\"]\n")];
    for (extra, outcome) in [
        (&pbx[..], "outcome=from_pbx"),
        (&[][..], "outcome=from_elsewhere"),
    ] {
        let engine = Engine::start_steps(&dir, 0.5, steps, extra);
        let run = sipp(
            &engine,
            "caller_prompt.xml",
            &[("WAV", &wav.display().to_string())],
            &["-m", "1"],
        );
        assert_ok(&run);
        assert!(
            engine.wait_log(outcome, Duration::from_secs(10)),
            "{}",
            engine.log()
        );
    }
}

/// An OPTIONS probe from 127.0.0.1 over UDP: the status line of the answer.
fn probe(engine: &Engine) -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("a read timeout");
    let local = socket.local_addr().expect("its address");
    let options = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe{port}\r\n\
From: <sip:probe@{local}>;tag=p\r\nTo: <sip:{addr}>\r\nCall-ID: probe-{port}\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        addr = engine.addr(),
        port = local.port(),
    );
    socket
        .send_to(options.as_bytes(), engine.addr())
        .expect("send the probe");
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("an answer to the probe");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// SIGTERM drains: new calls and probes get 503 at once, the call in progress goes on for
/// the grace and then gets a BYE, its end is logged, `engine_stopped` follows, and the
/// next start finds no call left open.
#[test]
fn sigterm_drains_calls_then_stops_with_every_end_logged() {
    let dir = out_dir("sigterm");
    let _ = std::fs::remove_file(dir.join("events.sqlite"));
    let grace = ("sip", "shutdown_grace_s = 3\n");
    let mut engine = Engine::start(&dir, 30.0, &[grace]);
    assert_eq!(probe(&engine), "SIP/2.0 200 OK");
    let wav = dir.join("caller.wav");
    tone(&wav, 20.0, 440, true);
    let caller = common::Sipp::start(
        &dir,
        engine.addr(),
        "caller_prompt.xml",
        &[("WAV", &wav.display().to_string())],
        &["-m", "1"],
    );
    assert!(
        engine.wait_log("answered", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    let asked = Instant::now();
    engine.signal("TERM");
    assert!(engine.wait_log("stopping: no new calls", Duration::from_secs(5)));
    assert_eq!(probe(&engine), "SIP/2.0 503 Service Unavailable");

    let run = caller.finish(Duration::from_secs(20));
    assert_ok(&run);
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "hung up before the grace"
    );
    let status = engine
        .wait_exit(Duration::from_secs(20))
        .expect("the engine exits");
    assert!(status.success(), "{status:?}\n{}", engine.log());
    let log = engine.log();
    assert!(log.contains("outcome=shutdown"), "{log}");
    assert!(log.contains("every call ended"), "{log}");
    drop(engine);

    let engine = Engine::start(&dir, 1.0, &[]);
    let events = engine.wait_events(Duration::from_secs(10), |e| {
        e.iter().any(|e| e["event"] == "engine_started")
    });
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let finished = events
        .iter()
        .find(|e| e["event"] == "call_finished")
        .expect("the call's end is logged");
    assert_eq!(finished["outcome"], "shutdown", "{events:?}");
    assert_eq!(
        kinds.iter().rev().take(2).collect::<Vec<_>>(),
        [&"engine_started", &"engine_stopped"],
        "{kinds:?}"
    );
    assert!(engine.log().contains("interrupted=0"), "{}", engine.log());
}
