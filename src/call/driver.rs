//! The call task: the thin driver of one call's core (`core`). It owns the call's I/O: the
//! endpoint's channels for its legs, their media, the recognition session, the queue's
//! channel and announcement rendering. It feeds what happens on them to the core with
//! `now` and carries out the core's actions. Every decision is the core's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info};

use super::CallContext;
use super::caller_leg::MediaSetup;
use super::core::{CallAction, CallCore, LegRef, MediaOp};
use super::far_leg::{DialError, Dialled};
use super::flow::{AcdReport, Far, Service};
use super::speech::Listening;
use crate::acd::Instruction;
use crate::dialplan;
use crate::endpoint::{CallEvent, EndpointHandle};
use crate::media::clip::Clip;
use crate::media::sdp::{Encryption, Security};
use crate::media::session::SessionEvent;
use crate::media::worker::MediaLeg;
use crate::sip::build;
use crate::sip::uri::SipUri;
use crate::time::sleep_until;

/// How long a far leg's target may take to resolve: the call's task waits for it.
const DIAL_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// An announcement's queue position and its audio (none when it could not be rendered).
type Rendered = (u32, Option<Arc<Clip>>);
type Rendering = tokio::task::JoinHandle<Rendered>;

/// Routes a Call-ID to this call while it lives.
struct Route {
    endpoint: EndpointHandle,
    call_id: String,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.endpoint.unroute(self.call_id.clone());
    }
}

/// A far leg's I/O: its media and its route.
struct FarIo {
    media: MediaLeg,
    _route: Route,
}

pub(super) struct Driver {
    ctx: Arc<CallContext>,
    core: CallCore,
    caller_media: MediaLeg,
    caller_sip: mpsc::UnboundedReceiver<CallEvent>,
    /// The endpoint or the media worker is gone: nothing more comes from it.
    caller_closed: bool,
    _caller_route: Route,
    /// Every far leg's messages, which the core tells apart by Call-ID.
    far_sip_tx: mpsc::UnboundedSender<CallEvent>,
    far_sip: mpsc::UnboundedReceiver<CallEvent>,
    offer: Option<FarIo>,
    transfer: Option<FarIo>,
    /// The route of the heir (`Far::Heir`), which speaks on the caller's media.
    heir: Option<Route>,
    listening: Option<Listening>,
    instructions: Option<mpsc::UnboundedReceiver<Instruction>>,
    /// An announcement being rendered: the call goes on meanwhile, so an offer is never
    /// held up by text-to-speech.
    announcing: Option<Rendering>,
}

impl Driver {
    pub(super) fn new(
        ctx: Arc<CallContext>,
        core: CallCore,
        caller_media: MediaLeg,
        caller_sip: mpsc::UnboundedReceiver<CallEvent>,
    ) -> Driver {
        let (far_sip_tx, far_sip) = mpsc::unbounded_channel();
        let caller_route = Route {
            endpoint: ctx.endpoint.clone(),
            call_id: core.call_id().to_owned(),
        };
        Driver {
            ctx,
            core,
            caller_media,
            caller_sip,
            caller_closed: false,
            _caller_route: caller_route,
            far_sip_tx,
            far_sip,
            offer: None,
            transfer: None,
            heir: None,
            listening: None,
            instructions: None,
            announcing: None,
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            while let Some(action) = self.core.poll_action() {
                self.act(action).await;
            }
            if self.core.is_done() {
                break;
            }
            let timeout = self.core.poll_timeout();
            let queued = self.core.is_queued();
            let open = !self.caller_closed;
            tokio::select! {
                ev = self.caller_sip.recv(), if open => match ev {
                    Some(ev) => self.core.handle_sip(Instant::now(), ev),
                    None => self.caller_gone(),
                },
                ev = self.caller_media.events.recv(), if open => match ev {
                    Some(ev) => self.core.handle_media(Instant::now(), LegRef::Caller, ev),
                    None => self.caller_gone(),
                },
                Some(ev) = self.far_sip.recv() => self.core.handle_sip(Instant::now(), ev),
                ev = next_media(&mut self.offer) => {
                    self.core.handle_media(Instant::now(), LegRef::Far(Far::Offer), ev);
                }
                ev = next_media(&mut self.transfer) => {
                    self.core.handle_media(Instant::now(), LegRef::Far(Far::Transfer), ev);
                }
                _ = sleep_until(timeout) => self.core.handle_timeout(Instant::now()),
                ev = next_speech(&mut self.listening) => {
                    if let Some((id, speech)) = ev {
                        self.core.handle_speech(Instant::now(), id, speech);
                    }
                }
                i = next_instruction(&mut self.instructions), if queued => {
                    self.core.handle_instruction(Instant::now(), i);
                }
                done = next_announcement(&mut self.announcing) => {
                    self.announcing = None;
                    if let Ok((position, clip)) = done {
                        self.core.handle_announcement(Instant::now(), position, clip);
                    }
                }
            }
        }
        let outcome = self
            .core
            .outcome()
            .map_or_else(|| "not_connected".to_owned(), ToString::to_string);
        info!(keys = %self.core.keys(), %outcome, "call ended");
    }

