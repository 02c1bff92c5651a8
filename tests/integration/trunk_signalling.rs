//! What PBX and carrier trunks expect of the engine's signalling, against SIPp playing the
//! trunk over loopback (UDP and TCP): reliable provisional responses (RFC 3262), session
//! timers refreshed by UPDATE and too-short intervals refused (RFC 4028, 3311), and a
//! carrier behind a NAT sending a withheld caller with P-Asserted-Identity (RFC 3581,
//! 3325, 5806); a PBX that takes a call back by REFER (RFC 3515), and one that transfers
//! its call by REFER to a target who takes the caller's place; and Kamailio as a
//! carrier's registrar that requires digest auth, which
//! the engine registers with, takes calls through and transfers back out through.

use crate::common;

use std::time::Duration;

use common::baresip::{Baresip, PhoneOptions};
use common::certs::Certs;
use common::kamailio::Kamailio;
use common::linphone::Linphone;
use common::{Engine, out_dir, read_wav, rms, sipp, tone};

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

/// Kamailio's script for a registration-based trunk: calls to a registered user go to its
/// binding (and so do the test caller's ACK and BYE); calls to 999 (the engine transferring back out) must answer a proxy digest
/// challenge, then go to the desk phone at `desk`.
fn carrier_route(desk: u16) -> String {
    format!(
        r#"if ($rm == "INVITE" && $rU == "999") {{
            if (!pv_proxy_authenticate("hotline", "secret", 0)) {{
                xlog("L_NOTICE", "INVITE to 999: challenged\n");
                proxy_challenge("hotline", 0);
                exit;
            }}
            xlog("L_NOTICE", "INVITE to 999 from $fu: authenticated\n");
            $du = "sip:127.0.0.1:{desk}";
            t_relay();
            exit;
        }}
        if ($rm == "INVITE") {{
            if (!lookup("location")) {{
                sl_send_reply("404", "Not Found");
                exit;
            }}
            xlog("L_NOTICE", "INVITE for $rU to $ru\n");
            t_relay();
            exit;
        }}
        if ($rm == "CANCEL") {{
            t_relay();
            exit;
        }}
        # The test caller sends its ACK and BYE to us (its BYE even to "hotline" here), not
        # to the engine's Contact: they go on to the binding.
        if ($rm == "ACK" || $rm == "BYE") {{
            $rU = "12345";
            if (lookup("location")) {{
                forward();
            }}
            exit;
        }}"#
    )
}

/// The engine's `[trunks.named.carrier.register]` section for Kamailio at `addr`.
fn register_section(addr: std::net::SocketAddr, password: &str) -> String {
    format!(
        "registrar = \"sip:{addr}\"\nuser = \"12345\"\npassword = \"{password}\"\nexpires_s = 60\n"
    )
}

/// Calls from the carrier transfer back out through it (to 999); calls from anywhere else
/// are refused by name.
const CARRIER_STEPS: &str = "
  start:
    switch: trunk
    cases:
      carrier: to_desk
    default: other
  to_desk:
    transfer: trunk
    number: \"999\"
    failed: failed
  failed:
    hangup: transfer_failed
  other:
    hangup: wrong_trunk
";

