//! The ACD actor: one tokio task that owns the router, feeds it messages and time, and
//! delivers what it decides — instructions to each call's channel, events to the log. Call
//! tasks and the API hold a cloneable `AcdHandle`; nothing else touches ACD state.
//!
//! The channel into the actor is unbounded like the event sink: a call task must never
//! wait on the ACD, and the message rate is a few per admitted call (admission sheds load
//! upstream with 503).

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::messages::{
    AcdSnapshot, AgentAction, AgentView, ControlError, EnqueueRequest, HungUpBy, Input,
    Instruction, LeaveReason, OfferId, OfferOutcome, Output,
};
use super::router::Router;
use crate::events::EventSink;

/// Messages to the ACD actor. `AcdHandle` builds them; they are public so the actor can be
/// replaced by one backed by a shared store without touching its users.
#[derive(Debug)]
pub enum AcdMsg {
    /// A call asks for an agent; its instructions arrive on `instructions`.
    Enqueue {
        request: EnqueueRequest,
        instructions: mpsc::UnboundedSender<Instruction>,
    },
    Input(Input),
    Control {
        agent: String,
        action: AgentAction,
        reply: oneshot::Sender<Result<AgentView, ControlError>>,
    },
    Snapshot {
        reply: oneshot::Sender<AcdSnapshot>,
    },
}

#[derive(Debug, Clone)]
pub struct AcdHandle {
    tx: mpsc::UnboundedSender<AcdMsg>,
}

impl AcdHandle {
    /// Puts a call in a queue. The receiver yields the call's instructions, starting with
    /// `Queued` (or `Leave` when it cannot join); it ends after `Leave`, after the call is
    /// reported gone or ended, or when the ACD stops.
    pub fn enqueue(&self, request: EnqueueRequest) -> mpsc::UnboundedReceiver<Instruction> {
        let (instructions, rx) = mpsc::unbounded_channel();
        self.send(AcdMsg::Enqueue {
            request,
            instructions,
        });
        rx
    }

    /// The caller hung up (queued, ringing or connected).
    pub fn caller_gone(&self, call_id: &str, by: HungUpBy) {
        self.send(AcdMsg::Input(Input::CallerGone {
            call_id: call_id.to_owned(),
            by,
        }));
    }

    pub fn offer_outcome(&self, call_id: &str, offer: OfferId, outcome: OfferOutcome) {
        self.send(AcdMsg::Input(Input::OfferOutcome {
            call_id: call_id.to_owned(),
            offer,
            outcome,
        }));
    }

    /// A connected call ended.
    pub fn call_ended(&self, call_id: &str, hung_up_by: HungUpBy) {
        self.send(AcdMsg::Input(Input::CallEnded {
            call_id: call_id.to_owned(),
            hung_up_by,
        }));
    }

    /// The registrar's news: where `user`'s phone is reached now, `None` once it is not.
    pub fn registration(&self, user: &str, contact: Option<String>) {
        self.send(AcdMsg::Input(Input::Registration {
            user: user.to_owned(),
            contact,
        }));
    }

    /// OPTIONS probes found the agent reached by URI `agent` up or down.
    pub fn reachability(&self, agent: &str, up: bool) {
        self.send(AcdMsg::Input(Input::Reachability {
            agent: agent.to_owned(),
            up,
        }));
    }

    pub async fn control(
        &self,
        agent: &str,
        action: AgentAction,
    ) -> Result<AgentView, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.send(AcdMsg::Control {
            agent: agent.to_owned(),
            action,
            reply,
        });
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// Queues, waiting callers and agents as they are now; `None` once the ACD stopped.
    pub async fn snapshot(&self) -> Option<AcdSnapshot> {
        let (reply, rx) = oneshot::channel();
        self.send(AcdMsg::Snapshot { reply });
        rx.await.ok()
    }

    fn send(&self, msg: AcdMsg) {
        // Only fails once the actor has stopped; its replies and channels then close,
        // which is how callers learn it.
        let _ = self.tx.send(msg);
    }
}

