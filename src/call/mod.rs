//! Calls: one tokio task per call that owns its dialog and media handle (`inbound`), and
//! runs the call flow on them.

mod inbound;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tracing::{Instrument, info, info_span};

pub use inbound::{EndReason, InboundLeg, LegEvent, host_port};

use crate::endpoint::{CallStarter, IncomingCall};
use crate::media::clip::Clip;
use crate::media::worker::Media;
use crate::sip::headers;

/// The `[flow]` section: the first call flow, until dialplans drive calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// 8 kHz WAV played to every answered call, which is then hung up. Empty: no prompt;
    /// the call stays up until the caller hangs up (or its media times out).
    pub prompt: String,
    /// How long the caller hears ringing (180) before we answer.
    pub answer_delay_ms: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            prompt: "prompts/welcome.wav".into(),
            answer_delay_ms: 0,
        }
    }
}

/// What every call task shares.
pub struct CallContext {
    pub media: Media,
    pub prompt: Option<Arc<Clip>>,
    pub answer_delay: Duration,
}

/// The `CallStarter` the endpoint calls for each new INVITE: a task per call, in a span
/// keyed by its Call-ID.
pub fn starter(ctx: Arc<CallContext>) -> CallStarter {
    Arc::new(move |call: IncomingCall| {
        let ctx = ctx.clone();
        let call_id = headers::call_id(&call.invite.headers)
            .unwrap_or_default()
            .to_owned();
        let span = info_span!("call", id = %call_id);
        tokio::spawn(run(ctx, call).instrument(span));
    })
}

async fn run(ctx: Arc<CallContext>, call: IncomingCall) {
    let Ok(mut leg) = InboundLeg::answer(&ctx.media, call, ctx.answer_delay).await else {
        return;
    };
    let prompt = ctx.prompt.clone().map(|clip| leg.play(clip));
    let mut keys = String::new();
    let reason = loop {
        match leg.next_event().await {
            LegEvent::Dtmf(k) => keys.push(k),
            LegEvent::PlayDone(id) if Some(id) == prompt => {
                leg.bye().await;
                break "prompt played";
            }
            LegEvent::PlayDone(_) => {}
            LegEvent::Ended(r) => {
                break match r {
                    EndReason::CallerHungUp => "caller hung up",
                    EndReason::Cancelled => "cancelled",
                    EndReason::MediaTimeout => "media timeout",
                    EndReason::NoAck => "no ACK",
                    EndReason::Shutdown => "shutdown",
                };
            }
        }
    };
    info!(keys = %keys, reason, "call ended");
}
