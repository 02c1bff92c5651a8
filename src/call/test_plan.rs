//! Dialplans for the call's tests: a plan that greets with `hello` and goes on with the
//! given steps, loaded as the engine loads one, with a short clip for every prompt but
//! `sorry` (so a prompt without audio can be tested too).

use std::path::PathBuf;
use std::sync::Arc;

use super::Flows;
use crate::dialplan::{Dialplan, DialplanSet, ValidationContext, test_harness};
use crate::media::clip::Clip;
use crate::prompts::PromptSet;

const PROMPTS: &[&str] = &["hello", "wait", "sorry"];

/// The flows for a plan that plays `hello`, then goes to the step `next` of `steps`.
pub fn flows(steps: &str) -> (Arc<Flows>, Arc<Dialplan>) {
    flows_greeting("", steps)
}

/// As `flows`, with more options for the `hello` step (lines such as `    early: true\n`).
pub fn flows_greeting(options: &str, steps: &str) -> (Arc<Flows>, Arc<Dialplan>) {
    let mut yaml = String::from("languages: [cmn]\ndefault: true\nprompts:\n");
    for p in PROMPTS {
        yaml.push_str(&format!("  {p}:\n    cmn: {p}\n"));
    }
    yaml.push_str("steps:\n  start:\n    play: hello\n    next: next\n");
    yaml.push_str(options);
    yaml.push_str(steps);
    let sources = [(PathBuf::from("test.yaml"), yaml)];
    let dialplans = match DialplanSet::from_sources(
        &sources,
        &test_harness::calendar(&[]),
        &ValidationContext::default(),
    ) {
        Ok(set) => set,
        Err(d) => panic!("the test plan does not load: {d:?}"),
    };
    let plan = Arc::clone(&dialplans.plans()[0]);
    let mut prompts = PromptSet::default();
    for p in PROMPTS.iter().filter(|p| **p != "sorry") {
        prompts.insert(&plan.name, p, "cmn", Clip::from_pcm(vec![0i16; 800].into()));
    }
    (Arc::new(Flows { dialplans, prompts }), plan)
}

/// A Tuesday, 10:00 in UTC+8: inside any office hours.
pub fn tuesday_10am() -> jiff::Timestamp {
    test_harness::TUESDAY_10AM.parse().expect("a timestamp")
}
