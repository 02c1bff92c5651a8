//! Walks every step type and every outcome of the interpreter with virtual time.

use super::test_harness::{Call, TUESDAY_10AM, calendar, load, load_with, played, secs};
use super::{
    Action, Enqueue, Input, ListenRequest, Speech, SpeechResult, TransferMethod, TransferTo,
    Unavailable,
};
use crate::events::{EventKind, FallbackReason};

/// Prompts every test plan can use, in both languages.
fn plan(steps: &str) -> String {
    let prompts = [
        "hello",
        "pick",
        "menu",
        "ask",
        "bad_key",
        "silence",
        "unclear",
        "sure",
        "intent_labor",
        "intent_housing_fund",
        "bye",
    ];
    let mut yaml = String::from("languages: [cmn, yue]\ndefault: true\nprompts:\n");
    for p in prompts {
        yaml.push_str(&format!(
            "  {p}:\n    cmn: {p} 普通话\n    yue: {p} 廣東話\n"
        ));
    }
    yaml.push_str("steps:\n");
    yaml.push_str(steps);
    // The two ends, where the plan goes to them (unreached steps do not load).
    for (name, outcome) in [("bye", "done"), ("other", "other")] {
        if steps.contains(&format!(": {name}\n")) || steps.contains(&format!(": {name}}}")) {
            yaml.push_str(&format!("  {name}:\n    hangup: {outcome}\n"));
        }
    }
    yaml
}

fn hangups(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Hangup { outcome } => Some(outcome.as_str()),
            _ => None,
        })
        .collect()
}

fn events(actions: &[Action]) -> Vec<&EventKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn listens(actions: &[Action]) -> Vec<&ListenRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Listen { request, .. } => Some(request),
            _ => None,
        })
        .collect()
}

fn stops_playback(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::StopPlayback(_)))
}

#[test]
fn an_early_play_step_asks_for_early_media_and_its_plan_says_so() {
    let early = load(&plan(
        "  start:\n    play: hello\n    early: true\n    next: bye\n",
    ));
    assert!(early.has_early_media());
    let mut c = Call::start(early);
    assert!(matches!(c.take()[0], Action::Play { early: true, .. }));
    let plain = load(&plan("  start:\n    play: hello\n    next: bye\n"));
    assert!(!plain.has_early_media());
}

#[test]
fn play_then_next_then_hangup() {
    let p = load(&plan("  start:\n    play: [hello, bye]\n    next: bye\n"));
    let mut c = Call::start(p);
    let first = c.take();
    assert_eq!(played(&first), ["hello/cmn", "bye/cmn"]);
    assert!(matches!(
        first[0],
        Action::Play {
            barge_in: false,
            early: false,
            ..
        }
    ));
    assert_eq!(c.interp.poll_timeout(), None);
    // A play step ignores keys.
    c.key('1');
    assert!(c.take().is_empty());
    c.prompt_done();
    assert_eq!(hangups(&c.take()), ["done"]);
    assert!(c.interp.is_finished());
}

#[test]
fn play_in_all_languages() {
    let p = load(&plan(
        "  start:\n    play: hello\n    all_languages: true\n    next: bye\n",
    ));
    let mut c = Call::start(p);
    assert_eq!(played(&c.take()), ["hello/cmn", "hello/yue"]);
}

#[test]
fn stale_prompt_done_is_ignored() {
    let p = load(&plan(
        "  start:\n    menu: menu\n    choices: {\"1\": second}\n    no_input: bye\n    no_match: bye\n  second:\n    play: hello\n    next: bye\n",
    ));
    let mut c = Call::start(p);
    c.take();
    let old = c.playing.expect("menu prompt");
    c.key('1');
    let actions = c.take();
    assert!(stops_playback(&actions));
    assert_eq!(played(&actions), ["hello/cmn"]);
    // The stopped menu prompt reports done late: the play step must keep waiting.
    c.input(Input::PromptDone(old));
    assert!(c.take().is_empty());
    assert_eq!(c.step(), "second");
}

const MENU: &str = "
  start:
    menu: menu
    no_input_prompt: silence
    no_match_prompt: bad_key
    timeout: 5s
    tries: 2
    choices:
      \"1\": one
      \"2\": bye
    no_input: other
    no_match: bye
  one:
    play: hello
    next: bye
