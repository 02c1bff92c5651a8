//! The call's flow in virtual time: a dialplan with real prompts, the ACD's instructions and
//! the far legs' events fed by hand, and every action checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::acd::LeaveReason;
use crate::call::test_plan;

/// A plan that greets, then runs `steps` from `next`; every prompt has audio except `sorry`.
fn start(steps: &str, has_acd: bool) -> (Flow, Instant) {
    let (flows, plan) = test_plan::flows(steps);
    let info = CallInfo {
        call_id: "call-1".into(),
        caller: "13800001111".into(),
        called: "12345".into(),
        trunk: None,
        ..CallInfo::default()
    };
    let now = Instant::now();
    let core = Flow::new(
        now,
        test_plan::tuesday_10am(),
        flows,
        plan,
        info,
        "10.0.0.1:5060".into(),
        FlowRules {
            has_acd,
            agent_refer: crate::sip::AgentRefer::Bridge,
        },
    );
    (core, now)
}

fn take(core: &mut Flow) -> Vec<FlowAction> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

/// The media ids of the clips played, in order.
fn plays(actions: &[FlowAction]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            FlowAction::Play { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn acd_reports(actions: &[FlowAction]) -> Vec<AcdReport> {
    actions
        .iter()
        .filter_map(|a| match a {
            FlowAction::Service(Service::Acd(r)) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn finished(actions: &[FlowAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            FlowAction::Service(Service::Event(EventKind::CallFinished { outcome, .. })) => {
                Some(outcome.clone())
            }
            _ => None,
        })
        .collect()
}

/// Each action's variant name; a service request by the service's (`Acd`, `Event`...).
fn kinds(actions: &[FlowAction]) -> Vec<String> {
    actions
        .iter()
        .map(|a| {
            let debug = format!("{a:?}");
            let debug = debug.strip_prefix("Service(").unwrap_or(&debug);
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Greets, lets the greeting end, and enters the queue `labor` with a `wait` prompt.
fn queued(at: &mut Instant) -> (Flow, u64) {
    let (mut core, t0) = start(
        "  next:\n    queue: labor\n    prompt: wait\n    overflow: sorry\n  sorry:\n    hangup: overflowed\n",
        true,
    );
    *at = t0;
    let greeting = plays(&take(&mut core));
    assert_eq!(greeting, [1]);
    core.handle_caller(t0, LegEvent::PlayDone(1));
    let actions = take(&mut core);
    let Some(FlowAction::Service(Service::Enqueue(request))) = actions.first() else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (request.queue.as_str(), request.caller.as_str()),
        ("labor", "13800001111")
    );
    assert_eq!(plays(&actions), [2], "the queue step's prompt");
    assert!(core.is_queued());
    (core, 2)
}

fn offer(core: &mut Flow, now: Instant, id: u64) -> Vec<FlowAction> {
    core.handle_instruction(
        now,
        Some(Instruction::Offer {
            offer: OfferId(id),
            queue: "labor".into(),
            agent: "1001".into(),
            target: Target::Registered("sip:1001@10.0.0.9:5062".into()),
        }),
    );
    take(core)
}

#[test]
fn an_offer_dials_the_agent_with_the_calls_context_and_reports_each_status() {
    let mut t0 = Instant::now();
    let (mut core, _) = queued(&mut t0);
    let actions = offer(&mut core, t0, 1);
    let [
        FlowAction::Dial {
            far: Far::Offer,
            target: DialTarget::Uri(target),
            context,
        },
    ] = actions.as_slice()
    else {
        panic!("{actions:?}");
    };
    assert_eq!(target, "sip:1001@10.0.0.9:5062");
    assert_eq!(context.queue.as_deref(), Some("labor"));
    assert_eq!(context.caller, "13800001111");
    assert_eq!(context.language, "cmn");

    core.handle_far(t0, Far::Offer, FarEvent::Ringing);
    assert!(take(&mut core).is_empty());
    core.handle_far(t0, Far::Offer, FarEvent::Failed(486));
    let actions = take(&mut core);
    assert_eq!(kinds(&actions), ["DropFar", "Acd"]);
    assert_eq!(
        acd_reports(&actions),
        [AcdReport::OfferOutcome(OfferId(1), OfferOutcome::Rejected)]
    );
    // The leg is gone: a late event from it changes nothing.
    core.handle_far(t0, Far::Offer, FarEvent::HungUp);
    assert!(take(&mut core).is_empty());

    for (code, outcome) in [
        (480, OfferOutcome::Rejected),
        (603, OfferOutcome::Rejected),
        (408, OfferOutcome::NoAnswer),
        (487, OfferOutcome::NoAnswer),
        (404, OfferOutcome::Failed),
        (503, OfferOutcome::Failed),
    ] {
        assert_eq!(offer_outcome(code), outcome, "{code}");
    }

    offer(&mut core, t0, 2);
    core.handle_dial_failed(t0, Far::Offer);
    assert_eq!(
        acd_reports(&take(&mut core)),
        [AcdReport::OfferOutcome(OfferId(2), OfferOutcome::Failed)]
    );
    // An agent that hangs up before the ACD connected it failed the offer.
    offer(&mut core, t0, 3);
    core.handle_far(t0, Far::Offer, FarEvent::Answered);
    core.handle_far(t0, Far::Offer, FarEvent::Lost(EndReason::MediaTimeout));
    assert_eq!(
        acd_reports(&take(&mut core)),
        [
            AcdReport::OfferOutcome(OfferId(3), OfferOutcome::Answered),
            AcdReport::OfferOutcome(OfferId(3), OfferOutcome::Failed)
        ]
    );
    assert!(core.outcome().is_none());
}

#[test]
fn a_connected_call_is_bridged_and_the_agents_hang_up_ends_the_caller() {
    let mut t0 = Instant::now();
    let (mut core, _) = queued(&mut t0);
    offer(&mut core, t0, 7);
    core.handle_far(t0, Far::Offer, FarEvent::Answered);
    take(&mut core);
    // A Connected for another offer (a stale one) is ignored.
    core.handle_instruction(
        t0,
        Some(Instruction::Connected {
            offer: OfferId(6),
            agent: "1001".into(),
        }),
    );
    assert!(take(&mut core).is_empty());
    core.handle_instruction(
        t0,
        Some(Instruction::Connected {
            offer: OfferId(7),
            agent: "1001".into(),
        }),
    );
    let actions = take(&mut core);
    assert!(
        matches!(
            actions.as_slice(),
            [FlowAction::StopAudio, FlowAction::Bridge(Some(Far::Offer))]
        ),
        "{actions:?}"
    );
    // The end of the (stopped) queue prompt brings no comfort audio over the agent.
    core.handle_caller(t0, LegEvent::PlayDone(2));
    assert!(take(&mut core).is_empty());

    core.handle_far(t0 + Duration::from_secs(60), Far::Offer, FarEvent::HungUp);
    let actions = take(&mut core);
    assert_eq!(
        kinds(&actions),
        ["Acd", "DropFar", "Bridge", "HangUpCaller"]
    );
    assert_eq!(
        acd_reports(&actions),
        [AcdReport::CallEnded(HungUpBy::Agent)]
    );
    assert_eq!(core.outcome(), Some(&Outcome::AgentHungUp));
    assert!(
        finished(&actions).is_empty(),
        "the ACD logs connected calls"
    );
}

#[test]
fn the_callers_end_names_who_ended_it_for_the_figures() {
    // Waiting in the queue: the media timeout is the system's, not an abandonment.
    let mut t0 = Instant::now();
    let (mut core, _) = queued(&mut t0);
    offer(&mut core, t0, 1);
    core.handle_caller(t0, LegEvent::Ended(EndReason::MediaTimeout));
    let actions = take(&mut core);
    assert_eq!(kinds(&actions), ["DropFar", "Acd", "Event"]);
    assert_eq!(
        acd_reports(&actions),
        [AcdReport::CallerGone(HungUpBy::System)]
    );
    assert_eq!(finished(&actions), ["media_timeout"]);
    assert!(!core.is_queued());

    // A hang-up while waiting is the caller's.
    let (mut core, _) = queued(&mut t0);
    core.handle_caller(t0, LegEvent::Ended(EndReason::CallerHungUp));
    assert_eq!(
        acd_reports(&take(&mut core)),
        [AcdReport::CallerGone(HungUpBy::Caller)]
    );
    assert_eq!(
        core.outcome().map(ToString::to_string).as_deref(),
        Some("caller_hung_up")
    );

    // Connected to an agent: the call ended, after the agent.
    let (mut core, _) = queued(&mut t0);
    offer(&mut core, t0, 1);
    core.handle_instruction(
        t0,
        Some(Instruction::Connected {
            offer: OfferId(1),
            agent: "1001".into(),
        }),
    );
    take(&mut core);
    core.handle_caller(t0, LegEvent::Ended(EndReason::Shutdown));
    let actions = take(&mut core);
    assert_eq!(
        acd_reports(&actions),
        [AcdReport::CallEnded(HungUpBy::System)]
    );
    assert_eq!(
        core.outcome().map(ToString::to_string).as_deref(),
        Some("shutdown_after_agent")
    );
    assert!(finished(&actions).is_empty());

    // Before any queue: no ACD report, just the end.
    let (mut core, t0) = start("  next:\n    hangup: done\n", true);
    take(&mut core);
    core.handle_caller(t0, LegEvent::Ended(EndReason::NoAck));
    let actions = take(&mut core);
    assert!(acd_reports(&actions).is_empty());
    assert_eq!(finished(&actions), ["no_ack"]);
}

#[test]
fn announcements_wait_for_the_queue_prompt_and_comfort_audio_fills_the_gaps() {
    let mut t0 = Instant::now();
    let (mut core, prompt) = queued(&mut t0);
    core.handle_instruction(
        t0,
        Some(Instruction::Queued {
            queue: "labor".into(),
            position: 3,
            estimated_wait: Some(Duration::from_secs(90)),
        }),
    );
    let actions = take(&mut core);
    assert!(
        matches!(actions.as_slice(), [FlowAction::Service(Service::Announce { language, position: 3, wait: Some(w) })]
            if language == "cmn" && *w == Duration::from_secs(90)),
        "{actions:?}"
    );
    let announcement = Clip::from_pcm(vec![1i16; 1600].into());
    core.handle_announcement(t0, 3, Some(announcement.clone()));
    assert!(take(&mut core).is_empty(), "not over the queue prompt");
    core.handle_caller(t0, LegEvent::PlayDone(prompt));
    let actions = take(&mut core);
    let [FlowAction::Play { id, clip, .. }] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    assert!(Arc::ptr_eq(clip, &announcement));
    core.handle_caller(t0, LegEvent::PlayDone(*id));
    let actions = take(&mut core);
    let [
        FlowAction::Play {
            id: comfort_id,
            clip,
            ..
        },
    ] = actions.as_slice()
    else {
        panic!("{actions:?}");
    };
    assert!(Arc::ptr_eq(clip, &announce::comfort()));
    // A later announcement cuts the comfort audio short.
    core.handle_announcement(t0, 2, Some(announcement.clone()));
    let actions = take(&mut core);
    assert_eq!(kinds(&actions), ["StopAudio", "Play"]);
    // The stopped comfort clip's end plays nothing more.
    core.handle_caller(t0, LegEvent::PlayDone(*comfort_id));
    assert!(take(&mut core).is_empty());
    // One that could not be rendered leaves what plays alone.
    core.handle_announcement(t0, 1, None);
    assert!(take(&mut core).is_empty());
}

#[test]
fn leaving_the_queue_drops_the_offer_and_goes_on_with_the_dialplan() {
    let mut t0 = Instant::now();
    let (mut core, _) = queued(&mut t0);
    offer(&mut core, t0, 4);
    core.handle_instruction(
        t0,
        Some(Instruction::Leave {
            reason: LeaveReason::Overflow,
            next_step: Some("sorry".into()),
        }),
    );
    let actions = take(&mut core);
    assert_eq!(
        kinds(&actions),
        ["DropFar", "StopAudio", "HangUpCaller", "Event"]
    );
    assert_eq!(finished(&actions), ["overflowed"]);
    assert_eq!(
        core.outcome(),
        Some(&Outcome::Dialplan("overflowed".into()))
    );

    // The ACD went away without a word: the flow goes on after the queue.
    let (mut core, _) = queued(&mut t0);
    core.handle_instruction(t0, None);
    assert!(!core.is_queued());
    assert_eq!(
        core.outcome(),
        Some(&Outcome::Dialplan("overflowed".into()))
    );
}

#[test]
fn without_an_acd_a_queue_step_gives_the_call_back_at_once() {
    let (mut core, t0) = start(
        "  next:\n    queue: labor\n    overflow: sorry\n  sorry:\n    hangup: no_queue\n",
        false,
    );
    take(&mut core);
    core.handle_caller(t0, LegEvent::PlayDone(1));
    let actions = take(&mut core);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, FlowAction::Service(Service::Enqueue(_))))
    );
    assert!(!core.is_queued());
    assert_eq!(
        core.outcome(),
        Some(&Outcome::Dialplan("no_queue".into())),
        "{actions:?}"
    );
}

#[test]
fn a_transfer_that_rings_too_long_fails_at_its_own_instant() {
    let (mut core, t0) = start(
        "  next:\n    transfer: trunk\n    number: \"01012345678\"\n    ring_timeout: 12s\n    failed: sorry\n  sorry:\n    play: sorry\n    next: bye\n  bye:\n    hangup: transfer_failed\n",
        true,
    );
    take(&mut core);
    core.handle_caller(t0, LegEvent::PlayDone(1));
    let actions = take(&mut core);
    let [
        FlowAction::Dial {
            far: Far::Transfer,
            target: DialTarget::CallersTrunk(target),
            context,
        },
    ] = actions.as_slice()
    else {
        panic!("{actions:?}");
    };
    assert_eq!(target, "sip:01012345678@10.0.0.1:5060", "through the trunk");
    assert_eq!(context.queue, None);
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(12)));
    core.handle_far(t0, Far::Transfer, FarEvent::Ringing);
    core.handle_timeout(t0 + Duration::from_secs(11));
    assert!(take(&mut core).is_empty(), "too early");
    core.handle_timeout(t0 + Duration::from_secs(12));
    let actions = take(&mut core);
    // `sorry` has no audio: its play is over at once and the plan hangs up.
    assert_eq!(kinds(&actions), ["DropFar", "HangUpCaller", "Event"]);
    assert_eq!(finished(&actions), ["transfer_failed"]);
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn an_answered_transfer_is_bridged_and_ends_with_its_far_end() {
    let (mut core, t0) = start(
        "  next:\n    transfer: sip:duty@10.0.0.5\n    failed: bye\n  bye:\n    hangup: transfer_failed\n",
        true,
    );
    take(&mut core);
    core.handle_caller(t0, LegEvent::PlayDone(1));
    take(&mut core);
    core.handle_far(t0, Far::Transfer, FarEvent::Answered);
    let actions = take(&mut core);
    assert_eq!(kinds(&actions), ["StopAudio", "Bridge", "Event"]);
    assert_eq!(finished(&actions), ["transferred"]);
    assert_eq!(core.poll_timeout(), None, "no ring timer once answered");
    core.handle_far(t0, Far::Transfer, FarEvent::HungUp);
    let actions = take(&mut core);
    assert_eq!(kinds(&actions), ["DropFar", "Bridge", "HangUpCaller"]);
    assert_eq!(core.outcome(), Some(&Outcome::Transferred));

    // The caller hanging up on an answered transfer is a transfer, logged once.
    let (mut core, t0) = start("  next:\n    transfer: sip:duty@10.0.0.5\n", true);
    take(&mut core);
    core.handle_caller(t0, LegEvent::PlayDone(1));
    core.handle_far(t0, Far::Transfer, FarEvent::Answered);
    take(&mut core);
    core.handle_caller(t0, LegEvent::Ended(EndReason::CallerHungUp));
    let actions = take(&mut core);
    assert_eq!(kinds(&actions), ["DropFar"]);
    assert_eq!(core.outcome(), Some(&Outcome::Transferred));
}

#[test]
fn keys_are_kept_and_a_stopped_prompts_end_is_not_taken_for_the_next() {
    let (mut core, t0) = start(
        "  next:\n    menu: wait\n    choices: {\"1\": one}\n    no_input: one\n    no_match: one\n  one:\n    hangup: one\n",
        true,
    );
    take(&mut core);
    core.handle_caller(t0, LegEvent::Dtmf('5'));
    // The greeting is no barge-in prompt: the key waits for the menu.
    core.handle_caller(t0, LegEvent::PlayDone(1));
    let menu = plays(&take(&mut core));
    assert_eq!(menu, [2]);
    core.handle_caller(t0, LegEvent::PlayDone(1));
    assert!(take(&mut core).is_empty(), "a stale end");
    core.handle_caller(t0, LegEvent::Dtmf('1'));
    let actions = take(&mut core);
    assert!(
        finished(&actions).contains(&"one".to_owned()),
        "{actions:?}"
    );
    assert_eq!(core.keys(), "51");
}