    /// The endpoint or the caller's media worker stopped (the engine is going down): the
    /// call ends as at shutdown.
    fn caller_gone(&mut self) {
        self.caller_closed = true;
        self.core.handle_sip(Instant::now(), CallEvent::Shutdown);
    }

    async fn act(&mut self, action: CallAction) {
        match action {
            CallAction::Sip(command) => self.ctx.endpoint.command(command),
            CallAction::Media(leg, op) => self.media(leg, op),
            CallAction::Dial {
                far,
                target,
                srtp,
                trunk,
            } => {
                let dialled = match trunk {
                    Some(t) if self.ctx.endpoint.trunk_down(&t) => Err(DialError::Down(t)),
                    _ => self.dial(far, &target, srtp).await,
                };
                self.core.handle_dialled(Instant::now(), far, dialled);
            }
            CallAction::Release(Far::Heir) => self.heir = None,
            CallAction::Release(far) => {
                if let Some(io) = self.far(far) {
                    *io = None;
                }
            }
            CallAction::Service(service) => self.service(service),
        }
    }

    /// Passes the flow's request to the service it is for.
    fn service(&mut self, service: Service) {
        match service {
            Service::Listen { id, request } => {
                match self.ctx.speech.listen(&self.caller_media, id, &request) {
                    Ok(listening) => self.listening = Some(listening),
                    Err(why) => self.core.handle_speech(
                        Instant::now(),
                        id,
                        dialplan::Speech::Unavailable(why),
                    ),
                }
            }
            Service::StopListening(id) => {
                if self.listening.as_ref().is_some_and(|l| l.id == id) {
                    self.listening = None;
                }
            }
            Service::Enqueue(request) => {
                if let Some(acd) = &self.ctx.acd {
                    self.instructions = Some(acd.enqueue(request));
                }
            }
            Service::Acd(report) => {
                let Some(acd) = &self.ctx.acd else { return };
                let call_id = self.core.call_id();
                match report {
                    AcdReport::OfferOutcome(offer, outcome) => {
                        acd.offer_outcome(call_id, offer, outcome)
                    }
                    AcdReport::CallEnded(by) => acd.call_ended(call_id, by),
                    AcdReport::CallerGone(by) => acd.caller_gone(call_id, by),
                }
            }
            Service::Announce {
                language,
                position,
                wait,
            } => {
                let announcer = self.ctx.announcer.clone();
                self.announcing = Some(tokio::spawn(async move {
                    (position, announcer.clip(&language, position, wait).await)
                }));
            }
            Service::Event(kind) => self.ctx.events.emit(kind),
        }
    }