";

#[test]
fn menu_key_after_the_prompt_goes_to_its_choice() {
    let mut c = Call::start(load(&plan(MENU)));
    assert!(matches!(c.take()[0], Action::Play { barge_in: true, .. }));
    c.prompt_done();
    assert_eq!(c.interp.poll_timeout(), Some(c.now + secs(5)));
    c.wait(secs(2));
    c.key('1');
    assert_eq!(played(&c.take()), ["hello/cmn"]);
    assert_eq!(c.step(), "one");
    assert_eq!(c.interp.vars().digits.as_deref(), Some("1"));
}

#[test]
fn menu_key_during_the_prompt_barges_in() {
    let mut c = Call::start(load(&plan(MENU)));
    c.take();
    c.key('2');
    let actions = c.take();
    assert!(stops_playback(&actions));
    assert_eq!(hangups(&actions), ["done"]);
}

#[test]
fn menu_no_input_retries_then_gives_up_after_its_prompt() {
    let mut c = Call::start(load(&plan(MENU)));
    c.take();
    c.prompt_done();
    c.wait(secs(4));
    assert!(c.take().is_empty(), "not yet");
    c.wait(secs(1));
    assert_eq!(played(&c.take()), ["silence/cmn", "menu/cmn"]);
    c.prompt_done();
    c.wait(secs(5));
    // Last try: the no-input prompt, then the no-input outcome.
    assert_eq!(played(&c.take()), ["silence/cmn"]);
    c.prompt_done();
    assert_eq!(hangups(&c.take()), ["other"]);
}

#[test]
fn menu_no_match_retries_then_gives_up() {
    let mut c = Call::start(load(&plan(MENU)));
    c.take();
    c.prompt_done();
    c.key('9');
    assert_eq!(played(&c.take()), ["bad_key/cmn", "menu/cmn"]);
    c.key('7');
    let actions = c.take();
    assert!(stops_playback(&actions));
    assert_eq!(played(&actions), ["bad_key/cmn"]);
    c.prompt_done();
    assert_eq!(hangups(&c.take()), ["done"]);
}

#[test]
fn menu_without_failure_prompts_goes_straight_on() {
    let p = load(&plan(
        "  start:\n    menu: menu\n    tries: 1\n    choices: {\"1\": bye}\n    no_input: other\n    no_match: bye\n",
    ));
    let mut c = Call::start(p);
    c.prompt_done();
    c.wait(secs(5));
    assert_eq!(hangups(&c.take()), ["other"]);
}

const DIGITS: &str = "
  start:
    menu: menu
    max_digits: 4
    terminator: \"#\"
    inter_digit_timeout: 2s
    choices:
      \"12\": one
    any: check
    no_input: other
    no_match: bye
  one:
    play: hello
    next: bye
  check:
    branch:
      - if: digits == 1234
        goto: bye
    else: other
";

#[test]
fn menu_collects_up_to_max_digits() {
    let mut c = Call::start(load(&plan(DIGITS)));
    c.prompt_done();
    for k in ['1', '2', '3'] {
        c.key(k);
    }
    assert_eq!(c.interp.poll_timeout(), Some(c.now + secs(2)));
    c.key('4');
    assert_eq!(hangups(&c.take()), ["done"]);
    assert_eq!(c.interp.vars().digits.as_deref(), Some("1234"));
}

#[test]
fn menu_terminator_and_inter_digit_timeout_end_the_entry() {
    let mut c = Call::start(load(&plan(DIGITS)));
    c.key('1');
    c.key('2');
    c.key('#');
    assert_eq!(c.step(), "one");

    let mut c = Call::start(load(&plan(DIGITS)));
    c.prompt_done();
    c.key('9');
    c.wait(secs(1));
    c.key('8');
    c.wait(secs(2));
    assert_eq!(c.interp.vars().digits.as_deref(), Some("98"));
    assert_eq!(hangups(&c.take()), ["other"]);
}

#[test]
fn menu_terminator_alone_is_no_input() {
    let mut c = Call::start(load(&plan(DIGITS)));
    c.prompt_done();
    c.take();
    c.key('#');
    // tries defaults to 3: the prompt again, without a no-input prompt (none given).
    assert_eq!(played(&c.take()), ["menu/cmn"]);
}

