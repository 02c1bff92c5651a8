//! The registrar's default digest algorithm, SHA-256 (RFC 7616), with an independent SIP
//! stack: linphonec registers an agent, which logs in; a wrong password is refused and
//! counted. (baresip, the agent phone of the other tests, knows MD5 only.)

use crate::common;

use std::time::Duration;

use common::agents::{Agent, agent_state, engine_with, wait_agent_state};
use common::linphone::Linphone;
use common::{out_dir, wait_until};

#[test]
fn a_phone_answering_with_sha256_registers_and_a_wrong_password_does_not() {
    let dir = out_dir("registrar_sha256");
    let agents = [
        Agent {
            id: "a1",
            languages: "[\"cmn\"]",
        },
        Agent {
            id: "a2",
            languages: "[\"cmn\"]",
        },
    ];
    let engine = engine_with(&dir, &agents, "", &[]);

    let phone = Linphone::register(&dir, "a1", "pw-a1", engine.addr());
    assert!(
        wait_agent_state(&engine, "a1", "available"),
        "{}\n{}",
        engine.log(),
        phone.log()
    );
    assert!(
        engine.wait_log("registered user=a1", Duration::from_secs(5)),
        "{}",
        engine.log()
    );
    let line = engine
        .log()
        .lines()
        .find(|l| l.contains("registered user=a1"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(line.contains("algorithm=SHA-256"), "{line}");
    assert!(
        phone.wait_log("algorithm=SHA-256", Duration::from_secs(10)),
        "the phone's own trace shows a SHA-256 answer"
    );

    let wrong = Linphone::register(&dir, "a2", "not-the-password", engine.addr());
    let refused = |engine: &common::Engine| {
        engine
            .metric("hotline_registrar_answers_total{verdict=\"wrong_credentials\"}")
            .unwrap_or(0.0)
            >= 1.0
    };
    assert!(
        wait_until(Duration::from_secs(20), || refused(&engine)),
        "{}\n{}",
        engine.log(),
        wrong.log()
    );
    assert!(matches!(
        agent_state(&engine, "a2").as_deref(),
        None | Some("logged_out")
    ));
}
