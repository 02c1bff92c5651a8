//! Media workers: the tokio edge of media. Each worker is one task that owns the RTP
//! sockets and sessions of its share of the call legs and wakes every 20 ms to move all of
//! their audio at once (one shared clock rather than a timer per call). Call tasks talk to
//! it through a `MediaLeg` handle; dropping the handle closes the leg and frees its port.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::clip::Clip;
use super::codec::{Audio, Codec, FRAME_SAMPLES, WIDE_SAMPLES};
use super::recorder::Recorder;
use super::sdp::{Negotiated, Reach};
use super::session::{MAX_PACKET, MediaSession, PlayId, SessionEvent};
use super::{MediaConfig, RecordingConfig};
use crate::cidr::Cidr;
use crate::metrics::{Counter, Gauge, Registry};

/// The packet clock every worker runs on.
pub const TICK: Duration = Duration::from_millis(20);

pub type LegId = u64;

/// Where received audio goes besides the recorder (a speech recognizer): 8 kHz samples,
/// and the 16 kHz ones when the leg's codec is wideband (else empty). Called on the
/// worker, so it must not block.
pub type AudioTap = Box<dyn FnMut(&[i16], &[i16]) + Send>;

enum Command {
    Start {
        leg: LegId,
        socket: StdUdpSocket,
        neg: Negotiated,
        signalling: IpAddr,
        events: mpsc::UnboundedSender<SessionEvent>,
        record: Option<PathBuf>,
    },
    Update(LegId, Negotiated),
    Play(LegId, PlayId, Arc<Clip>),
    Stop(LegId),
    Tap(LegId, Option<AudioTap>),
    /// Relay audio between two legs of this worker (both ways); `None` unbridges.
    Bridge(LegId, Option<LegId>),
    Close(LegId),
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free RTP port in {min}-{max}")]
    NoPort { min: u16, max: u16 },
    #[error("binding an RTP socket: {0}")]
    Bind(io::Error),
}

/// Hands out even RTP ports round-robin; the OS knows which are taken, so a port is free
/// again as soon as its socket is dropped.
struct Ports {
    min: u16,
    max: u16,
    cursor: AtomicU32,
}

impl Ports {
    fn bind(&self, ip: IpAddr) -> Result<StdUdpSocket, MediaError> {
        let first = self.min + (self.min % 2);
        let count = ((self.max.saturating_sub(first)) / 2 + 1) as u32;
        for _ in 0..count {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % count;
            let port = first + (i * 2) as u16;
            match StdUdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(s) => {
                    s.set_nonblocking(true).map_err(MediaError::Bind)?;
                    return Ok(s);
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(MediaError::Bind(e)),
            }
        }
        Err(MediaError::NoPort {
            min: self.min,
            max: self.max,
        })
    }
}

struct Metrics {
    legs: Arc<Gauge>,
    rx: Arc<Counter>,
    tx: Arc<Counter>,
    lost: Arc<Counter>,
    ignored: Arc<Counter>,
    foreign: Arc<Counter>,
    late_ticks: Arc<Counter>,
}

/// The count of media ticks that started more than 10 ms late: the workers are short of
/// CPU. The endpoint reads it to stop admitting calls.
pub fn late_ticks(registry: &Registry) -> Arc<Counter> {
    registry.counter(
        "hotline_media_late_ticks_total",
        "Media ticks that started more than 10 ms late (the workers are overloaded)",
        &[],
    )
}

/// The media side of the engine: start once, then open a leg per call.
#[derive(Clone)]
pub struct Media {
    workers: Arc<[mpsc::UnboundedSender<Command>]>,
    next_worker: Arc<AtomicUsize>,
    next_leg: Arc<AtomicU64>,
    ports: Arc<Ports>,
    codecs: Arc<[Codec]>,
    recording: Option<PathBuf>,
    networks: Arc<[Cidr]>,
}