const ASK: &str = "
  start:
    ask: ask
    grammar: \"12345\"
    no_input_prompt: silence
    no_match_prompt: unclear
    timeout: 5s
    max_speech: 10s
    tries: 2
    min_confidence: 0.3
    confirm:
      below: 0.6
      prompt: [sure, \"intent_{intent}\"]
      yes_words: [是, 係]
      no_words: [不是, 唔係]
    intents:
      labor: labor
    intent: anything
    keys:
      \"0\": other
    no_input: menu
    no_match: menu
    unavailable: menu
  labor:
    queue: labor
  anything:
    switch: intent
    cases:
      housing_fund: housing
    default: other
  housing:
    queue: housing_fund
  menu:
    menu: menu
    choices: {\"1\": labor}
    no_input: other
    no_match: other
";

fn ask_call() -> Call {
    Call::start(load(&plan(ASK)))
}

fn enqueued(actions: &[Action]) -> Vec<&Enqueue> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Enqueue(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn ask_listens_during_the_prompt_and_routes_a_confident_intent() {
    let mut c = ask_call();
    let first = c.take();
    // Listening starts first, so a call task that answers "unavailable" at once stops
    // the prompt before any of it is heard.
    assert!(matches!(first[0], Action::Listen { .. }));
    assert!(matches!(first[1], Action::Play { barge_in: true, .. }));
    assert_eq!(listens(&first)[0].grammar.as_deref(), Some("12345"));
    assert_eq!(listens(&first)[0].language, "cmn");
    c.say("老板拖欠工资", Some("labor"), 0.9);
    let actions = c.take();
    assert!(stops_playback(&actions), "barge-in stops the prompt");
    assert_eq!(
        events(&actions),
        [&EventKind::IntentRecognised {
            call_id: "call-1".into(),
            intent: "labor".into(),
            confidence: 0.9,
            language: "cmn".into(),
            transcript: "老板拖欠工资".into(),
        }]
    );
    let q = enqueued(&actions);
    assert_eq!(q[0].queue, "labor");
    assert_eq!(q[0].intent.as_deref(), Some("labor"));
    assert_eq!(q[0].language, "cmn");
    assert_eq!(q[0].vars.transcript.as_deref(), Some("老板拖欠工资"));
    assert_eq!(q[0].vars.caller, "13800001111");
}

#[test]
fn ask_catch_all_intent_goes_on_with_the_intent_set() {
    let mut c = ask_call();
    c.take();
    c.prompt_done();
    c.say("公积金怎么提取", Some("housing_fund"), 0.8);
    assert_eq!(enqueued(&c.take())[0].queue, "housing_fund");
}

#[test]
fn ask_speech_starts_the_speaking_timer_and_max_speech_gives_up() {
    let mut c = ask_call();
    c.take();
    c.prompt_done();
    c.wait(secs(3));
    c.speech(Speech::Partial("我想".into()));
    assert_eq!(c.interp.poll_timeout(), Some(c.now + secs(10)));
    c.wait(secs(10));
    let actions = c.take();
    assert_eq!(played(&actions), ["unclear/cmn", "ask/cmn"]);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::StopListening(_)))
    );
}

#[test]
fn ask_silence_retries_then_falls_back_to_the_menu() {
    let mut c = ask_call();
    c.take();
    c.prompt_done();
    c.wait(secs(5));
    let retry = c.take();
    assert_eq!(played(&retry), ["silence/cmn", "ask/cmn"]);
    assert_eq!(
        listens(&retry).len(),
        1,
        "a fresh recognizer for the second try"
    );
    c.prompt_done();
    // An empty final result is no input too.
    c.speech(Speech::Final(SpeechResult {
        alternatives: Vec::new(),
        transcript: " ".into(),
        intent: None,
        confidence: 0.0,
        language: None,
    }));
    let actions = c.take();
    assert_eq!(played(&actions), ["silence/cmn"]);
    assert_eq!(
        events(&actions),
        [&EventKind::DtmfFallback {
            call_id: "call-1".into(),
            reason: FallbackReason::Failures
        }]
    );
    c.prompt_done();
    assert_eq!(played(&c.take()), ["menu/cmn"]);
    assert_eq!(c.step(), "menu");
}

