//! Calls: one tokio task per call (`driver`) that owns its legs (`inbound`, `agent`) and
//! drives its sans-IO core (`core`: the dialplan interpreter, the queue, the offer, the
//! transfer and the outcome). What every call shares is in
//! `CallContext`, built once by the engine.

mod agent;
pub mod announce;
pub mod core;
mod driver;
mod inbound;
mod speech;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{Instrument, info_span, warn};

pub use agent::percent_encode;
pub use inbound::{EndReason, InboundLeg, LegEvent, host_port, refuse};
pub use speech::SpeechAccess;

use crate::acd::AcdHandle;
use crate::dialplan::DialplanSet;
use crate::endpoint::{EndpointHandle, IncomingCall};
use crate::events::{EventKind, EventSink};
use crate::media::worker::Media;
use crate::prompts::PromptSet;
use crate::sip::headers;

/// The call flows in force: dialplans and their prompt audio, swapped together on reload.
/// A call keeps the set it started with.
pub struct Flows {
    pub dialplans: DialplanSet,
    pub prompts: PromptSet,
}

/// What every call task shares.
pub struct CallContext {
    pub media: Media,
    pub endpoint: EndpointHandle,
    pub flows: watch::Receiver<Arc<Flows>>,
    pub acd: Option<AcdHandle>,
    pub speech: SpeechAccess,
    pub events: EventSink,
    pub announcer: Arc<announce::Announcer>,
    /// How long the caller hears ringing (180) before the answer.
    pub answer_delay: Duration,
}

/// Starts the task of a new call, in a span keyed by its Call-ID.
pub fn start(ctx: &Arc<CallContext>, call: IncomingCall) {
    let call_id = headers::call_id(&call.invite.headers)
        .unwrap_or_default()
        .to_owned();
    let span = info_span!("call", id = %call_id);
    tokio::spawn(run(ctx.clone(), call).instrument(span));
}

async fn run(ctx: Arc<CallContext>, call: IncomingCall) {
    let flows = ctx.flows.borrow().clone();
    let called = inbound::called_number(&call.invite);
    let Some(plan) = flows
        .dialplans
        .select(&called, call.trunk.as_deref())
        .cloned()
    else {
        warn!(%called, "no dialplan takes this number");
        return refuse(call, 404);
    };
    let Ok(leg) = InboundLeg::answer(&ctx.media, call, ctx.answer_delay).await else {
        return;
    };
    ctx.events.emit(EventKind::CallOffered {
        call_id: leg.call_id.clone(),
        caller: leg.caller.clone(),
        called: leg.called.clone(),
    });
    driver::Driver::new(ctx.clone(), flows, plan, leg)
        .run()
        .await;
}
