//! Checks the baresip agent-phone harness (tests/common/baresip.rs) against real peers,
//! without the engine: digest registration with Kamailio (right password, wrong password,
//! SHA-256), and SIPp calling a phone directly (answer with audio both ways, hang-up from
//! the harness, no answer, rejection).

use crate::common;

use std::time::{Duration, Instant};

use common::baresip::{Baresip, PhoneOptions, Registration};
use common::kamailio::Kamailio;
use common::{Sipp, SippRun, frequency, out_dir, read_wav, rms, tone};

const WAIT: Duration = Duration::from_secs(10);

fn assert_ok(run: &SippRun) {
    assert!(run.success, "SIPp failed:\n{}\n{}", run.output, run.errors);
}

#[test]
fn phone_registers_with_digest_auth_and_a_wrong_password_never_does() {
    let dir = out_dir("baresip_register");
    let kamailio = Kamailio::start(&dir, "MD5");
    let good = Baresip::start(&dir, PhoneOptions::agent("1001", "secret", kamailio.addr()));
    let bad = Baresip::start(&dir, PhoneOptions::agent("1002", "wrong", kamailio.addr()));

    assert_eq!(
        good.wait_registration(WAIT),
        Registration::Registered,
        "{}",
        good.log()
    );
    assert!(good.registered());
    assert_eq!(
        bad.wait_registration(WAIT),
        Registration::Failed("401 Unauthorized".into()),
        "{}",
        bad.log()
    );
    assert!(!bad.registered());
    assert_eq!(bad.count("REGISTER_OK"), 0);

    assert!(kamailio.wait_log(&format!(
        "REGISTER from sip:1001@{}: authenticated",
        kamailio.addr()
    )));
    assert!(kamailio.wait_log("REGISTER from sip:1002@"));
    let log = kamailio.log();
    let challenged = log
        .find("REGISTER from sip:1001@")
        .expect("1001 REGISTERed");
    assert!(log[challenged..].starts_with(&format!(
        "REGISTER from sip:1001@{}: challenged",
        kamailio.addr()
    )));
    assert!(log.contains(&format!(
        "REGISTER from sip:1001@{}: authenticated, Contact <sip:1001-0x",
        kamailio.addr()
    )));
    assert!(log.contains("REGISTER from sip:1002@"), "{log}");
    let bad_in = format!("REGISTER from sip:1002@{}: authenticated", kamailio.addr());
    assert!(!log.contains(&bad_in), "{log}");

    // Un-REGISTER: authenticated again, with expires=0.
    good.unregister();
    assert!(!good.registered());
    assert!(kamailio.wait_log(";expires=0"), "{}", kamailio.log());
}

/// baresip 1.0 (libre 1.1) does MD5 only: a SHA-256 challenge fails the registration.
/// Should the Debian package learn SHA-256, this test says so.
#[test]
fn phone_cannot_answer_a_sha256_challenge() {
    let dir = out_dir("baresip_sha256");
    let kamailio = Kamailio::start(&dir, "SHA-256");
    let phone = Baresip::start(&dir, PhoneOptions::agent("1003", "secret", kamailio.addr()));
    assert_eq!(
        phone.wait_registration(WAIT),
        Registration::Failed("Function not implemented".into()),
        "{}",
        phone.log()
    );
    assert!(phone.wait_log("algorithm=SHA-256", WAIT), "{}", phone.log());
}

