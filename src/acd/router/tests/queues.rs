//! Queue rules: maximum wait and overflow, join/leave when empty, announcements,
//! bad requests and config.

use std::time::{Duration, Instant};

use super::*;
use crate::acd::config::AcdConfig;
use crate::acd::messages::{
    AgentAction, AgentState, ControlError, EnqueueRequest, HungUpBy, Input, InputError,
    Instruction, LeaveReason, OfferOutcome,
};
use crate::events::EventKind;

#[test]
fn max_wait_overflows_to_another_queue_then_to_a_step() {
    let text = "[[queues]]\nname = \"a\"\nmax_wait_s = 60\noverflow = { queue = \"b\" }\n\
                announce_period_s = 0\n\
                [[queues]]\nname = \"b\"\nmax_wait_s = 30\noverflow = { step = \"voicemail\" }\n\
                announce_period_s = 0\n\
                [[queues]]\nname = \"c\"\nmax_wait_s = 10\nannounce_period_s = 0\n";
    let mut s = Sim::new(text);
    s.enqueue("c1", "a", "cmn", 0);
    s.enqueue("c2", "c", "cmn", 0);
    s.take();
    s.take_events();
    s.at(10.0);
    assert_eq!(
        s.take_events(),
        [EventKind::ExitWithTimeout {
            call_id: "c2".into(),
            queue: "c".into(),
            position: 1,
            wait_ms: 10_000
        }]
    );
    assert_eq!(
        s.take(),
        [(
            "c2".into(),
            Instruction::Leave {
                reason: LeaveReason::Timeout,
                next_step: None
            }
        )]
    );
    s.at(60.0);
    let events = s.take_events();
    assert_eq!(
        events[0],
        EventKind::Overflowed {
            call_id: "c1".into(),
            queue: "a".into(),
            target: "queue:b".into(),
            wait_ms: 60_000,
            position: 1
        }
    );
    assert!(matches!(&events[1], EventKind::EnterQueue { queue, position: 1, .. } if queue == "b"));
    assert!(matches!(&s.take()[..], [(_, Instruction::Queued { queue, .. })] if queue == "b"));
    s.at(90.0);
    assert!(matches!(
        &s.take_events()[..],
        [EventKind::Overflowed { target, wait_ms: 30_000, .. }] if target == "step:voicemail"
    ));
    assert_eq!(
        s.take(),
        [(
            "c1".into(),
            Instruction::Leave {
                reason: LeaveReason::Overflow,
                next_step: Some("voicemail".into())
            }
        )]
    );
    assert_eq!(s.router.poll_timeout(), None);
}

