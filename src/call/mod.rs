//! Calls: each is a sans-IO core (`core`, composing the caller's leg `caller_leg`, the
//! flow `flow` and the far legs `far_leg`) driven by one tokio task (`driver`). The INVITE
//! is read once, here at the edge, into a typed `incoming::Invite`. What every call shares
//! is in `CallContext`, built once by the engine.

pub mod announce;
mod caller_leg;
pub mod core;
mod driver;
mod far_leg;
mod flow;
mod identity;
mod incoming;
mod placing;
mod referral;
mod sent_sdp;
mod session_refresh;
mod speech;
#[cfg(test)]
mod test_plan;

use std::sync::Arc;
use std::time::Instant;

use rsip::Request;
use tokio::sync::watch;
use tracing::{Instrument, info_span, warn};

pub use placing::{TrunkRoute, TrunkRoutes};
pub use speech::SpeechAccess;

use crate::acd::AcdHandle;
use crate::dialplan::DialplanSet;
use crate::endpoint::{EndpointHandle, IncomingCall};
use crate::events::EventSink;
use crate::media::sdp::{Encryption, Security};
use crate::media::worker::Media;
use crate::prompts::PromptSet;
use crate::sip::transaction::ServerTxId;
use crate::sip::{build, headers};

pub use self::caller_leg::Answering;
use self::caller_leg::MediaSetup;
use self::core::CallCore;
use self::incoming::{Invite, Refusal};

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
    /// How calls are answered: ringing time, T1, session timers.
    pub answering: Answering,
    /// How an agent's REFER is carried out (`[sip] agent_refer`).
    pub agent_refer: crate::sip::AgentRefer,
    /// The named trunks: where each takes calls, and whether its calls must be SRTP.
    pub trunks: Arc<TrunkRoutes>,
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
    let IncomingCall {
        invite: request,
        tx,
        peer,
        local,
        trunk,
        events,
        endpoint,
    } = call;
    let tag = build::new_tag();
    let timers = &ctx.answering.timers;
    let invite = match Invite::read(request, tx, peer, local, trunk, &tag, timers) {
        Ok(i) => i,
        Err(refused) => {
            let (refusal, request) = *refused;
            return refuse_request(&endpoint, tx, &request, refusal);
        }
    };
    let refuse = |refusal: Refusal| refuse_request(&endpoint, tx, &invite.request, refusal);
    let flows = ctx.flows.borrow().clone();
    let Some(plan) = flows
        .dialplans
        .select(&invite.called, invite.trunk.as_deref())
        .cloned()
    else {
        warn!(called = %invite.called, "no dialplan takes this number");
        return refuse(Refusal::new(404));
    };
    let reach = ctx.media.reach(local.ip(), peer.addr.ip());
    let encryption = match &invite.trunk {
        Some(t) if ctx.trunks.routes.get(t).is_some_and(|r| r.srtp_required) => {
            Encryption::Required
        }
        _ => Encryption::Optional,
    };
    let security = Security::new(encryption);
    let negotiated = match caller_leg::negotiate(&invite, ctx.media.codecs(), &reach, &security) {
        Ok(n) => n,
        Err(r) => return refuse(r),
    };
    let media = match ctx.media.open(local.ip(), peer.addr.ip(), &invite.call_id) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "no media for the call");
            return refuse(Refusal::because(503, e.to_string()));
        }
    };
    let setup = MediaSetup {
        port: media.port,
        codecs: ctx.media.codecs().to_vec(),
        reach,
        session_id: rand::random::<u32>() as u64,
        security,
    };
    let flow = core::FlowSetup {
        flows,
        plan,
        rules: flow::FlowRules {
            has_acd: ctx.acd.is_some(),
            agent_refer: ctx.agent_refer,
        },
        trunks: ctx.trunks.clone(),
        wall: jiff::Timestamp::now(),
    };
    let core = CallCore::new(
        Instant::now(),
        invite,
        negotiated,
        setup,
        ctx.answering,
        flow,
    );
    driver::Driver::new(ctx.clone(), core, media, events)
        .run()
        .await;
}

/// Refuses a call before answering it (the engine is not ready, ...).
pub fn refuse(call: IncomingCall, code: u16) {
    refuse_request(&call.endpoint, call.tx, &call.invite, Refusal::new(code));
}

/// Answers the INVITE `request` (received in `tx`) with the refusal, and stops routing its
/// Call-ID: nothing of the call is left.
fn refuse_request(endpoint: &EndpointHandle, tx: ServerTxId, request: &Request, refusal: Refusal) {
    endpoint.respond(tx, refusal.response(request));
    let call_id = headers::call_id(&request.headers).unwrap_or_default();
    endpoint.unroute(call_id.to_owned());
}