impl Media {
    /// Spawns the workers on the current tokio runtime. `trusted` are the networks audio
    /// may go to besides each call's signalling peer (the trunks'), to which
    /// `[media] remote_networks` adds.
    pub fn start(
        config: &MediaConfig,
        recording: &RecordingConfig,
        registry: &Registry,
        trusted: Vec<Cidr>,
    ) -> Media {
        let n = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let metrics = Arc::new(Metrics {
            legs: registry.gauge("hotline_media_legs", "RTP legs open", &[]),
            rx: registry.counter(
                "hotline_rtp_packets_received_total",
                "RTP packets received",
                &[],
            ),
            tx: registry.counter("hotline_rtp_packets_sent_total", "RTP packets sent", &[]),
            lost: registry.counter(
                "hotline_rtp_packets_lost_total",
                "RTP packets never received (sequence gaps)",
                &[],
            ),
            ignored: registry.counter(
                "hotline_rtp_packets_ignored_total",
                "Datagrams on RTP ports that were not RTP of an agreed payload type",
                &[],
            ),
            foreign: registry.counter(
                "hotline_rtp_packets_foreign_total",
                "Datagrams on RTP ports from a source other than the call's negotiated peer (dropped)",
                &[],
            ),
            late_ticks: late_ticks(registry),
        });
        let timeout = Duration::from_secs(config.media_timeout_s);
        let jitter = Duration::from_millis(config.jitter_ms);
        let workers: Vec<_> = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run(rx, timeout, jitter, metrics.clone()));
                tx
            })
            .collect();
        let mut networks = trusted;
        // Checked with the config (`MediaConfig::problems`) before the engine starts.
        networks.extend(
            config
                .remote_networks
                .iter()
                .filter_map(|c| c.parse::<Cidr>().ok()),
        );
        Media {
            networks: networks.into(),
            workers: workers.into(),
            next_worker: Arc::default(),
            next_leg: Arc::default(),
            ports: Arc::new(Ports {
                min: config.rtp_port_min,
                max: config.rtp_port_max,
                cursor: AtomicU32::new(0),
            }),
            codecs: config.codec_list().into(),
            recording: recording.enabled.then(|| PathBuf::from(&recording.dir)),
        }
    }

    /// The codecs we accept, in the order our offers list them.
    pub fn codecs(&self) -> &[Codec] {
        &self.codecs
    }

    /// Where the audio of a call signalled by `peer` may go, sent from `local`.
    pub fn reach(&self, local: IpAddr, peer: IpAddr) -> Reach {
        Reach {
            local,
            peer,
            networks: self.networks.clone(),
        }
    }

    /// Binds a port on `ip` for a new leg on the next worker. `peer` is where the leg's
    /// signalling comes from: RTP is accepted from its address or the SDP's only.
    /// `name` names its recording.
    pub fn open(&self, ip: IpAddr, peer: IpAddr, name: &str) -> Result<MediaLeg, MediaError> {
        let worker = self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        self.open_on(worker, ip, peer, name)
    }

    /// Binds a port for a leg on the same worker as `other`, so the two can be bridged.
    pub fn open_beside(
        &self,
        other: &MediaLeg,
        ip: IpAddr,
        peer: IpAddr,
        name: &str,
    ) -> Result<MediaLeg, MediaError> {
        self.open_on(other.worker, ip, peer, name)
    }

    fn open_on(
        &self,
        worker: usize,
        ip: IpAddr,
        peer: IpAddr,
        name: &str,
    ) -> Result<MediaLeg, MediaError> {
        let socket = self.ports.bind(ip)?;
        let port = socket.local_addr().map_err(MediaError::Bind)?.port();
        let record = self.recording.as_ref().map(|dir| {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            dir.join(format!("{safe}.wav"))
        });
        let (events_tx, events) = mpsc::unbounded_channel();
        Ok(MediaLeg {
            id: self.next_leg.fetch_add(1, Ordering::Relaxed),
            worker,
            port,
            tx: self.workers[worker].clone(),
            signalling: peer,
            pending: Some((socket, events_tx, record)),
            events,
        })
    }
}

/// One call leg's media, held by its call task.
pub struct MediaLeg {
    id: LegId,
    worker: usize,
    pub port: u16,
    tx: mpsc::UnboundedSender<Command>,
    /// Where the leg's signalling comes from.
    signalling: IpAddr,
    pending: Option<(
        StdUdpSocket,
        mpsc::UnboundedSender<SessionEvent>,
        Option<PathBuf>,
    )>,
    /// Key presses, ends of playback and media timeouts, in order.
    pub events: mpsc::UnboundedReceiver<SessionEvent>,
}

impl MediaLeg {
    /// Starts sending and receiving once offer/answer is done; later calls update the
    /// session (re-INVITE).
    pub fn start(&mut self, neg: Negotiated) {
        let cmd = match self.pending.take() {
            Some((socket, events, record)) => Command::Start {
                leg: self.id,
                socket,
                neg,
                signalling: self.signalling,
                events,
                record,
            },
            None => Command::Update(self.id, neg),
        };
        self.send(cmd);
    }

    pub fn play(&self, id: PlayId, clip: Arc<Clip>) {
        self.send(Command::Play(self.id, id, clip));
    }

