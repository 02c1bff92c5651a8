//! The dialplan's `transfer` step with real peers: a SIPp caller is bridged to a baresip
//! phone at a SIP URI, which hears the caller and gets the call's variables in headers; a
//! phone that only rings is CANCELled at the step's ring timeout and the flow goes on to
//! its `failed` step.

use crate::common;

use std::time::Duration;

use common::baresip::{Baresip, PhoneOptions};
use common::{Act, Engine, Sipp, actions, out_dir, read_wav, rms, tone, tone_callers};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// An engine whose calls to `called` transfer to `target`, and whose failed transfers
/// hang up with outcome `no_duty`.
fn engine(dir: &std::path::Path, called: &str, target: &str) -> Engine {
    let plans = dir.join("plans");
    std::fs::create_dir_all(&plans).expect("plans folder");
    let plan = format!(
        "languages: [cmn]\nmatch:\n  - called: \"{called}\"\nsteps:\n  to_duty:\n    \
transfer: {target}\n    ring_timeout: 2s\n    failed: sorry\n  sorry:\n    hangup: no_duty\n"
    );
    std::fs::write(plans.join("transfer.yaml"), plan).expect("write the dialplan");
    let directory = format!("directory = \"{}\"\n", plans.display());
    Engine::start_with(dir, &[("dialplan", &directory)])
}

fn finished_outcome(engine: &Engine) -> Option<Value> {
    engine
        .wait_event(Duration::from_secs(10), |e| e["event"] == "call_finished")
        .map(|e| e["outcome"].clone())
}

#[test]
fn a_transferred_caller_is_bridged_to_the_target_with_the_call_context() {
    let dir = out_dir("transfer_bridged");
    let duty = Baresip::start(&dir, PhoneOptions::unregistered("duty"));
    let engine = engine(&dir, "300", &duty.uri());
    let caller_wav = dir.join("caller.wav");
    tone(&caller_wav, 10.0, 440, true);
    let run = Sipp::start(
        &engine.dir,
        engine.addr(),
        "ivr_caller.xml",
        &[
            ("CALLED", "300"),
            (
                "ACTIONS",
                &actions(&[Act::Stream(&caller_wav), Act::Pause(6000)]),
            ),
        ],
        &["-m", "1"],
    )
    .finish(WAIT);
    assert!(run.success, "{}\n{}", run.output, run.errors);

    assert_eq!(duty.calls_answered(), 1, "{}", duty.log());
    assert!(
        duty.wait_calls_ended(1, Duration::from_secs(10)),
        "the caller's BYE reached the target"
    );
    let invite = &duty.invites()[0];
    assert!(invite.contains("X-Hotline-Caller: 13800138000"), "{invite}");
    assert!(invite.contains("X-Hotline-Language: cmn"), "{invite}");
    assert!(!invite.contains("X-Hotline-Queue"), "{invite}");
    let recordings = duty.wait_recordings(1, Duration::from_secs(10));
    let heard = recordings[0]
        .heard
        .as_ref()
        .expect("the target's recording of the caller");
    let (samples, _) = read_wav(heard);
    assert!(rms(&samples) > 5000.0, "heard RMS {}", rms(&samples));
    assert_eq!(finished_outcome(&engine), Some(Value::from("transferred")));
}

#[test]
fn a_target_that_only_rings_is_cancelled_and_the_flow_goes_on() {
    let dir = out_dir("transfer_no_answer");
    let duty = Baresip::start(
        &dir,
        PhoneOptions {
            answer_after: None,
            ..PhoneOptions::unregistered("duty")
        },
    );
    let engine = engine(&dir, "301", &duty.uri());
    let run = tone_callers(&engine, "301", 20.0, &["-m", "1"]).finish(WAIT);
    assert!(
        run.success,
        "the engine hung up after the failed transfer: {}\n{}",
        run.output, run.errors
    );
    assert_eq!(duty.calls_received(), 1);
    assert_eq!(duty.calls_answered(), 0);
    assert!(
        duty.wait_calls_ended(1, Duration::from_secs(10)),
        "the ringing target was CANCELled: {}",
        duty.log()
    );
    assert_eq!(finished_outcome(&engine), Some(Value::from("no_duty")));
}