#[test]
fn ask_without_intent_or_below_min_confidence_is_no_match() {
    let mut c = ask_call();
    c.take();
    c.say("嗯嗯", None, 0.0);
    assert_eq!(played(&c.take()), ["unclear/cmn", "ask/cmn"]);
    c.say("工资", Some("labor"), 0.2);
    assert_eq!(played(&c.take()), ["unclear/cmn"]);
    assert_eq!(c.interp.vars().intent, None);
    assert_eq!(c.interp.vars().transcript.as_deref(), Some("工资"));
}

#[test]
fn ask_low_confidence_is_confirmed_by_key() {
    let mut c = ask_call();
    c.take();
    c.say("工资", Some("labor"), 0.5);
    let actions = c.take();
    assert_eq!(played(&actions), ["sure/cmn", "intent_labor/cmn"]);
    assert_eq!(listens(&actions)[0].phrases, ["不是", "唔係", "是", "係"]);
    assert!(enqueued(&actions).is_empty());
    c.key('1');
    let actions = c.take();
    assert!(stops_playback(&actions));
    assert_eq!(enqueued(&actions)[0].queue, "labor");
}

#[test]
fn ask_low_confidence_confirmed_by_words() {
    let mut c = ask_call();
    c.take();
    c.say("工资", Some("labor"), 0.5);
    c.prompt_done();
    c.say("是的", None, 0.0);
    assert_eq!(enqueued(&c.take())[0].queue, "labor");
}

#[test]
fn ask_low_confidence_denied_is_a_second_try() {
    let mut c = ask_call();
    c.take();
    c.say("工资", Some("labor"), 0.5);
    c.take();
    // "不是" contains "是": the no-words win.
    c.say("不是", None, 0.0);
    let actions = c.take();
    assert_eq!(played(&actions), ["unclear/cmn", "ask/cmn"]);
    assert_eq!(c.interp.vars().intent, None);
    c.say("公积金", Some("housing_fund"), 0.95);
    assert_eq!(enqueued(&c.take())[0].queue, "housing_fund");
}

#[test]
fn ask_confirmation_silence_and_no_key() {
    let mut c = ask_call();
    c.take();
    c.say("工资", Some("labor"), 0.5);
    c.prompt_done();
    c.take();
    c.wait(secs(5));
    assert_eq!(played(&c.take()), ["silence/cmn", "ask/cmn"]);
    c.say("工资", Some("labor"), 0.5);
    c.take();
    c.key('2');
    assert_eq!(played(&c.take()), ["unclear/cmn"]);
    c.prompt_done();
    assert_eq!(c.step(), "menu");
}

#[test]
fn ask_key_goes_to_its_step_and_other_keys_are_no_match() {
    let mut c = ask_call();
    c.take();
    c.key('5');
    let actions = c.take();
    assert!(stops_playback(&actions));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::StopListening(_)))
    );
    assert_eq!(played(&actions), ["unclear/cmn", "ask/cmn"]);
    c.key('0');
    assert_eq!(hangups(&c.take()), ["other"]);
    assert_eq!(c.interp.vars().digits.as_deref(), Some("0"));
}

#[test]
fn ask_speech_unavailable_goes_to_the_menu_at_once() {
    for (why, reason) in [
        (Unavailable::PoolBusy, FallbackReason::PoolBusy),
        (Unavailable::NoRecognizer, FallbackReason::NoRecognizer),
    ] {
        let mut c = ask_call();
        c.take();
        c.unavailable(why);
        let actions = c.take();
        assert!(stops_playback(&actions));
        assert_eq!(
            events(&actions),
            [&EventKind::DtmfFallback {
                call_id: "call-1".into(),
                reason
            }]
        );
        assert_eq!(played(&actions), ["menu/cmn"]);
    }
}

#[test]
fn ask_speech_busy_tells_the_caller_first_when_the_plan_says_so() {
    let steps = ASK.replace(
        "    unavailable: menu\n",
        "    unavailable: menu\n    busy: tell_busy\n  tell_busy:\n    play: hello\n    next: menu\n",
    );
    for (why, reason, heard) in [
        (Unavailable::PoolBusy, FallbackReason::PoolBusy, "hello/cmn"),
        (
            Unavailable::NoRecognizer,
            FallbackReason::NoRecognizer,
            "menu/cmn",
        ),
    ] {
        let mut c = Call::start(load(&plan(&steps)));
        c.take();
        c.unavailable(why);
        let actions = c.take();
        assert_eq!(
            events(&actions),
            [&EventKind::DtmfFallback {
                call_id: "call-1".into(),
                reason
            }]
        );
        assert_eq!(played(&actions), [heard]);
    }
}

