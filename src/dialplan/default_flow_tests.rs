//! The shipped 12345 flow (dialplans/12345.yaml), walked call by call: every intent and
//! every menu key reaches its queue, speech failures and missing recognizers fall back to
//! the menu, and out-of-hours callers hear the message and are hung up on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::test_harness::{Call, TUESDAY_10AM, calendar, load_with, played, secs};
use super::{
    Action, Dialplan, DialplanSet, Enqueue, QueueInfo, Speech, SpeechResult, Unavailable,
    ValidationContext,
};
use crate::events::{EventKind, FallbackReason};

const YAML: &str = include_str!("../../dialplans/12345.yaml");

const INTENTS: [&str; 11] = [
    "social_insurance",
    "housing_fund",
    "noise_environment",
    "transport",
    "utilities",
    "labor",
    "education",
    "property",
    "city_management",
    "market_consumer",
    "general",
];

fn hotline() -> Arc<Dialplan> {
    load_with("dialplans/12345.yaml", YAML, &calendar(&[]))
}

fn enqueued(c: &Call) -> Option<Enqueue> {
    c.log.iter().find_map(|a| match a {
        Action::Enqueue(e) => Some(e.clone()),
        _ => None,
    })
}

fn events(c: &Call) -> Vec<EventKind> {
    c.log
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn context(queues: &[&str]) -> ValidationContext {
    ValidationContext {
        queues: Some(
            queues
                .iter()
                .map(|q| (q.to_string(), QueueInfo { agents: 2 }))
                .collect::<BTreeMap<_, _>>(),
        ),
        intents: Some(
            INTENTS
                .iter()
                .map(|i| i.to_string())
                .collect::<BTreeSet<_>>(),
        ),
        grammars: Some(BTreeSet::from(["12345".to_owned()])),
        trunks: None,
    }
}

#[test]
fn validates_against_the_grammar_intents_and_queues() {
    let sources = [(PathBuf::from("dialplans/12345.yaml"), YAML.to_owned())];
    let set = DialplanSet::from_sources(&sources, &calendar(&[]), &context(&INTENTS))
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert!(set.select("12345", Some("any-trunk")).is_some());
    assert!(set.select("999", None).is_some(), "the default flow");
}

#[test]
fn a_queue_named_by_intent_needs_a_queue_for_every_intent() {
    let sources = [(PathBuf::from("dialplans/12345.yaml"), YAML.to_owned())];
    let without_labor: Vec<&str> = INTENTS.into_iter().filter(|q| *q != "labor").collect();
    let Err(diags) = DialplanSet::from_sources(&sources, &calendar(&[]), &context(&without_labor))
    else {
        panic!("a missing queue passed");
    };
    let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
    let line = YAML
        .lines()
        .position(|l| l.contains("queue: \"{intent}\""))
        .expect("the shipped flow routes by intent")
        + 1;
    // The step by intent and the menu's own labor step both name it.
    assert!(
        text.iter()
            .any(|d| d.starts_with(&format!("dialplans/12345.yaml:{line}:"))
                && d.contains("`{intent}` needs a queue with agents for every intent")
                && d.contains("unknown queue `labor`")),
        "{text:?}"
    );
}

#[test]
fn a_call_without_an_intent_at_a_queue_by_intent_overflows() {
    let yaml = "languages: [cmn]\nprompts:\n  hi:\n    cmn: 你好\nsteps:\n  start:\n    queue: \"{intent}\"\n    overflow: general\n  general:\n    queue: general\n";
    let mut c = Call::start(load_with("t.yaml", yaml, &calendar(&[])));
    let q = enqueued(&c).expect("queued");
    assert_eq!((q.queue.as_str(), q.intent), ("general", None));
    c.take();
}

#[test]
fn greets_in_both_languages_first() {
    let mut c = Call::start(hotline());
    assert_eq!(played(&c.take()), ["welcome/cmn", "welcome/yue"]);
}

#[test]
fn every_intent_said_reaches_its_queue() {
    for intent in INTENTS {
        let mut c = Call::start(hotline());
        c.key('1');
        c.say("我想问一下", Some(intent), 0.92);
        // Queued at once; "connecting" plays while the caller already holds a place.
        let q = enqueued(&c).unwrap_or_else(|| panic!("{intent}: not queued"));
        assert_eq!(q.queue, intent);
        let heard: Vec<String> = q
            .prompts
            .iter()
            .map(|p| format!("{}/{}", p.prompt, p.language))
            .collect();
        assert_eq!(heard, ["connecting/cmn"]);
        assert_eq!(q.intent.as_deref(), Some(intent));
        assert_eq!(q.language, "cmn");
        assert!(events(&c).iter().any(|e| matches!(
            e,
            EventKind::IntentRecognised { intent: i, .. } if i == intent
        )));
    }
}

#[test]
fn every_menu_key_reaches_its_queue() {
    let keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0'];
    for (key, queue) in keys.into_iter().zip(INTENTS) {
        let mut c = Call::start(hotline());
        c.key('1');
        c.key('#');
        assert_eq!(c.step(), "main_menu");
        c.key(key);
        let q = enqueued(&c).unwrap_or_else(|| panic!("{key}: not queued"));
        assert_eq!(
            (q.queue.as_str(), q.intent.as_deref()),
            (queue, Some(queue))
        );
    }
}

#[test]
fn cantonese_without_a_recognizer_gets_the_cantonese_menu() {
    let mut c = Call::start(hotline());
    c.key('2');
    c.take();
    c.unavailable(Unavailable::NoRecognizer);
    let actions = c.take();
    assert_eq!(played(&actions), ["menu_main/yue"]);
    assert_eq!(
        events(&c),
        [EventKind::DtmfFallback {
            call_id: "call-1".into(),
            reason: FallbackReason::NoRecognizer
        }]
    );
    c.key('6');
    let q = enqueued(&c).expect("queued");
    assert_eq!((q.queue.as_str(), q.language.as_str()), ("labor", "yue"));
}

#[test]
fn a_silent_caller_hears_the_no_input_prompt_then_the_menu() {
    let mut c = Call::start(hotline());
    // Two silent language prompts: Mandarin by default.
    for _ in 0..2 {
        c.prompt_done();
        c.wait(secs(4));
    }
    assert_eq!(c.interp.vars().language, "cmn");
    assert_eq!(c.step(), "ask_need");
    c.take();
    c.prompt_done();
    c.wait(secs(6));
    assert_eq!(played(&c.take()), ["no_input/cmn", "ask_need/cmn"]);
    c.prompt_done();
    c.wait(secs(6));
    assert_eq!(played(&c.take()), ["no_input/cmn"]);
    c.prompt_done();
    assert_eq!(played(&c.take()), ["menu_main/cmn"]);
    assert!(events(&c).contains(&EventKind::DtmfFallback {
        call_id: "call-1".into(),
        reason: FallbackReason::Failures
    }));
    // Still silent after the first page: the second page, then a person takes the call
    // rather than a hang-up.
    c.prompt_done();
    c.wait(secs(5));
    assert_eq!(played(&c.take()), ["menu_more/cmn"]);
    for _ in 0..2 {
        c.prompt_done();
        c.wait(secs(6));
    }
    c.prompt_done();
    assert_eq!(enqueued(&c).expect("queued").queue, "general");
}

#[test]
fn every_key_works_on_both_pages_of_the_menu() {
    for (page, key, queue) in [
        (1, '8', "property"),
        (2, '2', "housing_fund"),
        (2, '*', "market_consumer"),
    ] {
        let mut c = Call::start(hotline());
        c.key('1');
        c.take();
        c.unavailable(Unavailable::NoRecognizer);
        assert_eq!(c.step(), "main_menu");
        if page == 2 {
            c.key('#');
            assert_eq!(c.step(), "more_menu");
        }
        c.key(key);
        assert_eq!(
            enqueued(&c).expect("queued").queue,
            queue,
            "page {page} key {key}"
        );
    }
}

#[test]
fn speech_out_of_capacity_is_said_then_the_keys_are_offered() {
    let mut c = Call::start(hotline());
    c.key('1');
    c.take();
    c.unavailable(Unavailable::PoolBusy);
    assert_eq!(c.step(), "speech_busy");
    assert_eq!(played(&c.take()), ["speech_busy/cmn"]);
    c.prompt_done();
    assert_eq!(c.step(), "main_menu");
}

#[test]
fn low_confidence_is_confirmed_with_the_intent_named() {
    let mut c = Call::start(hotline());
    c.key('1');
    c.take();
    c.say("公积金", Some("housing_fund"), 0.4);
    assert_eq!(
        played(&c.take()),
        [
            "confirm_prefix/cmn",
            "intent_housing_fund/cmn",
            "confirm_suffix/cmn"
        ]
    );
    c.say("对", None, 0.0);
    assert_eq!(enqueued(&c).expect("queued").queue, "housing_fund");
}

#[test]
fn an_unclear_answer_between_two_services_is_one_question_away_from_its_queue() {
    let mut c = Call::start(hotline());
    c.key('1');
    c.take();
    c.speech(Speech::Final(SpeechResult {
        alternatives: vec![
            ("social_insurance".into(), 0.4),
            ("housing_fund".into(), 0.3),
        ],
        transcript: "单位交的那个钱".into(),
        intent: None,
        confidence: 0.0,
        language: None,
    }));
    assert_eq!(
        played(&c.take()),
        [
            "choice_prefix/cmn",
            "intent_social_insurance/cmn",
            "choice_or/cmn",
            "intent_housing_fund/cmn",
            "choice_suffix/cmn"
        ]
    );
    c.key('2');
    assert_eq!(enqueued(&c).expect("queued").queue, "housing_fund");
}

#[test]
fn two_misunderstandings_end_in_the_menu() {
    let mut c = Call::start(hotline());
    c.key('1');
    c.say("嗯", None, 0.0);
    c.say("公积金", Some("housing_fund"), 0.4);
    c.say("不对", None, 0.0);
    c.prompt_done();
    assert_eq!(c.step(), "main_menu");
}

#[test]
fn out_of_hours_plays_the_message_in_both_languages_and_hangs_up() {
    let closed_today = calendar(&["2025-06-03"]);
    let plan = load_with("dialplans/12345.yaml", YAML, &closed_today);
    let mut c = Call::start_at(plan, TUESDAY_10AM);
    assert_eq!(played(&c.take()), ["closed/cmn", "closed/yue"]);
    c.prompt_done();
    assert!(c.take().contains(&Action::Hangup {
        outcome: "out_of_hours".into()
    }));
    assert!(enqueued(&c).is_none());
}
