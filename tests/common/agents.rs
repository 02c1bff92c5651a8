//! An engine set up for agent tests: calls to 100 (Mandarin) and 200 (Cantonese) go
//! straight to queue `support`; agents register from baresip phones and log in on
//! registration. Shared by the ACD and supervisor tests.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::baresip::{Baresip, PhoneOptions, Registration};
use super::{ADMIN_TOKEN, Engine, http, tone, wait_until};

/// One agent of the test's ACD config.
pub struct Agent<'a> {
    pub id: &'a str,
    pub languages: &'a str,
}

/// An engine whose calls to 100 (Mandarin) and 200 (Cantonese) go straight to queue
/// `support`, served by `agents` (password `pw-<id>`, logged in when their phone registers).
/// `queue_extra` is appended to the queue's table, and may go on with tables of its own.
pub fn engine(dir: &Path, agents: &[Agent], queue_extra: &str) -> Engine {
    engine_with(dir, agents, queue_extra, &[BARESIP_DIGEST])
}

/// baresip 1.0 answers MD5 digest challenges only; the registrar offers SHA-256 first by
/// default (tests/registrar.rs covers it with linphone).
pub const BARESIP_DIGEST: (&str, &str) = ("registrar", "algorithms = [\"MD5\"]\n");

/// As `engine`, with the registrar's defaults and more config lines per section (as
/// `Engine::start_full` takes them).
pub fn engine_with(
    dir: &Path,
    agents: &[Agent],
    queue_extra: &str,
    sections: &[(&str, &str)],
) -> Engine {
    let plans = dir.join("plans");
    std::fs::create_dir_all(&plans).expect("plans folder");
    for (lang, called) in [("cmn", "100"), ("yue", "200")] {
        let plan = format!(
            "languages: [{lang}]\nmatch:\n  - called: \"{called}\"\nsteps:\n  q:\n    queue: support\n"
        );
        std::fs::write(plans.join(format!("{lang}.yaml")), plan).expect("write dialplan");
    }
    let mut tail = format!(
        "[[acd.queues]]\nname = \"support\"\nring_timeout_s = 6\nretry_s = 1\nwrap_up_s = 1\n\
{queue_extra}\n"
    );
    for a in agents {
        tail.push_str(&format!(
            "[[acd.agents]]\nid = \"{id}\"\nname = \"Agent {id}\"\npassword = \"pw-{id}\"\n\
languages = {langs}\nskills = {{ support = 1 }}\nauto_login = true\n\n",
            id = a.id,
            langs = a.languages,
        ));
    }
    let directory = format!("directory = \"{}\"\n", plans.display());
    let mut all = vec![("dialplan", directory.as_str())];
    all.extend_from_slice(sections);
    Engine::start_full(dir, &all, &tail)
}

/// A registered agent phone that answers after 200 ms, plays a 600 Hz tone and hangs up
/// `talk` after answering.
pub fn phone(dir: &Path, engine: &Engine, id: &str, talk: Duration) -> Baresip {
    let wav = dir.join("agent.wav");
    if !wav.exists() {
        tone(&wav, 1.0, 600, false);
    }
    let p = Baresip::start(
        dir,
        PhoneOptions {
            answer_after: Some(Duration::from_millis(200)),
            play: Some(wav),
            call_limit: talk,
            ..PhoneOptions::agent(id, &format!("pw-{id}"), engine.addr())
        },
    );
    assert_eq!(
        p.wait_registration(Duration::from_secs(10)),
        Registration::Registered,
        "{}",
        p.log()
    );
    p
}

/// Logs `agent` in through the API, as a supervisor would.
pub fn login(engine: &Engine, agent: &str) {
    let (status, body) = http(
        engine.api,
        "POST",
        &format!("/api/v1/agents/{agent}/login"),
        Some(ADMIN_TOKEN),
    );
    assert_eq!(status, 200, "{body}");
}

/// The agent's state as the API shows it (`None` before its first event).
pub fn agent_state(engine: &Engine, agent: &str) -> Option<String> {
    let (status, body) = http(
        engine.api,
        "GET",
        &format!("/api/v1/agents/{agent}"),
        Some(ADMIN_TOKEN),
    );
    let v: Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
    v["state"].as_str().map(str::to_owned)
}

pub fn wait_agent_state(engine: &Engine, agent: &str, state: &str) -> bool {
    wait_until(Duration::from_secs(20), || {
        agent_state(engine, agent).as_deref() == Some(state)
    })
}

/// A registered, logged-in agent phone that rings but never answers.
pub fn silent_phone(dir: &Path, engine: &Engine, id: &str) -> Baresip {
    let p = Baresip::start(
        dir,
        PhoneOptions {
            answer_after: None,
            ..PhoneOptions::agent(id, &format!("pw-{id}"), engine.addr())
        },
    );
    assert_eq!(
        p.wait_registration(Duration::from_secs(10)),
        Registration::Registered,
        "{}",
        p.log()
    );
    assert!(
        wait_agent_state(engine, id, "available"),
        "{id} never became available"
    );
    p
}