#[test]
fn two_close_intents_become_one_question_answered_by_key_or_by_name() {
    let steps = ASK.replace(
        "      no_words: [不是, 唔係]\n",
        "      no_words: [不是, 唔係]\n      choice:\n        prompt: [pick, \"intent_{intent}\", \"intent_{runner_up}\"]\n",
    );
    let unclear = |c: &mut Call| {
        c.speech(Speech::Final(SpeechResult {
            alternatives: vec![("labor".into(), 0.45), ("housing_fund".into(), 0.35)],
            transcript: "单位的钱的事".into(),
            intent: Some("labor".into()),
            confidence: 0.45,
            language: None,
        }));
    };
    // By key: 2 is the second intent offered.
    let mut c = Call::start(load(&plan(&steps)));
    c.take();
    unclear(&mut c);
    assert_eq!(
        played(&c.take()),
        ["pick/cmn", "intent_labor/cmn", "intent_housing_fund/cmn"]
    );
    c.key('2');
    let actions = c.take();
    assert_eq!(
        enqueued(&actions).first().map(|e| e.queue.as_str()),
        Some("housing_fund")
    );
    // By name: the answer is classified again and must be one of the two.
    let mut c = Call::start(load(&plan(&steps)));
    c.take();
    unclear(&mut c);
    c.take();
    c.say("劳动", Some("labor"), 0.9);
    let actions = c.take();
    assert_eq!(
        enqueued(&actions).first().map(|e| e.queue.as_str()),
        Some("labor")
    );
    // A second intent below `min` is not offered: the yes/no question instead.
    let mut c = Call::start(load(&plan(&steps)));
    c.take();
    c.speech(Speech::Final(SpeechResult {
        alternatives: vec![("labor".into(), 0.5), ("housing_fund".into(), 0.05)],
        transcript: "工资".into(),
        intent: Some("labor".into()),
        confidence: 0.5,
        language: None,
    }));
    assert_eq!(played(&c.take()), ["sure/cmn", "intent_labor/cmn"]);
}

#[test]
fn stale_speech_is_ignored() {
    let mut c = ask_call();
    c.take();
    let old = c.listening.expect("listening");
    c.key('5');
    c.take();
    c.input(Input::Speech(
        old,
        Speech::Final(SpeechResult {
            alternatives: Vec::new(),
            transcript: "工资".into(),
            intent: Some("labor".into()),
            confidence: 0.9,
            language: None,
        }),
    ));
    assert!(c.take().is_empty());
}

#[test]
fn ask_without_barge_in_listens_after_the_prompt() {
    let p = load(&plan(
        "  start:\n    ask: ask\n    barge_in: false\n    intent: bye\n    no_input: bye\n    no_match: bye\n    unavailable: other\n",
    ));
    let mut c = Call::start(p);
    let first = c.take();
    assert!(listens(&first).is_empty());
    assert!(matches!(
        first[0],
        Action::Play {
            barge_in: false,
            ..
        }
    ));
    c.prompt_done();
    assert_eq!(listens(&c.take()).len(), 1);
    c.unavailable(Unavailable::NoRecognizer);
    assert_eq!(hangups(&c.take()), ["other"]);
}

const LANGUAGE: &str = "
  start:
    choose_language: pick
    language_keys:
      \"1\": cmn
      \"2\": yue
    words:
      cmn: [普通话]
      yue: [广东话, 廣東話]
    tries: 2
    timeout: 3s
    default_language: yue
    next: after
  after:
    play: hello
    next: bye
";

#[test]
fn language_prompt_plays_in_every_language_and_a_key_chooses() {
    let mut c = Call::start(load(&plan(LANGUAGE)));
    let first = c.take();
    assert_eq!(played(&first), ["pick/cmn", "pick/yue"]);
    let listen = listens(&first)[0];
    assert!(listen.detect_language);
    assert_eq!(listen.phrases, ["普通话", "广东话", "廣東話"]);
    c.key('2');
    assert_eq!(played(&c.take()), ["hello/yue"]);
    assert_eq!(c.interp.vars().language, "yue");
}

