//! G.722 with a real implementation: baresip's `g722` module (spandsp's codec) on phones
//! that offer and accept nothing else. A G.722-only caller is answered in G.722 and both
//! sides hear each other's tones (our encoder through their decoder, their encoder through
//! ours); a G.711 caller bridged to a G.722-only agent is transcoded both ways.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::agents::{Agent, BARESIP_DIGEST, engine_with, wait_agent_state};
use common::baresip::{Baresip, PhoneCodec, PhoneOptions, Registration};
use common::{Engine, frequency, out_dir, read_wav, rms, tone_callers, wide_tone};

const WAIT: Duration = Duration::from_secs(30);

fn recording_section(dir: &Path) -> (PathBuf, String) {
    let recordings = dir.join("engine-recordings");
    let lines = format!("enabled = true\ndir = \"{}\"\n", recordings.display());
    (recordings, lines)
}

/// The engine's recording whose file name ends with `suffix`, once it is complete.
fn engine_recording(dir: &Path, suffix: &str) -> (Vec<i16>, u32) {
    let path = std::fs::read_dir(dir)
        .expect("the engine's recordings")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no recording ending {suffix} in {}", dir.display()));
    assert!(common::wait_closed(&path, Duration::from_secs(10)));
    read_wav(&path)
}

/// Asserts that `samples` (at `rate`) hold a loud tone of `hz` from 0.3 s to `until_s`.
fn assert_tone(what: &str, samples: &[i16], rate: u32, hz: f64, until_s: f64) {
    let part = &samples[(0.3 * rate as f64) as usize..(until_s * rate as f64) as usize];
    let f = frequency(part, rate);
    let level = rms(part);
    // A 0.5-amplitude sine has an RMS of about 11,600.
    assert!(
        (f - hz).abs() < 15.0 && level > 7000.0 && level < 15000.0,
        "{what}: {f:.1} Hz at RMS {level:.0}, expected {hz} Hz near 11,600"
    );
}

/// An agent's G.722-only phone, registered and available, that answers after 200 ms,
/// plays `voice` (16 kHz) and hangs up 3 s after answering.
fn g722_agent(dir: &Path, engine: &Engine, id: &str, voice: Option<PathBuf>) -> Baresip {
    let phone = Baresip::start(
        dir,
        PhoneOptions {
            answer_after: Some(Duration::from_millis(200)),
            play: voice,
            call_limit: Duration::from_secs(3),
            codec: PhoneCodec::G722,
            ..PhoneOptions::agent(id, &format!("pw-{id}"), engine.addr())
        },
    );
    assert_eq!(
        phone.wait_registration(Duration::from_secs(10)),
        Registration::Registered,
        "{}",
        phone.log()
    );
    assert!(wait_agent_state(engine, id, "available"));
    phone
}

#[test]
fn a_g722_only_caller_is_answered_in_g722_and_both_sides_hear_each_other() {
    let dir = out_dir("g722_caller");
    let (recordings, recording) = recording_section(&dir);
    // The engine plays 3 s of a 300 Hz prompt (recorded at 8 kHz), then hangs up.
    let engine = Engine::start(&dir, 3.0, &[("recording", &recording)]);
    let voice = dir.join("voice-16k.wav");
    wide_tone(&voice, 6.0, 1000, 16000);
    let phone = Baresip::start(
        &dir,
        PhoneOptions {
            play: Some(voice),
            codec: PhoneCodec::G722,
            ..PhoneOptions::unregistered("wideband")
        },
    );
    phone.dial(&format!("sip:100@{}", engine.addr()));
    assert!(phone.wait_calls_ended(1, WAIT), "{}", phone.log());
    assert!(
        engine.wait_log("outcome=prompt_played", Duration::from_secs(10)),
        "a G.722-only offer is answered, not refused with 488:\n{}",
        engine.log()
    );
    // What spandsp decoded of our G.722 (the prompt upsampled, then encoded).
    let heard = phone.wait_recordings(1, Duration::from_secs(10))[0]
        .heard
        .clone()
        .expect("the phone's recording of the prompt");
    let (samples, rate) = read_wav(&heard);
    assert_eq!(rate, 16000, "the phone decoded G.722");
    assert_tone("the phone heard", &samples, rate, 300.0, 2.8);
    // What we decoded of spandsp's G.722, recorded at 8 kHz.
    let (samples, rate) = engine_recording(&recordings, ".wav");
    assert_eq!(rate, 8000);
    assert_tone("the engine heard", &samples, rate, 1000.0, 2.8);
}