#[test]
fn the_engine_registers_with_a_digest_registrar_takes_calls_through_it_and_transfers_back() {
    let dir = out_dir("trunk_register");
    let desk = common::free_port();
    let kamailio = Kamailio::start_with(&dir, "MD5", &carrier_route(desk));
    let register = register_section(kamailio.addr(), "secret");
    // Only the registration lets the carrier in: no [trunks] list names loopback.
    let engine = Engine::start_steps(
        &dir,
        0.5,
        CARRIER_STEPS,
        &[
            ("trunks", "allow = [\"10.0.0.0/8\"]\n"),
            ("trunks.named.carrier", "allow = []\n"),
            ("trunks.named.carrier.register", &register),
        ],
    );
    assert!(
        kamailio.wait_log("REGISTER from sip:12345@127.0.0.1: authenticated"),
        "{}\n{}",
        kamailio.log(),
        engine.log()
    );
    assert!(
        engine.wait_log("registered", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    let (status, body) = common::http(
        engine.api,
        "GET",
        "/api/v1/trunks",
        Some(common::ADMIN_TOKEN),
    );
    assert_eq!(status, 200, "{body}");
    let trunks: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(trunks[0]["trunk"], "carrier", "{body}");
    assert_eq!(trunks[0]["state"], "registered", "{body}");
    assert_eq!(trunks[0]["expires_s"], 60, "{body}");
    call_through_carrier(&dir, &kamailio, &engine, desk);
}

/// A registrar whose name does not resolve (DNS down as the engine starts; `.invalid`
/// never resolves) does not stop the engine: it answers calls, the trunk shows as failed
/// with the lookup's error, and the name is looked up again, later each time.
#[test]
fn a_registrar_that_does_not_resolve_leaves_the_engine_running_and_is_tried_again() {
    let dir = out_dir("trunk_register_dns");
    let engine = Engine::start(
        &dir,
        0.5,
        &[(
            "trunks.named.carrier.register",
            "registrar = \"sip:registrar.invalid\"\nuser = \"12345\"\n",
        )],
    );
    let mut body = String::new();
    // The endpoint publishes the trunks' states on its first turn.
    common::wait_until(Duration::from_secs(5), || {
        let (status, text) = common::http(
            engine.api,
            "GET",
            "/api/v1/trunks",
            Some(common::ADMIN_TOKEN),
        );
        body = text;
        status == 200 && body != "[]"
    });
    let trunks: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(trunks[0]["trunk"], "carrier", "{body}");
    assert_eq!(trunks[0]["state"], "failed", "{body}");
    let reason = trunks[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("does not resolve"), "{body}");
    // Looked up again after 5 s.
    assert!(
        common::wait_until(Duration::from_secs(15), || {
            engine
                .log()
                .matches("the registrar's name does not resolve")
                .count()
                >= 2
        }),
        "{}",
        engine.log()
    );
    let wav = dir.join("caller.wav");
    tone(&wav, 0.8, 440, true);
    let wav = wav.display().to_string();
    let run = sipp(&engine, "caller_prompt.xml", &[("WAV", &wav)], &["-m", "1"]);
    assert!(run.success, "a call is answered meanwhile: {}", run.errors);
}

/// A caller reaches the engine through the carrier (Kamailio finds its registration), and
/// the dialplan transfers it back out through the carrier, which challenges the transfer,
/// to the desk phone (SIPp) on port `desk`.
fn call_through_carrier(dir: &std::path::Path, kamailio: &Kamailio, engine: &Engine, desk: u16) {
    let phone = common::Sipp::start_on(dir, desk, kamailio.addr(), "answer.xml", &[], &["-m", "1"]);
    let wav = dir.join("caller.wav");
    tone(&wav, 2.0, 440, true);
    let caller = common::Sipp::start(
        dir,
        kamailio.addr(),
        "caller_hangs_up.xml",
        &[("WAV", &wav.display().to_string()), ("HOLD_MS", "4000")],
        &["-m", "1"],
    )
    .finish(Duration::from_secs(60));
    assert_ok(&caller);
    assert_ok(&phone.finish(Duration::from_secs(30)));
    assert!(
        kamailio.wait_log("INVITE to 999: challenged") && kamailio.wait_log("INVITE to 999 from"),
        "the transfer answered the carrier's challenge:\n{}",
        kamailio.log()
    );
    assert!(
        engine.wait_log("outcome=transferred", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
}

#[test]
fn a_registration_with_a_wrong_password_fails_and_says_why() {
    let dir = out_dir("trunk_register_wrong");
    let kamailio = Kamailio::start_with(&dir, "SHA-256", "");
    let register = register_section(kamailio.addr(), "not-the-secret-7f3a");
    let engine = Engine::start(
        &dir,
        0.5,
        &[
            ("trunks.named.carrier", "allow = []\n"),
            ("trunks.named.carrier.register", &register),
        ],
    );
    assert!(
        engine.wait_log("credentials refused", Duration::from_secs(10)),
        "{}\n{}",
        engine.log(),
        kamailio.log()
    );
    assert!(
        !engine.log().contains("not-the-secret-7f3a"),
        "the password is never logged"
    );
}

#[test]
fn a_transfer_by_refer_hands_the_call_back_to_the_pbx_and_leaves_it() {
    let dir = out_dir("trunk_refer");
    let steps = "
  start:
    play: hello
    next: hand_back
  hand_back:
    transfer: sip:999@127.0.0.1
    method: refer
    failed: failed
  failed:
    hangup: refer_failed
";
    let engine = Engine::start_steps(&dir, 0.3, steps, &[]);
    for transport in ["u1", "t1"] {
        let run = sipp(
            &engine,
            "refer_accepted.xml",
            &[("CALLED", "12345"), ("TARGET", "sip:999@")],
            &["-m", "1", "-t", transport],
        );
        assert_ok(&run);
    }
    assert!(
        engine.wait_log_count("outcome=transferred", 2, Duration::from_secs(10)),
        "{}",
        engine.log()
    );
}

#[test]
fn an_agent_on_the_pbx_transfers_the_caller_by_refer_after_consulting_the_target() {
    let dir = out_dir("trunk_agent_refer");
    let (agent_port, desk_port) = (common::free_port(), common::free_port());
    let pbx_agent = format!(
        "\n[[acd.agents]]\nid = \"pbx1\"\nname = \"Desk on the PBX\"\n\
         uri = \"sip:pbx1@127.0.0.1:{agent_port}\"\nskills = {{ support = 1 }}\n"
    );
    // A desk that sends no audio: its media timeout ends the call once transferred.
    let engine =
        common::agents::engine_with(&dir, &[], &pbx_agent, &[("media", "media_timeout_s = 3\n")]);
    common::agents::login(&engine, "pbx1");
    assert!(common::agents::wait_agent_state(
        &engine,
        "pbx1",
        "available"
    ));
    // An attended transfer: the agent's phone consulted the desk first, and our call to
    // the desk replaces that consultation (RFC 3891).
    let target = format!(
        "sip:desk@127.0.0.1:{desk_port}?Replaces=consult%40pbx%3Bto-tag%3Ddesk1%3Bfrom-tag%3Dpbx1"
    );
    let agent = common::Sipp::start_on(
        &dir,
        agent_port,
        engine.addr(),
        "agent_refers.xml",
        &[("TARGET", &target)],
        &["-m", "1"],
    );
    let desk = common::Sipp::start_on(
        &dir,
        desk_port,
        engine.addr(),
        "answer.xml",
        &[],
        &["-m", "1"],
    );
    let caller =
        common::tone_callers(&engine, "100", 20.0, &["-m", "1"]).finish(Duration::from_secs(60));
    assert_ok(&agent.finish(Duration::from_secs(30)));
    let desk = desk.finish(Duration::from_secs(30));
    assert_ok(&desk);
    assert!(
        desk.logs
            .lines()
            .any(|l| l.replace(' ', "") == "replaces=consult@pbx;to-tag=desk1;from-tag=pbx1"),
        "the desk's INVITE replaces the consultation: {}",
        desk.logs
    );
    assert_ok(&caller);
    assert!(
        engine.wait_log("the agent transfers the caller", Duration::from_secs(5)),
        "{}",
        engine.log()
    );
    assert!(
        engine.wait_log("outcome=transferred", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
}

#[test]
fn an_agents_transfer_is_passed_on_to_the_pbx_by_refer_when_configured() {
    let dir = out_dir("trunk_agent_refer_passed_on");
    let agent_port = common::free_port();
    let pbx_agent = format!(
        "\n[[acd.agents]]\nid = \"pbx1\"\nname = \"Desk on the PBX\"\n\
         uri = \"sip:pbx1@127.0.0.1:{agent_port}\"\nskills = {{ support = 1 }}\n"
    );
    let engine = common::agents::engine_with(
        &dir,
        &[],
        &pbx_agent,
        &[("sip", "agent_refer = \"refer\"\n")],
    );
    common::agents::login(&engine, "pbx1");
    assert!(common::agents::wait_agent_state(
        &engine,
        "pbx1",
        "available"
    ));
    // Nobody listens there: the PBX, not the engine, calls the target.
    let target = "sip:desk@127.0.0.1:9";
    let agent = common::Sipp::start_on(
        &dir,
        agent_port,
        engine.addr(),
        "agent_refers.xml",
        &[("TARGET", target)],
        &["-m", "1"],
    );
    // The caller's PBX takes the engine's REFER to the agent's target, reports it ringing
    // and connected, and is left; the agent hears the same NOTIFYs and is left too.
    let caller = sipp(
        &engine,
        "refer_accepted.xml",
        &[("CALLED", "100"), ("TARGET", "sip:desk@127\\.0\\.0\\.1:9>")],
        &["-m", "1"],
    );
    assert_ok(&caller);
    assert_ok(&agent.finish(Duration::from_secs(30)));
    assert!(
        engine.wait_log("outcome=transferred", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    let log = engine.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("calling") && l.contains("desk@")),
        "the engine placed no call of its own to the target:\n{log}"
    );
}

#[test]
fn a_pbx_that_transfers_its_call_by_refer_leaves_the_target_in_the_callers_place() {
    let dir = out_dir("trunk_refers");
    // A menu only the target can answer: the PBX's caller presses nothing.
    let steps = "
  start:
    menu: hello
    timeout: 20s
    tries: 1
    choices:
      \"1\": heard
    no_input: unheard
    no_match: unheard
  heard:
    hangup: target_pressed_1
  unheard:
    hangup: no_key
";
    let engine = Engine::start_steps(&dir, 0.5, steps, &[]);
    let desk_port = common::free_port();
    let target = format!("sip:desk@127.0.0.1:{desk_port}");
    let desk = common::Sipp::start_on(
        &dir,
        desk_port,
        engine.addr(),
        "target_presses_1.xml",
        &[],
        &["-m", "2"],
    );
    for transport in ["u1", "t1"] {
        let run = sipp(
            &engine,
            "trunk_refers.xml",
            &[("TARGET", &target)],
            &["-m", "1", "-t", transport],
        );
        assert_ok(&run);
    }
    assert_ok(&desk.finish(Duration::from_secs(30)));
    // The key came from the target, on the media the PBX's caller had: the call's flow
    // went on with the target in the caller's place.
    assert!(
        engine.wait_log_count("outcome=target_pressed_1", 2, Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    let referred = |events: &[serde_json::Value]| {
        let of = |e: &&serde_json::Value| {
            e["event"] == "call_referred" && e["target"] == target.as_str()
        };
        events.iter().filter(of).count()
    };
    let events = engine.wait_events(Duration::from_secs(10), |e| referred(e) == 2);
    assert_eq!(referred(&events), 2, "{events:?}");
}

/// The engine's `[sip]` lines for a TLS listener on `port` with `certs`, trusting `ca`.
fn tls_section(port: u16, certs: &Certs, ca: &std::path::Path) -> String {
    format!(
        "tls = \"127.0.0.1:{port}\"\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n\
         tls_ca = \"{}\"\n",
        certs.cert.display(),
        certs.key.display(),
        ca.display()
    )
}

/// The carrier's registrar by name over TLS: its certificate must name `localhost`.
fn tls_register_section(kamailio: &Kamailio) -> String {
    format!(
        "registrar = \"sip:localhost:{};transport=tls\"\nuser = \"12345\"\n\
         password = \"secret\"\nexpires_s = 60\n",
        kamailio.tls_port()
    )
}

#[test]
fn over_tls_the_engine_registers_takes_calls_and_transfers_back_through_the_carrier() {
    let dir = out_dir("trunk_tls");
    let certs = Certs::make(&dir);
    let desk = common::free_port();
    let kamailio = Kamailio::start_tls(&dir, "MD5", &carrier_route(desk), &certs);
    let engine = Engine::start_steps(
        &dir,
        0.5,
        CARRIER_STEPS,
        &[
            ("sip", &tls_section(common::free_port(), &certs, &certs.ca)),
            ("trunks", "allow = [\"10.0.0.0/8\"]\n"),
            ("trunks.named.carrier", "allow = []\n"),
            (
                "trunks.named.carrier.register",
                &tls_register_section(&kamailio),
            ),
        ],
    );
    // The binding names our TLS listener, so the carrier's INVITEs come over TLS (Kamailio
    // connects to the engine and checks its certificate against the same authority).
    assert!(
        kamailio.wait_log("REGISTER from sip:12345@localhost: authenticated"),
        "{}\n{}",
        kamailio.log(),
        engine.log()
    );
    assert!(
        kamailio.log().contains(";transport=tls"),
        "{}",
        kamailio.log()
    );
    call_through_carrier(&dir, &kamailio, &engine, desk);
    assert!(
        kamailio
            .log()
            .contains("INVITE for 12345 to sip:12345@127.0.0.1"),
        "{}",
        kamailio.log()
    );
}

#[test]
fn registrars_whose_certificates_do_not_prove_who_they_are_get_nothing() {
    let dir = out_dir("trunk_tls_untrusted");
    let folder = |name: &str| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("a folder");
        d
    };
    // One registrar's certificate is signed by a lookalike of the authority the engine
    // trusts (same name, another key); the other's by that authority, for another host.
    let (lookalike_dir, misnamed_dir) = (folder("lookalike"), folder("misnamed"));
    let lookalike = Certs::make(&lookalike_dir);
    let misnamed = Certs::make_for(&misnamed_dir, "DNS:carrier.example");
    let k1 = Kamailio::start_tls(&lookalike_dir, "MD5", "", &lookalike);
    let k2 = Kamailio::start_tls(&misnamed_dir, "MD5", "", &misnamed);
    let engine = Engine::start(
        &dir,
        0.5,
        &[
            (
                "sip",
                &tls_section(common::free_port(), &misnamed, &misnamed.ca),
            ),
            ("trunks.named.one", "allow = []\n"),
            ("trunks.named.one.register", &tls_register_section(&k1)),
            ("trunks.named.two", "allow = []\n"),
            ("trunks.named.two.register", &tls_register_section(&k2)),
        ],
    );
    assert!(
        engine.wait_log_count("TLS handshake failed", 2, Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    let log = engine.log();
    assert!(
        log.contains("invalid peer certificate: BadSignature"),
        "{log}"
    );
    assert!(
        log.contains("certificate not valid for name \"localhost\""),
        "{log}"
    );
    assert!(
        engine.wait_log_count("no answer from the registrar", 2, Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    for k in [&k1, &k2] {
        assert!(
            !k.log().contains("REGISTER from"),
            "no REGISTER crossed a refused handshake:\n{}",
            k.log()
        );
    }
}

#[test]
fn a_trunk_requiring_srtp_is_answered_encrypted_and_heard_both_ways() {
    let dir = out_dir("trunk_srtp");
    let recordings = dir.join("engine-recordings");
    let engine = Engine::start(
        &dir,
        3.0,
        &[
            (
                "trunks.named.pbx",
                "allow = [\"127.0.0.0/8\"]\nmedia_encryption = \"sdes\"\n",
            ),
            (
                "recording",
                &format!("enabled = true\ndir = \"{}\"\n", recordings.display()),
            ),
        ],
    );
    let voice = dir.join("caller.wav");
    tone(&voice, 6.0, 440, false);
    // baresip (libsrtp) as the PBX: SRTP only, AES_CM_128_HMAC_SHA1 keyed by SDES.
    let pbx = Baresip::start(
        &dir,
        PhoneOptions {
            play: Some(voice),
            media_encryption: Some("srtp-mand"),
            ..PhoneOptions::unregistered("pbx")
        },
    );
    pbx.dial(&format!("sip:100@{}", engine.addr()));
    assert!(
        pbx.wait_calls_ended(1, Duration::from_secs(30)),
        "{}",
        pbx.log()
    );
    assert!(
        engine.wait_log("outcome=prompt_played", Duration::from_secs(10)),
        "{}",
        engine.log()
    );
    // The PBX decrypted the prompt (it drops what fails libsrtp's check) ...
    let heard = pbx.wait_recordings(1, Duration::from_secs(10))[0]
        .heard
        .clone()
        .expect("the PBX's recording of the prompt");
    let (samples, _) = read_wav(&heard);
    assert!(
        rms(&samples) > 1000.0,
        "the PBX heard RMS {}",
        rms(&samples)
    );
    // ... and the engine decrypted the PBX's audio.
    let ours = std::fs::read_dir(&recordings)
        .expect("the engine's recordings")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "wav"))
        .expect("a recording of the caller");
    assert!(common::wait_closed(&ours, Duration::from_secs(10)));
    let (samples, _) = read_wav(&ours);
    assert!(
        rms(&samples) > 1000.0,
        "the engine heard RMS {}",
        rms(&samples)
    );

    // The same trunk offering plain RTP is refused.
    let plain = Baresip::start(&dir, PhoneOptions::unregistered("plain"));
    plain.dial(&format!("sip:100@{}", engine.addr()));
    assert!(
        plain.wait_calls_ended(1, Duration::from_secs(10)),
        "{}",
        plain.log()
    );
    assert_eq!(plain.calls_answered(), 0);
    let log = plain.log();
    assert!(
        log.contains("488 Not Acceptable Here") && log.contains("this trunk requires SRTP"),
        "{log}"
    );
}

#[test]
fn linphone_with_mandatory_srtp_and_its_own_session_timer_is_answered_encrypted_and_kept_up() {
    let dir = out_dir("linphone_srtp_timer");
    // 75 s of prompt, then the engine hangs up. A 90 s session that nobody refreshes
    // expires after 60 s: only Linphone's refresh, answered, keeps the call to its end.
    let engine = Engine::start(&dir, 75.0, &[]);
    let voice = dir.join("voice.wav");
    tone(&voice, 80.0, 440, false);
    let target = format!("sip:12345@{}", engine.addr());
    let phone = Linphone::call_srtp_with_timer(&dir, &target, 90, &voice);
    assert!(
        engine.wait_log("outcome=prompt_played", Duration::from_secs(120)),
        "{}",
        engine.log()
    );
    assert!(
        !engine.log().contains("session_expired"),
        "{}",
        engine.log()
    );
    let log = phone.log();
    let answer = log
        .split("SIP/2.0 200 OK")
        .skip(1)
        .find(|r| r.contains("m=audio"))
        .unwrap_or_else(|| panic!("no 200 with SDP in Linphone's log"));
    assert!(answer.contains("RTP/SAVP"), "{answer}");
    assert!(
        answer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{answer}"
    );
    assert!(
        answer.contains("Session-Expires: 90;refresher=uac"),
        "Linphone refreshes: {answer}"
    );
    let requests = log.matches("\nUPDATE sip:").count() + log.matches("\nINVITE sip:").count();
    assert!(requests >= 2, "Linphone refreshed the session");
    // 75 s at 50 packets a second each way. Linphone's SRTP reached the engine and was
    // authenticated (a wrong key would leave it all ignored; a stray non-audio packet
    // or two is); the engine's reached Linphone, by Linphone's own count.
    let received = engine
        .metric("hotline_rtp_packets_received_total")
        .unwrap_or(0.0);
    let ignored = engine
        .metric("hotline_rtp_packets_ignored_total")
        .unwrap_or(0.0);
    assert!(received > 3000.0 && ignored < 10.0, "{received} {ignored}");
    let heard: u64 = log
        .lines()
        .find_map(|l| {
            let rest = l.split("ortp-message-received ").nth(1)?;
            rest.trim().strip_suffix("packets")?.trim().parse().ok()
        })
        .unwrap_or(0);
    assert!(heard > 3000, "Linphone received {heard} packets");
}