#[test]
fn language_by_word_or_by_detection() {
    let mut c = Call::start(load(&plan(LANGUAGE)));
    c.say("我讲广东话", None, 0.0);
    assert_eq!(c.interp.vars().language, "yue");

    let mut c = Call::start(load(&plan(LANGUAGE)));
    c.take();
    c.speech(Speech::Final(SpeechResult {
        alternatives: Vec::new(),
        transcript: "你好".into(),
        intent: None,
        confidence: 0.7,
        language: Some("cmn".into()),
    }));
    assert_eq!(played(&c.take()), ["hello/cmn"]);
}

#[test]
fn language_silence_or_bad_keys_end_in_the_default() {
    let mut c = Call::start(load(&plan(LANGUAGE)));
    c.take();
    c.prompt_done();
    c.wait(secs(3));
    assert_eq!(played(&c.take()), ["pick/cmn", "pick/yue"]);
    c.key('9');
    assert_eq!(played(&c.take()), ["hello/yue"]);
    assert_eq!(c.interp.vars().language, "yue");
}

#[test]
fn language_without_speech_still_takes_keys() {
    let mut c = Call::start(load(&plan(LANGUAGE)));
    c.take();
    c.unavailable(Unavailable::NoRecognizer);
    assert!(c.take().is_empty(), "the prompt goes on");
    c.key('1');
    assert_eq!(played(&c.take()), ["hello/cmn"]);
}

#[test]
fn queue_left_goes_to_the_named_step_or_the_overflow_or_hangs_up() {
    let yaml = plan(
        "  start:\n    queue: labor\n    priority: 5\n    overflow: full\n  full:\n    play: hello\n    next: second\n  second:\n    queue: general\n",
    );
    let mut c = Call::start(load(&yaml));
    let q = enqueued(&c.take())[0].clone();
    assert_eq!((q.queue.as_str(), q.priority, q.intent), ("labor", 5, None));
    // Keys and prompt-done mean nothing while queued.
    c.key('1');
    assert!(c.take().is_empty());
    c.input(Input::QueueLeft { step: None });
    assert_eq!(played(&c.take()), ["hello/cmn"]);

    let mut c = Call::start(load(&yaml));
    c.input(Input::QueueLeft {
        step: Some("second".into()),
    });
    assert_eq!(enqueued(&c.take())[1].queue, "general");
    c.input(Input::QueueLeft { step: None });
    assert_eq!(hangups(&c.take()), ["queue_left"]);
}

const HOURS: &str = "
  start:
    hours: office
    open: open
    closed: closed
  open:
    hangup: open
  closed:
    hangup: closed
";

fn hours_plan() -> String {
    plan(HOURS).replace(
        "steps:\n",
        "schedules:\n  office:\n    open:\n      - days: mon-fri\n        time: \"09:00-18:00\"\n    holidays: [2025-06-04]\nsteps:\n",
    )
}

#[test]
fn hours_by_time_of_day_day_of_week_and_holidays() {
    let cases = [
        (TUESDAY_10AM, "open"),
        ("2025-06-03T00:59:00Z", "closed"), // Tuesday 08:59
        ("2025-06-03T10:00:00Z", "closed"), // Tuesday 18:00
        ("2025-06-07T02:00:00Z", "closed"), // Saturday
        ("2025-06-04T02:00:00Z", "closed"), // the schedule's holiday
    ];
    for (wall, outcome) in cases {
        let mut c = Call::start_at(load(&hours_plan()), wall);
        assert_eq!(hangups(&c.take()), [outcome], "{wall}");
    }
    let cal = calendar(&["2025-06-03"]);
    let mut c = Call::start_at(load_with("t.yaml", &hours_plan(), &cal), TUESDAY_10AM);
    assert_eq!(hangups(&c.take()), ["closed"], "the config's holiday");
}

#[test]
fn hours_reads_the_clock_as_time_passes_in_the_call() {
    let yaml = hours_plan().replace(
        "  start:\n    hours: office",
        "  start:\n    play: hello\n    next: check\n  check:\n    hours: office",
    );
    // 17:59:30 at the start; the prompt takes a minute.
    let mut c = Call::start_at(load(&yaml), "2025-06-03T09:59:30Z");
    c.wait(secs(60));
    c.prompt_done();
    assert_eq!(hangups(&c.take()), ["closed"]);
}

