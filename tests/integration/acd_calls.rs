//! Agent seats and queues with real peers: baresip phones register with digest
//! authentication and answer as agents, SIPp places the calls. Every caller reaches an
//! agent with no agent double-booked, the agent hears the caller, a wrong password never
//! registers, an agent who does not answer is skipped, a caller who hangs up while queued
//! is counted as abandoned, a Cantonese caller waits for a Cantonese-speaking agent
//! until the queue's relax time, an agent phone that goes dead ends both legs, and an
//! agent on the existing PBX is reached at its SIP URI.

use crate::common;

use std::time::{Duration, Instant};

use common::agents::{
    Agent, BARESIP_DIGEST, agent_state, engine, engine_with, phone, silent_phone, wait_agent_state,
};
use common::baresip::{Baresip, PhoneOptions, Registration};
use common::{Act, Engine, Sipp, actions, out_dir, read_wav, rms, tone_callers};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn kind(e: &Value) -> &str {
    e["event"].as_str().unwrap_or_default()
}

#[test]
fn ten_callers_three_agents_every_caller_answered_and_no_agent_double_booked() {
    let dir = out_dir("acd_ten_callers");
    let agents = [
        Agent {
            id: "a1",
            languages: "[\"cmn\"]",
        },
        Agent {
            id: "a2",
            languages: "[\"cmn\"]",
        },
        Agent {
            id: "a3",
            languages: "[\"cmn\"]",
        },
    ];
    let engine = engine(&dir, &agents, "");
    let phones: Vec<Baresip> = agents
        .iter()
        .map(|a| phone(&dir, &engine, a.id, Duration::from_secs(2)))
        .collect();
    for p in &phones {
        assert!(
            wait_agent_state(&engine, &p.user, "available"),
            "{} never became available",
            p.user
        );
    }
    // Each call waits for the engine's BYE, which follows the agent's hang-up.
    let run = tone_callers(&engine, "100", 40.0, &["-m", "10", "-r", "5", "-l", "10"])
        .finish(Duration::from_secs(120));
    assert!(run.success, "{}\n{}", run.output, run.errors);

    let answered: usize = phones.iter().map(Baresip::calls_answered).sum();
    assert_eq!(answered, 10, "every caller reached an agent");
    for p in &phones {
        assert!(
            p.max_concurrent_calls() <= 1,
            "{} had two calls at once",
            p.user
        );
        assert!(
            p.calls_answered() >= 1,
            "{} took no call: the calls were spread",
            p.user
        );
        let recordings = p.wait_recordings(p.calls_answered(), Duration::from_secs(10));
        let heard = recordings[0]
            .heard
            .as_ref()
            .expect("the agent's recording of the caller");
        let (samples, _) = read_wav(heard);
        assert!(
            rms(&samples) > 5000.0,
            "{} heard silence (RMS {})",
            p.user,
            rms(&samples)
        );
        let invite = &p.invites()[0];
        assert!(invite.contains("X-Hotline-Queue: support"), "{invite}");
        assert!(invite.contains("X-Hotline-Language: cmn"), "{invite}");
        assert!(invite.contains("X-Hotline-Caller: 13800138000"), "{invite}");
    }
    let count = |events: &[Value], k: &str| events.iter().filter(|e| kind(e) == k).count();
    let events = engine.wait_events(Duration::from_secs(20), |all| {
        count(all, "connected") >= 10 && count(all, "call_ended") >= 10
    });
    assert_eq!(count(&events, "connected"), 10, "{events:?}");
    let ended_by_agent = events
        .iter()
        .filter(|e| kind(e) == "call_ended" && e["hung_up_by"] == "agent")
        .count();
    assert_eq!(ended_by_agent, 10);
}