#[test]
fn max_wait_while_ringing_withdraws_the_offer() {
    let text = format!(
        "{QUEUE}max_wait_s = 10\nring_timeout_s = 30\n{}",
        agents(&[("a1", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.at(10.0);
    assert_eq!(
        s.take(),
        [
            ("c1".into(), Instruction::CancelOffer { offer: o }),
            (
                "c1".into(),
                Instruction::Leave {
                    reason: LeaveReason::Timeout,
                    next_step: None
                }
            )
        ]
    );
    assert_eq!(s.state("a1"), AgentState::Available);
}

#[test]
fn join_and_leave_rules_when_no_agent_is_logged_in() {
    let text = format!(
        "[[queues]]\nname = \"q\"\njoin_when_empty = false\nleave_when_empty = true\n\
         overflow = {{ step = \"sorry\" }}\nannounce_period_s = 0\n{}",
        agents(&[("a1", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.enqueue("c1", "q", "cmn", 0);
    assert_eq!(
        s.take(),
        [(
            "c1".into(),
            Instruction::Leave {
                reason: LeaveReason::JoinRefused,
                next_step: Some("sorry".into())
            }
        )]
    );
    assert_eq!(
        s.take_events(),
        [EventKind::JoinRefused {
            call_id: "c1".into(),
            queue: "q".into(),
        }],
        "refused at the door, never entered"
    );
    s.login(&["a1"]);
    s.control(
        "a1",
        AgentAction::Pause {
            reason: "meeting".into(),
        },
    )
    .unwrap();
    s.enqueue("c2", "q", "cmn", 0);
    assert!(
        matches!(&s.take()[..], [(_, Instruction::Queued { .. })]),
        "paused counts as logged in"
    );
    s.at(5.0);
    s.take_events();
    s.control(
        "a1",
        AgentAction::Logout {
            reason: "shift end".into(),
        },
    )
    .unwrap();
    assert!(matches!(
        &s.take_events()[..],
        [
            EventKind::AgentLogout { reason, .. },
            EventKind::ExitEmpty {
                position: 1,
                wait_ms: 5000,
                ..
            }
        ] if reason == "shift end"
    ));
    assert_eq!(
        s.take(),
        [(
            "c2".into(),
            Instruction::Leave {
                reason: LeaveReason::Empty,
                next_step: Some("sorry".into())
            }
        )]
    );
}

#[test]
fn announcements_give_position_and_estimate_and_skip_ringing_callers() {
    let text = "[[queues]]\nname = \"q\"\nannounce_period_s = 30\nwrap_up_s = 20\nring_timeout_s = 60\n\
                handle_time_estimate_s = 120\n[[agents]]\nid = \"a1\"\nuri = \"sip:a1@pbx\"\n\
                skills = { q = 1 }\n[[agents]]\nid = \"a2\"\nuri = \"sip:a2@pbx\"\n\
                skills = { q = 1 }\n";
    let mut s = Sim::new(text);
    s.login(&["a1"]);
    s.enqueue("ringing", "q", "cmn", 0);
    let o = s.offered("ringing", "a1");
    s.enqueue("c2", "q", "cmn", 0);
    // One agent staffed, AHT 120 s before any call completed: 2 × 120 / 1.
    assert_eq!(
        s.take(),
        [(
            "c2".into(),
            Instruction::Queued {
                queue: "q".into(),
                position: 2,
                estimated_wait: Some(Duration::from_secs(240))
            }
        )]
    );
    s.login(&["a2"]);
    s.take();
    s.outcome("ringing", o, OfferOutcome::Answered);
    s.take();
    s.gone("c2");
    s.enqueue("c3", "q", "cmn", 0);
    s.control("a2", AgentAction::Pause { reason: "x".into() })
        .unwrap();
    s.take();
    // a1 on a call counts as staffed, a2 paused does not; no call completed yet: 1 × 120 / 1.
    s.at(60.0);
    let early = Instruction::Announce {
        position: 1,
        estimated_wait: Some(Duration::from_secs(120)),
    };
    assert_eq!(
        s.take(),
        [("c3".into(), early.clone()), ("c3".into(), early)]
    );
    s.at(75.0);
    s.ended("ringing", HungUpBy::Caller);
    // Handle time 75 s talk + 20 s wrap-up; a1 in wrap-up still counts as staffed.
    s.at(90.0);
    assert_eq!(
        s.take(),
        [(
            "c3".into(),
            Instruction::Announce {
                position: 1,
                estimated_wait: Some(Duration::from_secs(95))
            }
        )]
    );
    s.at(95.0);
    s.offered("c3", "a1");
    s.at(120.0);
    assert!(s.take().is_empty(), "no announcement while the agent rings");
}

#[test]
fn bad_requests_are_refused() {
    let mut s = three("longest-idle");
    s.enqueue("c1", "q", "cmn", 0);
    let again = EnqueueRequest {
        call_id: "c1".into(),
        queue: "q".into(),
        language: String::new(),
        intent: None,
        priority: 0,
        caller: String::new(),
    };
    assert_eq!(
        s.input(Input::Enqueue(again.clone())),
        Err(InputError::DuplicateCall("c1".into()))
    );
    let elsewhere = EnqueueRequest {
        call_id: "c9".into(),
        queue: "nope".into(),
        ..again
    };
    assert_eq!(
        s.input(Input::Enqueue(elsewhere)),
        Err(InputError::UnknownQueue("nope".into()))
    );
    assert_eq!(
        s.control("zz", AgentAction::Login),
        Err(ControlError::UnknownAgent("zz".into()))
    );
    assert_eq!(
        s.control("a1", AgentAction::Resume),
        Err(ControlError::LoggedOut("a1".into()))
    );
    assert_eq!(s.waiting("q"), ["c1"]);
}

#[test]
fn an_invalid_config_is_refused_with_every_problem() {
    let config: AcdConfig =
        toml::from_str("[[agents]]\nid = \"x\"\nskills = { nowhere = 1 }\n").unwrap();
    let err = Router::new(&config, Instant::now()).err().expect("invalid");
    assert_eq!(err.problems.len(), 2, "{err}");
}