#[test]
fn transfer_to_a_uri_or_the_trunk_and_failure() {
    let yaml = plan(
        "  start:\n    transfer: sip:duty@10.0.0.5\n    ring_timeout: 12s\n    failed: trunk\n  trunk:\n    transfer: trunk\n    number: \"01012345678\"\n    method: refer\n",
    );
    let mut c = Call::start(load(&yaml));
    let actions = c.take();
    let Action::Transfer {
        to,
        method,
        vars,
        ring_timeout,
    } = &actions[0]
    else {
        panic!("{actions:?}")
    };
    assert_eq!(to, &TransferTo::Uri("sip:duty@10.0.0.5".into()));
    assert_eq!(*method, TransferMethod::Bridge, "the default");
    assert_eq!(vars.called, "12345");
    assert_eq!(*ring_timeout, secs(12));
    c.input(Input::TransferFailed);
    let actions = c.take();
    assert!(matches!(
        &actions[0],
        Action::Transfer { to: TransferTo::Trunk { number, .. }, ring_timeout, method: TransferMethod::Refer, .. }
            if number == "01012345678" && *ring_timeout == secs(30)
    ));
    c.input(Input::TransferFailed);
    assert_eq!(hangups(&c.take()), ["transfer_failed"]);
}

#[test]
fn goto_switch_and_branch_on_variables() {
    let yaml = plan(
        "
  start:
    goto: by_trunk
  by_trunk:
    switch: trunk
    cases:
      pbx: conditions
    default: other
  conditions:
    branch:
      - if: caller starts_with 139
        goto: other
      - if: caller starts_with 138 and language == cmn
        goto: bye
    else: other
",
    );
    let mut c = Call::start(load(&yaml));
    assert_eq!(hangups(&c.take()), ["done"]);
}

#[test]
fn later_prompts_use_the_chosen_language_and_the_queue_gets_it() {
    let steps = LANGUAGE.replace(
        "  after:\n    play: hello\n    next: bye\n",
        "  after:\n    menu: menu\n    choices: {\"1\": q}\n    no_input: bye\n    no_match: bye\n  q:\n    queue: labor\n    intent: labor\n",
    );
    let yaml = plan(&steps);
    let mut c = Call::start(load(&yaml));
    c.take();
    c.key('2');
    assert_eq!(played(&c.take()), ["menu/yue"]);
    c.key('1');
    let q = enqueued(&c.take())[0].clone();
    assert_eq!(q.language, "yue");
    assert_eq!(
        q.intent.as_deref(),
        Some("labor"),
        "the step's intent when none was said"
    );
}

/// Every diagnostic of loading `yaml` as `old.yaml`, as `line:column: message`.
fn load_errors(yaml: &str) -> Vec<String> {
    let sources = [(std::path::PathBuf::from("old.yaml"), yaml.to_owned())];
    match super::DialplanSet::from_sources(&sources, &calendar(&[]), &Default::default()) {
        Ok(_) => Vec::new(),
        Err(diags) => diags
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect(),
    }
}

#[test]
fn an_old_language_step_is_told_what_to_write() {
    let old = plan(&LANGUAGE.replace("choose_language: pick", "language: pick"));
    let errors = load_errors(&old);
    let line = old
        .lines()
        .position(|l| l.trim() == "language: pick")
        .expect("the old step")
        + 1;
    assert_eq!(
        errors,
        [format!(
            "{line}:5: `language: pick` is now `choose_language: pick` (the value is the \
             prompt); in it, `keys` (key -> language) is `language_keys` and `default` is \
             `default_language`"
        )]
    );
    let half = plan(
        &LANGUAGE
            .replace("language_keys:", "keys:")
            .replace("default_language: yue", "default: yue"),
    );
    let errors = load_errors(&half);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].ends_with(
            "in `choose_language`, write `language_keys` (it names languages, not steps)"
        ),
        "{errors:?}"
    );
    assert!(
        errors[1].ends_with(
            "in `choose_language`, write `default_language` (it names languages, not steps)"
        ),
        "{errors:?}"
    );
}