#[test]
fn a_wrong_password_never_registers() {
    let dir = out_dir("acd_wrong_password");
    let engine = engine(
        &dir,
        &[Agent {
            id: "a1",
            languages: "[\"cmn\"]",
        }],
        "",
    );
    let p = Baresip::start(
        &dir,
        PhoneOptions::agent("a1", "not-the-password", engine.addr()),
    );
    assert!(
        matches!(
            p.wait_registration(Duration::from_secs(20)),
            Registration::Failed(_)
        ),
        "{}",
        p.log()
    );
    assert_eq!(p.count("REGISTER_OK"), 0);
    assert!(matches!(
        agent_state(&engine, "a1").as_deref(),
        None | Some("logged_out")
    ));
    assert!(
        engine
            .metric("hotline_registrar_answers_total{verdict=\"wrong_credentials\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
    let stranger = Baresip::start(&dir, PhoneOptions::agent("nobody", "x", engine.addr()));
    assert!(matches!(
        stranger.wait_registration(Duration::from_secs(20)),
        Registration::Failed(_)
    ));
}

#[test]
fn an_agent_who_does_not_answer_is_skipped_and_the_caller_reaches_another() {
    let dir = out_dir("acd_no_answer");
    let agents = [
        Agent {
            id: "deaf",
            languages: "[\"cmn\"]",
        },
        Agent {
            id: "good",
            languages: "[\"cmn\"]",
        },
    ];
    let engine = engine(&dir, &agents, "");
    // The silent agent logs in first, so longest-idle offers it the call first.
    let deaf = silent_phone(&dir, &engine, "deaf");
    std::thread::sleep(Duration::from_millis(1100));
    let good = phone(&dir, &engine, "good", Duration::from_secs(2));
    assert!(wait_agent_state(&engine, "good", "available"));

    let run = tone_callers(&engine, "100", 30.0, &["-m", "1"]).finish(WAIT);
    assert!(run.success, "{}\n{}", run.output, run.errors);
    assert_eq!(deaf.calls_received(), 1, "the first agent rang");
    assert_eq!(deaf.calls_answered(), 0);
    assert_eq!(
        good.calls_answered(),
        1,
        "the caller still reached an agent"
    );
    let events = engine.events();
    assert!(
        events
            .iter()
            .any(|e| kind(e) == "ring_no_answer" && e["agent"] == "deaf"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| kind(e) == "connected" && e["agent"] == "good"),
        "{events:?}"
    );
}

#[test]
fn a_caller_who_hangs_up_while_queued_or_ringing_is_counted_as_abandoned() {
    let dir = out_dir("acd_abandon");
    let engine = engine(
        &dir,
        &[Agent {
            id: "slow",
            languages: "[\"cmn\"]",
        }],
        "",
    );
    // A caller who hangs up after 2 s.
    let impatient = || {
        Sipp::start(
            &engine.dir,
            engine.addr(),
            "ivr_caller.xml",
            &[
                ("CALLED", "100"),
                ("ACTIONS", &actions(&[Act::Pause(2000)])),
            ],
            &["-m", "1"],
        )
        .finish(WAIT)
    };
    // Nobody logged in: the caller waits, then hangs up.
    let run = impatient();
    assert!(run.success, "{}\n{}", run.output, run.errors);
    let abandoned = engine.wait_event(Duration::from_secs(5), |e| kind(e) == "abandoned");
    let abandoned = abandoned.unwrap_or_else(|| panic!("{:?}", engine.events()));
    assert_eq!(abandoned["queue"], "support");
    assert!(
        engine
            .log()
            .contains("announcing the queue position position=1"),
        "the waiting caller heard its position: {}",
        engine.log()
    );
    assert!(
        abandoned["wait_ms"].as_u64().unwrap_or(0) >= 1500,
        "{abandoned}"
    );

    // An agent who lets it ring: the caller hangs up while the phone rings; the phone
    // gets a CANCEL.
    let slow = silent_phone(&dir, &engine, "slow");
    let run = impatient();
    assert!(run.success, "{}\n{}", run.output, run.errors);
    assert!(
        slow.wait_calls_ended(1, Duration::from_secs(10)),
        "the ringing phone was cancelled"
    );
    assert_eq!(slow.calls_answered(), 0);
    let abandoned = |all: &[Value]| all.iter().filter(|e| kind(e) == "abandoned").count();
    let events = engine.wait_events(Duration::from_secs(20), |all| abandoned(all) >= 2);
    assert_eq!(abandoned(&events), 2, "{events:?}");
}

#[test]
fn a_cantonese_caller_waits_for_a_cantonese_agent_until_the_relax_time() {
    let dir = out_dir("acd_language");
    let agents = [
        Agent {
            id: "putonghua",
            languages: "[\"cmn\"]",
        },
        Agent {
            id: "gwongdung",
            languages: "[\"yue\", \"cmn\"]",
        },
    ];
    // Long enough for the Cantonese agent's phone to start and register within it.
    let engine = engine(&dir, &agents, "language_relax_s = 15\n");
    let mandarin = phone(&dir, &engine, "putonghua", Duration::from_secs(1));
    assert!(wait_agent_state(&engine, "putonghua", "available"));
    let call = |engine: &Engine| tone_callers(engine, "200", 40.0, &["-m", "1"]);

    // A Cantonese caller with only a Mandarin agent free: nothing happens until the
    // Cantonese agent comes, 2 s later; then it is that agent who answers.
    let first = call(&engine);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        mandarin.calls_received(),
        0,
        "offered to an agent who does not speak Cantonese"
    );
    let cantonese = phone(&dir, &engine, "gwongdung", Duration::from_secs(1));
    assert!(first.finish(WAIT).success);
    assert_eq!(cantonese.calls_answered(), 1);
    // While it waited it heard its place in Cantonese (espeak-ng's yue voice).
    let announced = engine
        .log()
        .lines()
        .find(|l| l.contains("announcing the queue position position=1 language=yue"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{}", engine.log()));
    let secs: f32 = announced
        .split("secs=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(secs > 1.0, "a spoken announcement: {announced}");
    assert_eq!(mandarin.calls_received(), 0);
    cantonese.unregister();
    assert!(wait_agent_state(&engine, "gwongdung", "logged_out"));

    // With no Cantonese agent at all, the requirement relaxes after 15 s.
    let started = Instant::now();
    assert!(call(&engine).finish(WAIT).success);
    assert_eq!(
        mandarin.calls_answered(),
        1,
        "after the relax time any agent may answer"
    );
    let connected = engine
        .events()
        .into_iter()
        .rfind(|e| kind(e) == "connected" && e["agent"] == "putonghua")
        .expect("connected to the Mandarin agent");
    let wait = connected["wait_ms"].as_u64().unwrap_or(0);
    assert!(
        wait >= 15_000 && started.elapsed() >= Duration::from_secs(15),
        "waited {wait} ms"
    );
}

#[test]
fn an_agent_phone_that_goes_dead_ends_both_legs_on_the_media_timeout() {
    let dir = out_dir("acd_agent_media_timeout");
    let engine = engine_with(
        &dir,
        &[Agent {
            id: "gone",
            languages: "[\"cmn\"]",
        }],
        "",
        &[BARESIP_DIGEST, ("media", "media_timeout_s = 2\n")],
    );
    let agent = phone(&dir, &engine, "gone", Duration::from_secs(60));
    assert!(wait_agent_state(&engine, "gone", "available"));
    let caller = tone_callers(&engine, "100", 40.0, &["-m", "1"]);
    assert!(agent.wait_calls_answered(1, Duration::from_secs(20)));
    // Both sides send audio: the call outlives the media timeout while they do.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(agent_state(&engine, "gone").as_deref(), Some("on_call"));

    agent.freeze();
    let frozen = Instant::now();
    let run = caller.finish(WAIT);
    assert!(
        run.success,
        "the caller got a BYE: {}\n{}",
        run.output, run.errors
    );
    let ended = engine
        .wait_event(Duration::from_secs(10), |e| kind(e) == "call_ended")
        .unwrap_or_else(|| panic!("{:?}", engine.events()));
    assert_eq!(ended["agent"], "gone");
    assert_eq!(ended["hung_up_by"], "system", "{ended}");
    assert!(ended["talk_ms"].as_u64().unwrap_or(0) >= 5000, "{ended}");
    assert!(
        frozen.elapsed() < Duration::from_secs(15),
        "ended by the 2 s timeout, not by the caller's 40 s clip"
    );
    assert!(
        engine.wait_log_count("agent media timeout", 1, Duration::from_secs(5)),
        "{}",
        engine.log()
    );
}

#[test]
fn an_agent_on_the_pbx_is_reached_at_its_uri() {
    let dir = out_dir("acd_pbx_agent");
    // A desk phone that never registers here: the engine calls it through the trunk.
    let desk = Baresip::start(
        &dir,
        PhoneOptions {
            call_limit: Duration::from_secs(3),
            ..PhoneOptions::unregistered("desk")
        },
    );
    let pbx_agent = format!(
        "\n[[acd.agents]]\nid = \"pbx1\"\nname = \"Desk on the PBX\"\nuri = \"{}\"\n\
         skills = {{ support = 1 }}\n",
        desk.uri()
    );
    let engine = engine(&dir, &[], &pbx_agent);
    common::agents::login(&engine, "pbx1");
    assert!(wait_agent_state(&engine, "pbx1", "available"));

    let run = tone_callers(&engine, "100", 20.0, &["-m", "1"]).finish(WAIT);
    assert!(run.success, "{}\n{}", run.output, run.errors);
    assert_eq!(desk.calls_answered(), 1, "{}", desk.log());
    let invite = &desk.invites()[0];
    assert!(invite.contains("X-Hotline-Queue: support"), "{invite}");
    let recordings = desk.wait_recordings(1, Duration::from_secs(10));
    let heard = recordings[0].heard.as_ref().expect("the desk's recording");
    let (samples, _) = read_wav(heard);
    assert!(rms(&samples) > 5000.0, "heard RMS {}", rms(&samples));
    let ended = engine
        .wait_event(Duration::from_secs(10), |e| kind(e) == "call_ended")
        .unwrap_or_else(|| panic!("{:?}", engine.events()));
    assert_eq!(ended["agent"], "pbx1");
    assert_eq!(ended["hung_up_by"], "agent");
}