/// SIPp calls the phone directly: it rings, answers after its delay, records the caller's
/// 440 Hz tone, plays its own 600 Hz tone, and the harness hangs up with a BYE SIPp gets.
#[test]
fn phone_answers_records_and_hangs_up() {
    let dir = out_dir("baresip_call");
    let agent_wav = dir.join("agent.wav");
    tone(&agent_wav, 1.0, 600, false);
    let caller_wav = dir.join("caller.wav");
    tone(&caller_wav, 2.0, 440, true);
    let phone = Baresip::start(
        &dir,
        PhoneOptions {
            answer_after: Some(Duration::from_millis(300)),
            play: Some(agent_wav),
            ..PhoneOptions::unregistered("agent7")
        },
    );
    let sipp = Sipp::start(
        &dir,
        phone.addr(),
        "agent_call.xml",
        &[
            ("WAV", &caller_wav.display().to_string()),
            ("QUEUE", "harness-test"),
            ("BYE_WITHIN_MS", "15000"),
        ],
        &["-s", &phone.user, "-m", "1"],
    );
    assert!(phone.wait_calls_answered(1, WAIT), "{}", phone.log());
    let answered = Instant::now();

    // The caller talks for the 2 s of its stream; then the agent hangs up (the recording
    // of what it heard grows only while audio arrives, so a later hang-up does no harm).
    std::thread::sleep(Duration::from_millis(3500).saturating_sub(answered.elapsed()));
    phone.hangup();
    assert_ok(&sipp.finish(WAIT));
    assert!(phone.wait_calls_ended(1, WAIT));
    assert_eq!(phone.calls_received(), 1);
    assert_eq!(phone.max_concurrent_calls(), 1);

    let events = phone.events();
    let at = |kind: &str| events.iter().find(|e| e.kind == kind).map(|e| e.at);
    let rang_for =
        at("CALL_ESTABLISHED").expect("established") - at("CALL_INCOMING").expect("incoming");
    assert!(
        rang_for >= Duration::from_millis(300),
        "answered after {rang_for:?}"
    );

    let invites = phone.invites();
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert!(
        invites[0].contains("X-Hotline-Queue: harness-test"),
        "{}",
        invites[0]
    );

    let recordings = phone.wait_recordings(1, WAIT);
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let heard = recordings[0]
        .heard
        .as_ref()
        .expect("the phone heard the caller");
    let (samples, rate) = read_wav(heard);
    assert_eq!(rate, 8000);
    let secs = samples.len() as f64 / 8000.0;
    assert!((secs - 2.0).abs() <= 0.25, "heard {secs} s, expected 2.0");
    // A 0.5-amplitude sine has an RMS of about 0.35 of full scale (11,600).
    let level = rms(&samples);
    assert!(level > 9000.0 && level < 13000.0, "RMS {level}");
    let f = frequency(&samples, rate);
    assert!((f - 440.0).abs() < 15.0, "heard {f} Hz");

    let sent = recordings[0].sent.as_ref().expect("the phone sent audio");
    let (samples, _) = read_wav(sent);
    assert!(samples.len() > 8000 * 2, "sent {} samples", samples.len());
    let (tone_part, rest) = samples.split_at(8000);
    assert!((frequency(tone_part, 8000) - 600.0).abs() < 15.0);
    assert!(rms(tone_part) > 9000.0, "RMS {}", rms(tone_part));
    assert!(rms(&rest[400..]) < 10.0, "the padding is silence");
}

/// A phone that does not answer rings until the caller cancels; rejecting a ringing call
/// from the harness answers 486.
#[test]
fn phone_that_does_not_answer_rings_and_can_reject() {
    let dir = out_dir("baresip_no_answer");
    let phone = Baresip::start(
        &dir,
        PhoneOptions {
            answer_after: None,
            ..PhoneOptions::unregistered("agent9")
        },
    );
    let run = Sipp::start(
        &dir,
        phone.addr(),
        "agent_no_answer.xml",
        &[("RING_MS", "1500")],
        &["-s", &phone.user, "-m", "1"],
    )
    .finish(WAIT);
    assert_ok(&run);
    assert!(phone.wait_calls_ended(1, WAIT));
    assert_eq!(phone.calls_received(), 1);
    assert_eq!(phone.calls_answered(), 0);

    let sipp = Sipp::start(
        &dir,
        phone.addr(),
        "agent_rejects.xml",
        &[("REJECT_WITHIN_MS", "10000")],
        &["-s", &phone.user, "-m", "1"],
    );
    assert!(phone.wait_calls_received(2, WAIT), "{}", phone.log());
    phone.hangup();
    assert_ok(&sipp.finish(WAIT));
    assert!(phone.wait_calls_ended(2, WAIT));
    assert_eq!(phone.calls_answered(), 0);
    assert!(phone.recordings().is_empty());
}