    pub fn stop(&self) {
        self.send(Command::Stop(self.id));
    }

    /// A handle that sets where this leg's received audio goes, held apart from the leg
    /// (by a recognition in progress).
    pub fn tap_handle(&self) -> TapHandle {
        TapHandle {
            leg: self.id,
            tx: self.tx.clone(),
        }
    }

    /// Relays audio both ways with `other` (opened with `Media::open_beside`), or stops.
    pub fn bridge(&self, other: Option<&MediaLeg>) {
        self.send(Command::Bridge(self.id, other.map(|o| o.id)));
    }

    fn send(&self, cmd: Command) {
        // The worker lives as long as the runtime; a send fails only at shutdown.
        let _ = self.tx.send(cmd);
    }
}

/// Sets a leg's audio tap; see `MediaLeg::tap_handle`.
pub struct TapHandle {
    leg: LegId,
    tx: mpsc::UnboundedSender<Command>,
}

impl TapHandle {
    pub fn set(&self, tap: Option<AudioTap>) {
        let _ = self.tx.send(Command::Tap(self.leg, tap));
    }
}

impl Drop for MediaLeg {
    fn drop(&mut self) {
        if self.pending.is_none() {
            self.send(Command::Close(self.id));
        }
    }
}

struct Entry {
    /// Non-blocking and not registered with the reactor: the worker reads it on every
    /// tick anyway, and a registered socket would raise a readiness event for every
    /// packet in or out.
    socket: StdUdpSocket,
    session: MediaSession,
    events: mpsc::UnboundedSender<SessionEvent>,
    recorder: Option<Recorder>,
    tap: Option<Tap>,
    bridged: Option<LegId>,
    lost_reported: u64,
}

/// A tap with its audio clock: a recognizer's timers run on the audio it is given, so ticks
/// without received audio (silence suppression, loss) are filled with silence.
struct Tap {
    sink: AudioTap,
    /// Samples owed to the tap by the clock minus samples given.
    owed: i64,
}

/// How far the tap may lag the clock (the jitter buffer's delay) before silence is added.
const TAP_SLACK: i64 = 3 * FRAME_SAMPLES as i64;