#[test]
fn a_g711_caller_and_a_g722_only_agent_are_transcoded_both_ways() {
    let dir = out_dir("g722_agent");
    let (recordings, recording) = recording_section(&dir);
    let agent = Agent {
        id: "w1",
        languages: "[\"cmn\"]",
    };
    let engine = engine_with(
        &dir,
        &[agent],
        "",
        &[BARESIP_DIGEST, ("recording", recording.as_str())],
    );
    let voice = dir.join("agent-16k.wav");
    wide_tone(&voice, 3.0, 600, 16000);
    let phone = g722_agent(&dir, &engine, "w1", Some(voice));
    // A PCMU caller with 6 s of a 440 Hz tone; the agent hangs up after 3 s.
    let run = tone_callers(&engine, "100", 6.0, &["-m", "1"]).finish(Duration::from_secs(60));
    assert!(run.success, "{}\n{}", run.output, run.errors);
    assert_eq!(phone.calls_answered(), 1, "{}", phone.log());
    let invite = &phone.invites()[0];
    assert!(invite.contains("a=rtpmap:9 G722/8000"), "{invite}");

    let heard = phone.wait_recordings(1, Duration::from_secs(10))[0]
        .heard
        .clone()
        .expect("the agent's recording of the caller");
    let (samples, rate) = read_wav(&heard);
    assert_eq!(rate, 16000, "the agent's leg is G.722");
    assert_tone("the agent heard", &samples, rate, 440.0, 2.5);
    let (samples, rate) = engine_recording(&recordings, "-far.wav");
    assert_tone("the engine heard the agent", &samples, rate, 600.0, 2.5);
}

/// Two G.722 legs are bridged at 16 kHz: a 5 kHz tone, which no narrowband path can
/// carry, crosses from caller to agent. It passes through spandsp's encoder, our decoder,
/// our encoder and spandsp's decoder, so it also checks the upper sub-band against theirs.
#[test]
fn two_g722_legs_are_bridged_in_wideband() {
    let dir = out_dir("g722_bridge");
    let agent = Agent {
        id: "w2",
        languages: "[\"cmn\"]",
    };
    let engine = engine_with(&dir, &[agent], "", &[BARESIP_DIGEST]);
    let agent_phone = g722_agent(&dir, &engine, "w2", None);
    let voice = dir.join("caller-16k.wav");
    wide_tone(&voice, 8.0, 5000, 16000);
    let caller = Baresip::start(
        &dir,
        PhoneOptions {
            play: Some(voice),
            codec: PhoneCodec::G722,
            ..PhoneOptions::unregistered("caller")
        },
    );
    caller.dial(&format!("sip:100@{}", engine.addr()));
    assert!(
        agent_phone.wait_calls_ended(1, WAIT),
        "{}",
        agent_phone.log()
    );
    let heard = agent_phone.wait_recordings(1, Duration::from_secs(10))[0]
        .heard
        .clone()
        .expect("the agent's recording of the caller");
    let (samples, rate) = read_wav(&heard);
    assert_eq!(rate, 16000);
    assert_tone("the agent heard", &samples, rate, 5000.0, 2.5);
}

/// A G.722 caller's request reaches the recogniser at 16 kHz (the pool fed at 16 kHz
/// takes the leg's own wideband audio) and is understood: a dev clip, resampled to
/// 16 kHz for the phone, said over a one-second prompt.
#[test]
fn a_g722_callers_request_is_understood_from_its_wideband_audio() {
    let dir = out_dir("g722_speech");
    let steps = "  start:\n    ask: hello\n    grammar: \"12345\"\n    timeout: 6s\n    \
intent: understood\n    no_input: missed\n    no_match: missed\n    unavailable: missed\n  \
understood:\n    hangup: understood\n  missed:\n    hangup: missed\n";
    let engine = Engine::start_steps(
        &dir,
        1.0,
        steps,
        &[("speech", "vosk_sample_rate = 16000\n")],
    );
    let request = dir.join("request-16k.wav");
    let status = std::process::Command::new("sox")
        .arg(common::shared().join("speech/dev/cmn-dev-006.wav"))
        .args(["-r", "16000", "-b", "16"])
        .arg(&request)
        .args(["pad", "1.0", "0"])
        .status()
        .expect("run sox");
    assert!(status.success());
    let phone = Baresip::start(
        &dir,
        PhoneOptions {
            play: Some(request),
            call_limit: Duration::from_secs(20),
            codec: PhoneCodec::G722,
            ..PhoneOptions::unregistered("speaker")
        },
    );
    phone.dial(&format!("sip:100@{}", engine.addr()));
    assert!(phone.wait_calls_ended(1, WAIT), "{}", phone.log());
    assert!(
        engine.wait_log("outcome=understood", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    let recognised = engine
        .wait_event(Duration::from_secs(5), |e| {
            e["event"] == "intent_recognised" && e["intent"] == "housing_fund"
        })
        .unwrap_or_else(|| panic!("not understood: {:?}", engine.events()));
    assert_eq!(recognised["language"], "cmn");
}