/// Starts the actor. It runs until every handle is dropped.
pub fn spawn(router: Router, events: EventSink) -> (AcdHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(router, rx, events));
    (AcdHandle { tx }, task)
}

fn now() -> Instant {
    // tokio's clock, so that tests with paused time drive the router's deadlines too.
    tokio::time::Instant::now().into_std()
}

async fn run(mut router: Router, mut rx: mpsc::UnboundedReceiver<AcdMsg>, events: EventSink) {
    let mut calls: HashMap<String, mpsc::UnboundedSender<Instruction>> = HashMap::new();
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            () = crate::time::sleep_until(router.poll_timeout()) => {
                router.handle_timeout(now());
                deliver(&mut router, &mut calls, &events);
                continue;
            }
        };
        let Some(msg) = msg else {
            break;
        };
        handle(&mut router, &mut calls, msg);
        deliver(&mut router, &mut calls, &events);
    }
}

fn handle(
    router: &mut Router,
    calls: &mut HashMap<String, mpsc::UnboundedSender<Instruction>>,
    msg: AcdMsg,
) {
    let now = now();
    match msg {
        AcdMsg::Enqueue {
            request,
            instructions,
        } => {
            let call_id = request.call_id.clone();
            if calls.contains_key(&call_id) {
                let reason = LeaveReason::Rejected(super::InputError::DuplicateCall(call_id));
                let _ = instructions.send(Instruction::Leave {
                    reason,
                    next_step: None,
                });
                return;
            }
            calls.insert(call_id.clone(), instructions);
            if let Err(e) = router.handle_input(now, Input::Enqueue(request)) {
                tracing::warn!(call_id, error = %e, "enqueue refused");
                if let Some(tx) = calls.remove(&call_id) {
                    let _ = tx.send(Instruction::Leave {
                        reason: LeaveReason::Rejected(e),
                        next_step: None,
                    });
                }
            }
        }
        AcdMsg::Input(input) => {
            if let Err(e) = router.handle_input(now, input) {
                tracing::warn!(error = %e, "ACD input ignored");
            }
        }
        AcdMsg::Control {
            agent,
            action,
            reply,
        } => {
            let result = router.control(now, &agent, action.clone());
            tracing::info!(agent, ?action, ok = result.is_ok(), "agent control");
            let _ = reply.send(result);
        }
        AcdMsg::Snapshot { reply } => {
            let _ = reply.send(router.snapshot(now));
        }
    }
}