async fn run(
    mut rx: mpsc::UnboundedReceiver<Command>,
    timeout: Duration,
    jitter: Duration,
    metrics: Arc<Metrics>,
) {
    let mut legs: HashMap<LegId, Entry> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut scratch = Scratch::default();
    loop {
        let due = tick.tick().await;
        // Commands wait for the tick rather than wake the worker each: a call's start,
        // prompts and end cost no task wake-ups, and their audio starts on a tick anyway.
        loop {
            match rx.try_recv() {
                Ok(cmd) => apply(&mut legs, cmd, timeout, jitter, &metrics),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        let now = Instant::now();
        if now.duration_since(due.into_std()) > Duration::from_millis(10) {
            metrics.late_ticks.inc();
        }
        process(&mut legs, now, &metrics, &mut scratch);
    }
}

fn apply(
    legs: &mut HashMap<LegId, Entry>,
    cmd: Command,
    timeout: Duration,
    jitter: Duration,
    metrics: &Metrics,
) {
    match cmd {
        Command::Start {
            leg,
            socket,
            neg,
            signalling,
            events,
            record,
        } => {
            let recorder = record.and_then(|path| match Recorder::create(&path) {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot record");
                    None
                }
            });
            metrics.legs.inc();
            legs.insert(
                leg,
                Entry {
                    socket,
                    session: MediaSession::new(Instant::now(), neg, signalling, timeout, jitter),
                    events,
                    recorder,
                    tap: None,
                    bridged: None,
                    lost_reported: 0,
                },
            );
        }
        Command::Update(leg, neg) => {
            if let Some(e) = legs.get_mut(&leg) {
                e.session.update(Instant::now(), neg);
            }
        }
        Command::Play(leg, id, clip) => {
            if let Some(e) = legs.get_mut(&leg) {
                e.session.play(id, clip);
            }
        }
        Command::Stop(leg) => {
            if let Some(e) = legs.get_mut(&leg) {
                e.session.stop();
            }
        }
        Command::Tap(leg, tap) => {
            if let Some(e) = legs.get_mut(&leg) {
                e.tap = tap.map(|sink| Tap { sink, owed: 0 });
            }
        }
        Command::Bridge(leg, other) => {
            let previous = legs
                .get_mut(&leg)
                .and_then(|e| std::mem::replace(&mut e.bridged, other));
            for (a, b) in [(previous, None), (other, Some(leg))] {
                if let Some(e) = a.and_then(|a| legs.get_mut(&a)) {
                    e.bridged = b;
                }
            }
        }
        Command::Close(leg) => {
            if let Some(mut e) = legs.remove(&leg) {
                metrics.legs.dec();
                let frames: Vec<_> = e.session.drain_frames().collect();
                if let Some(mut rec) = e.recorder.take() {
                    let (mut pcm, mut wide) = (Vec::new(), Vec::new());
                    for f in frames {
                        e.session.decode(f.payload(), &mut pcm, &mut wide);
                        let _ = rec.write(f.timestamp, &pcm);
                    }
                    if let Err(err) = rec.finish() {
                        warn!(error = %err, "finishing a recording failed");
                    }
                }
                report_loss(&mut e, metrics);
                if let Some(other) = e.bridged.and_then(|b| legs.get_mut(&b)) {
                    other.bridged = None;
                }
                debug!(leg, "media leg closed");
            }
        }
    }
}

fn report_loss(e: &mut Entry, metrics: &Metrics) {
    let lost = e.session.jitter_stats().lost;
    metrics.lost.add(lost - e.lost_reported);
    e.lost_reported = lost;
}

/// Buffers one worker reuses every tick, so a steady call allocates nothing.
#[derive(Default)]
struct Scratch {
    datagram: Vec<u8>,
    pcm: Vec<i16>,
    wide: Vec<i16>,
    relays: Vec<(LegId, Audio)>,
}

fn process(legs: &mut HashMap<LegId, Entry>, now: Instant, metrics: &Metrics, s: &mut Scratch) {
    s.datagram.resize(2048, 0);
    let mut packet = [0u8; MAX_PACKET];
    // Counted here and added to the shared counters once per tick, not per leg.
    let (mut rx, mut tx, mut ignored, mut foreign) = (0u64, 0u64, 0u64, 0u64);
    for e in legs.values_mut() {
        let ignored_before = e.session.counters.rx_ignored;
        let foreign_before = e.session.counters.rx_foreign;
        while let Ok((n, from)) = e.socket.recv_from(&mut s.datagram) {
            e.session.on_datagram(now, from, &s.datagram[..n]);
            rx += 1;
        }
        ignored += e.session.counters.rx_ignored - ignored_before;
        foreign += e.session.counters.rx_foreign - foreign_before;
        while let Some(frame) = e.session.poll_frame(now) {
            e.session.decode(frame.payload(), &mut s.pcm, &mut s.wide);
            if let Some(rec) = e.recorder.as_mut()
                && let Err(err) = rec.write(frame.timestamp, &s.pcm)
            {
                warn!(error = %err, "recording failed; stopping it");
                e.recorder = None;
            }
            if let Some(tap) = e.tap.as_mut() {
                (tap.sink)(&s.pcm, &s.wide);
                tap.owed -= s.pcm.len() as i64;
            }
            if let Some(other) = e.bridged {
                // A packet longer than 20 ms is relayed 20 ms at a time; the wideband side,
                // when there is one, is cut at the same points.
                let wide_chunks = s.wide.chunks(WIDE_SAMPLES).map(Some);
                let wide_chunks = wide_chunks.chain(std::iter::repeat(None));
                for (chunk, wide) in s.pcm.chunks(FRAME_SAMPLES).zip(wide_chunks) {
                    s.relays
                        .push((other, Audio::new(chunk, wide.unwrap_or_default())));
                }
            }
        }
        if let Some(tap) = e.tap.as_mut() {
            tap.owed += FRAME_SAMPLES as i64;
            while tap.owed > TAP_SLACK {
                (tap.sink)(&[0; FRAME_SAMPLES], &[]);
                tap.owed -= FRAME_SAMPLES as i64;
            }
        }
        if let Some((n, to)) = e.session.tick(now, &mut packet)
            && e.socket.send_to(&packet[..n], to).is_ok()
        {
            tx += 1;
        }
        while let Some(ev) = e.session.poll_event() {
            let _ = e.events.send(ev);
        }
        if e.session.jitter_stats().lost != e.lost_reported {
            report_loss(e, metrics);
        }
    }
    for (leg, audio) in s.relays.drain(..) {
        if let Some(e) = legs.get_mut(&leg) {
            e.session.relay(audio);
        }
    }
    metrics.rx.add(rx);
    metrics.tx.add(tx);
    metrics.ignored.add(ignored);
    metrics.foreign.add(foreign);
}