    fn media(&mut self, leg: LegRef, op: MediaOp) {
        if let MediaOp::Bridge(far) = op {
            let other = far.and_then(|f| match f {
                Far::Offer => self.offer.as_ref(),
                Far::Transfer => self.transfer.as_ref(),
                Far::Heir => None,
            });
            return self.caller_media.bridge(other.map(|io| &io.media));
        }
        let media = match leg {
            LegRef::Caller => &mut self.caller_media,
            LegRef::Far(f) => match self.far(f).and_then(Option::as_mut) {
                Some(io) => &mut io.media,
                None => return,
            },
        };
        match op {
            MediaOp::Start(n) => {
                debug!(?leg, codec = n.codec.name(), srtp = n.srtp.is_some(), remote = %n.remote, "media");
                media.start(n)
            }
            MediaOp::Play { id, clip } => media.play(id, clip),
            MediaOp::Stop => media.stop(),
            MediaOp::Bridge(_) => {}
        }
    }

    /// Finds `target`, opens media for it beside the caller's (the heir takes the caller's
    /// own) and routes its Call-ID here.
    /// The call's task waits for the name lookup, so a resolver that does not answer is
    /// given up on after `DIAL_LOOKUP_TIMEOUT` (the target is then unresolvable, and a
    /// transfer through named trunks moves on to the next).
    async fn dial(&mut self, far: Far, target: &str, srtp: bool) -> Result<Dialled, DialError> {
        let uri = SipUri::parse(target).ok_or_else(|| DialError::BadTarget(target.to_owned()))?;
        let (peer, local) =
            tokio::time::timeout(DIAL_LOOKUP_TIMEOUT, self.ctx.endpoint.locate(&uri))
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| DialError::Unresolvable(target.to_owned()))?;
        let addr = peer.addr;
        let call_id = build::new_call_id();
        let media = match far {
            Far::Heir => None,
            _ => Some(self.ctx.media.open_beside(
                &self.caller_media,
                local.ip(),
                addr.ip(),
                &format!("{call_id}-far"),
            )?),
        };
        let setup = MediaSetup {
            port: media.as_ref().map_or(self.caller_media.port, |m| m.port),
            codecs: self.ctx.media.codecs().to_vec(),
            reach: self.ctx.media.reach(local.ip(), addr.ip()),
            session_id: rand::random::<u32>() as u64,
            // RTP to the phones and PBXs we call, unless the trunk's calls are encrypted.
            security: Security::new(if srtp {
                Encryption::Required
            } else {
                Encryption::Optional
            }),
        };
        self.ctx
            .endpoint
            .route(call_id.clone(), self.far_sip_tx.clone());
        let route = Route {
            endpoint: self.ctx.endpoint.clone(),
            call_id: call_id.clone(),
        };
        match (self.far(far), media) {
            (Some(io), Some(media)) => {
                *io = Some(FarIo {
                    media,
                    _route: route,
                })
            }
            _ => self.heir = Some(route),
        }
        Ok(Dialled {
            call_id,
            peer,
            local,
            media: setup,
            credentials: self.ctx.endpoint.credentials_for(addr),
        })
    }

    /// A far leg's own I/O; the heir has none but its route.
    fn far(&mut self, far: Far) -> Option<&mut Option<FarIo>> {
        match far {
            Far::Offer => Some(&mut self.offer),
            Far::Transfer => Some(&mut self.transfer),
            Far::Heir => None,
        }
    }
}

async fn next_media(io: &mut Option<FarIo>) -> SessionEvent {
    match io {
        Some(io) => match io.media.events.recv().await {
            Some(ev) => ev,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn next_speech(
    listening: &mut Option<Listening>,
) -> Option<(dialplan::ListenId, dialplan::Speech)> {
    match listening {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

async fn next_announcement(
    announcing: &mut Option<Rendering>,
) -> Result<Rendered, tokio::task::JoinError> {
    match announcing {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

async fn next_instruction(
    instructions: &mut Option<mpsc::UnboundedReceiver<Instruction>>,
) -> Option<Instruction> {
    match instructions {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
