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
    pub fn caller_gone(&self, call_id: &str) {
        self.send(AcdMsg::Input(Input::CallerGone {
            call_id: call_id.to_owned(),
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
        let msg = match router.next_timeout() {
            Some(at) => tokio::select! {
                msg = rx.recv() => msg,
                () = tokio::time::sleep_until(at.into()) => {
                    router.handle_timeout(now());
                    deliver(&mut router, &mut calls, &events);
                    continue;
                }
            },
            None => rx.recv().await,
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
