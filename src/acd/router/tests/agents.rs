//! Agents changing state: pause, logout, registration, wrap-up; control errors.

use super::*;
use crate::acd::messages::{
    AgentAction, AgentState, ControlError, HungUpBy, Input, InputError, Instruction, OfferOutcome,
    Target,
};
use crate::events::EventKind;

#[test]
fn pausing_or_logging_out_while_ringing_sends_the_caller_to_the_next_agent() {
    let mut s = three("skills-based");
    s.login(&["a1", "a2", "a3"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a2");
    s.take_events();
    assert_eq!(
        s.control(
            "a2",
            AgentAction::Pause {
                reason: "lunch".into()
            }
        ),
        Ok(AgentState::Paused {
            reason: "lunch".into()
        })
    );
    let said = s.take();
    assert_eq!(
        said[0],
        ("c1".into(), Instruction::CancelOffer { offer: o })
    );
    assert!(matches!(&said[1], (_, Instruction::Offer { agent, .. }) if agent == "a3"));
    assert!(
        !s.take_events()
            .iter()
            .any(|e| matches!(e, EventKind::RingNoAnswer { .. })),
        "not the agent's no-answer"
    );
    // a3 logs out while ringing: back to a1; a3's late answer is refused.
    let a3_offer = match &said[1].1 {
        Instruction::Offer { offer, .. } => *offer,
        _ => unreachable!(),
    };
    s.control(
        "a3",
        AgentAction::Logout {
            reason: "ill".into(),
        },
    )
    .unwrap();
    let said = s.take();
    assert_eq!(said[0].1, Instruction::CancelOffer { offer: a3_offer });
    assert!(matches!(&said[1].1, Instruction::Offer { agent, .. } if agent == "a1"));
    s.outcome("c1", a3_offer, OfferOutcome::Answered);
    assert_eq!(
        s.take(),
        [("c1".into(), Instruction::CancelOffer { offer: a3_offer })]
    );
}

#[test]
fn losing_registration_logs_the_agent_out_and_reroutes_the_caller() {
    let text = format!(
        "{QUEUE}[[agents]]\nid = \"p\"\npassword = \"pw\"\nauto_login = true\nskills = {{ q = 1 }}\n{}",
        agents(&[("t", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    assert_eq!(
        s.control("p", AgentAction::Login),
        Err(ControlError::NotReachable("p".into()))
    );
    let up = Input::Registration {
        user: "p".into(),
        contact: Some("sip:p@127.0.0.1:5070".into()),
    };
    s.input(up).unwrap();
    assert_eq!(s.state("p"), AgentState::Available, "auto login");
    s.enqueue("c1", "q", "cmn", 0);
    let said = s.take();
    assert!(matches!(
        &said[1].1,
        Instruction::Offer { agent, target: Target::Registered(uri), .. }
            if agent == "p" && uri == "sip:p@127.0.0.1:5070"
    ));
    s.login(&["t"]);
    s.take_events();
    let down = Input::Registration {
        user: "p".into(),
        contact: None,
    };
    s.input(down).unwrap();
    assert_eq!(
        s.take_events()[0],
        EventKind::AgentLogout {
            agent: "p".into(),
            reason: "registration lost".into()
        }
    );
    let said = s.take();
    assert!(matches!(&said[0].1, Instruction::CancelOffer { .. }));
    assert!(matches!(
        &said[1].1,
        Instruction::Offer { agent, target: Target::Trunk(_), .. } if agent == "t"
    ));
    let unknown = Input::Registration {
        user: "nobody".into(),
        contact: None,
    };
    assert_eq!(
        s.input(unknown),
        Err(InputError::UnknownUser("nobody".into()))
    );
}

#[test]
fn wrap_up_holds_the_agent_until_its_timer_or_resume() {
    let text = format!(
        "[[queues]]\nname = \"q\"\nwrap_up_s = 20\nannounce_period_s = 0\n{}",
        agents(&[("a1", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["a1"]);
    s.enqueue("c1", "q", "cmn", 0);
    let o = s.offered("c1", "a1");
    s.outcome("c1", o, OfferOutcome::Answered);
    s.at(100.0);
    s.take_events();
    s.ended("c1", HungUpBy::Agent);
    assert_eq!(
        s.take_events()[1],
        EventKind::WrapUpStarted {
            agent: "a1".into(),
            queue: "q".into()
        }
    );
    assert_eq!(s.state("a1"), AgentState::WrapUp);
    s.enqueue("c2", "q", "cmn", 0);
    assert!(s.offers().is_empty());
    s.at(119.9);
    assert!(s.offers().is_empty());
    s.at(120.0);
    let o = s.offered("c2", "a1");
    assert!(
        s.take_events()
            .contains(&EventKind::WrapUpEnded { agent: "a1".into() })
    );
    // Resume cuts a wrap-up short.
    s.complete("c2", o);
    assert_eq!(s.state("a1"), AgentState::WrapUp);
    assert_eq!(
        s.control("a1", AgentAction::Resume),
        Ok(AgentState::Available)
    );
}

#[test]
fn an_agent_whose_uri_stops_answering_probes_is_offered_nothing_until_it_answers_again() {
    let mut s = Sim::new(&format!("{QUEUE}{}", agents(&[("t", "cmn", "q = 1")])));
    let down = Input::Reachability {
        agent: "t".into(),
        up: false,
    };
    s.input(down).unwrap();
    s.login(&["t"]);
    assert_eq!(s.state("t"), AgentState::Available, "logs in while down");
    s.enqueue("c1", "q", "cmn", 0);
    let said = s.take();
    assert!(
        !said
            .iter()
            .any(|(_, i)| matches!(i, Instruction::Offer { .. })),
        "nothing rings on a PBX agent that does not answer: {said:?}"
    );
    let up = Input::Reachability {
        agent: "t".into(),
        up: true,
    };
    s.input(up).unwrap();
    let said = s.take();
    assert!(
        said.iter().any(|(c, i)| c == "c1"
            && matches!(i, Instruction::Offer { agent, target: Target::Trunk(_), .. } if agent == "t")),
        "the waiting caller goes to it once it answers: {said:?}"
    );
    let unknown = Input::Reachability {
        agent: "nobody".into(),
        up: true,
    };
    assert_eq!(
        s.input(unknown),
        Err(InputError::UnknownAgent("nobody".into()))
    );
}

#[test]
fn a_queue_whose_only_agent_is_found_down_is_empty_for_its_callers() {
    let text = format!(
        "[[queues]]\nname = \"q\"\njoin_when_empty = false\nleave_when_empty = true\n\
         overflow = {{ step = \"sorry\" }}\nannounce_period_s = 0\nring_timeout_s = 30\n{}",
        agents(&[("t", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    s.login(&["t"]);
    s.control(
        "t",
        AgentAction::Pause {
            reason: "meeting".into(),
        },
    )
    .unwrap();
    s.enqueue("c1", "q", "cmn", 0);
    assert!(matches!(&s.take()[..], [(_, Instruction::Queued { .. })]));
    let down = Input::Reachability {
        agent: "t".into(),
        up: false,
    };
    s.input(down).unwrap();
    assert!(
        s.take().iter().any(|(c, i)| c == "c1"
            && matches!(i, Instruction::Leave { next_step: Some(step), .. } if step == "sorry")),
        "nobody can be reached: the caller goes to the overflow"
    );
    s.enqueue("c2", "q", "cmn", 0);
    assert!(
        matches!(
            &s.take()[..],
            [(
                _,
                Instruction::Leave {
                    reason: crate::acd::LeaveReason::JoinRefused,
                    ..
                }
            )]
        ),
        "and new callers are refused at the door"
    );
}

#[test]
fn a_probe_on_an_agent_that_was_not_staffing_sends_no_caller_away() {
    let text = format!(
        "[[queues]]\nname = \"q\"\nleave_when_empty = true\n\
         overflow = {{ step = \"sorry\" }}\nannounce_period_s = 0\n{}",
        agents(&[("t", "cmn", "q = 1")])
    );
    let mut s = Sim::new(&text);
    // Nobody logged in, and the queue takes callers anyway (join_when_empty).
    s.enqueue("c1", "q", "cmn", 0);
    assert!(matches!(&s.take()[..], [(_, Instruction::Queued { .. })]));
    let down = Input::Reachability {
        agent: "t".into(),
        up: false,
    };
    s.input(down).unwrap();
    assert!(
        s.take().is_empty(),
        "a logged-out agent's probe changes nothing for the callers"
    );
}
