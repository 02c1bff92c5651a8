//! What PBX and carrier trunks expect of the engine's signalling, against SIPp playing the
//! trunk over loopback (UDP and TCP): reliable provisional responses (RFC 3262), session
//! timers refreshed by UPDATE and too-short intervals refused (RFC 4028, 3311), and a
//! carrier behind a NAT sending a withheld caller with P-Asserted-Identity (RFC 3581,
//! 3325, 5806).

use crate::common;

use std::time::Duration;

use common::{Engine, out_dir, sipp, tone};

fn assert_ok(run: &common::SippRun) {
    assert!(run.success, "SIPp failed:\n{}\n{}", run.output, run.errors);
}

#[test]
fn a_pbx_requiring_100rel_gets_a_reliable_180_and_its_prack_answered() {
    let dir = out_dir("trunk_100rel");
    // The engine rings a second, so the PRACK is answered before the 200.
    let engine = Engine::start(&dir, 10.0, &[("sip", "answer_delay_ms = 1000\n")]);
    for transport in ["u1", "t1"] {
        let run = sipp(&engine, "prack.xml", &[], &["-m", "1", "-t", transport]);
        assert_ok(&run);
    }
    assert!(
        engine.wait_log_count("outcome=caller_hung_up", 2, Duration::from_secs(20)),
        "{}",
        engine.log()
    );
}

#[test]
fn session_timers_are_agreed_and_refreshed_by_update_and_short_ones_refused() {
    let dir = out_dir("trunk_timers");
    let engine = Engine::start(&dir, 10.0, &[]);
    for transport in ["u1", "t1"] {
        let run = sipp(
            &engine,
            "timer_update.xml",
            &[],
            &["-m", "1", "-t", transport],
        );
        assert_ok(&run);
    }
    assert!(
        engine.wait_log_count("outcome=caller_hung_up", 2, Duration::from_secs(20)),
        "{}",
        engine.log()
    );
    let run = sipp(
        &engine,
        "refused.xml",
        &[
            ("CODE", "422"),
            ("FORMATS", "0"),
            ("HEADERS", "\nSupported: timer\nSession-Expires: 60"),
        ],
        &["-m", "1"],
    );
    assert_ok(&run);
}

#[test]
fn a_withheld_caller_from_a_carrier_behind_a_nat_is_known_and_reached() {
    let dir = out_dir("trunk_carrier");
    let engine = Engine::start(&dir, 1.0, &[]);
    let wav = dir.join("caller.wav");
    tone(&wav, 0.8, 440, true);
    let run = sipp(
        &engine,
        "carrier_caller.xml",
        &[("WAV", &wav.display().to_string())],
        &["-m", "1"],
    );
    // The BYE after the prompt reached SIPp at its own port, though its Via and Contact
    // named another address.
    assert_ok(&run);
    assert!(
        engine.wait_log("outcome=prompt_played", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    let log = engine.log();
    assert!(log.contains("caller=+8613900002222"), "{log}");
    assert!(log.contains("withheld=true"), "{log}");
    assert!(
        log.contains("original_called=Some(\"01088888888\")"),
        "{log}"
    );
}