fn deliver(
    router: &mut Router,
    calls: &mut HashMap<String, mpsc::UnboundedSender<Instruction>>,
    events: &EventSink,
) {
    while let Some(output) = router.poll_output() {
        match output {
            Output::Call {
                call_id,
                instruction,
            } => {
                if let Some(tx) = calls.get(&call_id) {
                    // A call task that went away has nobody left to instruct.
                    let _ = tx.send(instruction);
                }
            }
            Output::Forget { call_id } => {
                calls.remove(&call_id);
            }
            Output::Event(kind) => events.emit(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::acd::config::AcdConfig;
    use crate::acd::messages::{AgentState, InputError, Target};
    use crate::events::EventKind;

    const CONFIG: &str = "[[queues]]\nname = \"q\"\nring_timeout_s = 10\nretry_s = 5\n\
                          wrap_up_s = 0\nannounce_period_s = 0\n\
                          [[agents]]\nid = \"a1\"\nuri = \"sip:a1@pbx.example\"\nskills = { q = 1 }\n";

    fn start() -> (
        AcdHandle,
        tokio::task::JoinHandle<()>,
        mpsc::UnboundedReceiver<crate::events::Event>,
    ) {
        let config: AcdConfig = toml::from_str(CONFIG).expect("config parses");
        let router = Router::new(&config, now()).expect("config is valid");
        let (sink, events) = EventSink::new();
        let (acd, task) = spawn(router, sink);
        (acd, task, events)
    }

    fn request(call_id: &str, queue: &str) -> EnqueueRequest {
        EnqueueRequest {
            call_id: call_id.to_owned(),
            queue: queue.to_owned(),
            language: "cmn".to_owned(),
            intent: Some("housing".to_owned()),
            priority: 0,
            caller: "13800000000".to_owned(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_rings_out_then_connects_and_ends_through_the_handle() {
        let (acd, task, mut events) = start();
        let view = acd.control("a1", AgentAction::Login).await;
        assert_eq!(view.map(|v| v.state), Ok(AgentState::Available));
        let start = tokio::time::Instant::now();
        let mut rx = acd.enqueue(request("c1", "q"));
        assert!(matches!(
            rx.recv().await,
            Some(Instruction::Queued { position: 1, .. })
        ));
        let Some(Instruction::Offer {
            offer: first,
            target: Target::Trunk(uri),
            ..
        }) = rx.recv().await
        else {
            panic!("expected an offer");
        };
        assert_eq!(uri, "sip:a1@pbx.example");
        // Nobody answers: the actor's own timer withdraws the offer after the ring timeout,
        // and the retry delay later offers the same (only) agent again.
        assert_eq!(
            rx.recv().await,
            Some(Instruction::CancelOffer { offer: first })
        );
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        let Some(Instruction::Offer { offer: second, .. }) = rx.recv().await else {
            panic!("expected a second offer");
        };
        assert_eq!(start.elapsed(), Duration::from_secs(15));
        acd.offer_outcome("c1", second, OfferOutcome::Answered);
        assert_eq!(
            rx.recv().await,
            Some(Instruction::Connected {
                offer: second,
                agent: "a1".into()
            })
        );
        acd.call_ended("c1", HungUpBy::Agent);
        assert_eq!(
            rx.recv().await,
            None,
            "the channel closes when the call is done"
        );
        let snapshot = acd.snapshot().await.expect("running");
        assert_eq!(snapshot.agents[0].state, AgentState::Available);
        assert_eq!(snapshot.agents[0].answered, 1);
        drop(acd);
        task.await.expect("actor ends cleanly");
        let mut kinds = Vec::new();
        while let Ok(e) = events.try_recv() {
            kinds.push(e.kind);
        }
        let names: Vec<&str> = kinds
            .iter()
            .map(|k| match k {
                EventKind::AgentLogin { .. } => "login",
                EventKind::EnterQueue { .. } => "enter",
                EventKind::AgentOffered { .. } => "offered",
                EventKind::RingNoAnswer { .. } => "rna",
                EventKind::Connected { .. } => "connected",
                EventKind::CallEnded { .. } => "ended",
                _ => "other",
            })
            .collect();
        assert_eq!(
            names,
            [
                "login",
                "enter",
                "offered",
                "rna",
                "offered",
                "connected",
                "ended"
            ]
        );
        assert!(matches!(
            &kinds[5],
            EventKind::Connected {
                wait_ms: 15_000,
                ring_ms: 0,
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn refused_enqueues_get_a_leave_and_do_not_disturb_the_queued_call() {
        let (acd, _task, _events) = start();
        let mut first = acd.enqueue(request("c1", "q"));
        assert!(matches!(
            first.recv().await,
            Some(Instruction::Queued { .. })
        ));
        let mut again = acd.enqueue(request("c1", "q"));
        assert_eq!(
            again.recv().await,
            Some(Instruction::Leave {
                reason: LeaveReason::Rejected(InputError::DuplicateCall("c1".into())),
                next_step: None
            })
        );
        let mut lost = acd.enqueue(request("c2", "nope"));
        assert_eq!(
            lost.recv().await,
            Some(Instruction::Leave {
                reason: LeaveReason::Rejected(InputError::UnknownQueue("nope".into())),
                next_step: None
            })
        );
        assert_eq!(lost.recv().await, None);
        let snapshot = acd.snapshot().await.expect("running");
        assert_eq!(snapshot.queues[0].waiting.len(), 1);
        assert_eq!(
            acd.control("ghost", AgentAction::Login).await,
            Err(ControlError::UnknownAgent("ghost".into()))
        );
    }
}
