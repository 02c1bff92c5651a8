//! Headless baresip phones as agent seats for the integration tests: this module owns the
//! baresip processes it starts (their config folder, ports, control connection, recordings)
//! and kills them when dropped. It never touches `~/.baresip` nor any audio hardware.
//!
//! # How a phone runs
//! `baresip -f <phone dir> -s` with `HOME` set to the phone's folder, stdin from /dev/null,
//! stdout (log and SIP trace) kept in `<phone dir>/baresip.log`. The harness talks to it
//! over the `ctrl_tcp` module: netstrings (`<len>:<json>,`) carrying
//! `{"command":"accept","params":"","token":"7"}`, answered by
//! `{"response":true,"ok":true,"data":"...","token":"7"}`; every UA event arrives as
//! `{"event":true,"type":"CALL_ESTABLISHED","id":"<Call-ID>","param":"...",...}`.
//! The account is created with the `uanew` command once the control connection is up,
//! so that no REGISTER_OK/REGISTER_FAIL can be emitted before anyone listens.
//! Answering is done by the harness (`accept` after the configured delay, on
//! CALL_INCOMING): one code path for "at once", "after a delay" and "never".
//!
//! # baresip 1.0.0 (Debian baresip-core, libre 1.1.0) traps found on the way
//! - Without `-f <dir>` it uses `~/.baresip`; with `-f` and no `config` file there it writes
//!   a template that loads alsa, stdio, stun/turn/ice: always write `config` first.
//!   The `account` module (reads `accounts`), `contact` and `uuid` modules also create files
//!   there: they are not loaded, the account comes from `uanew`.
//! - `net_interface` takes an interface *or an address*: `lo` fails here ("could not get
//!   IPv4 address"), `127.0.0.1` works.
//! - `stdio` fails with stdin not a terminal ("epoll_ctl ... fd=0 Operation not
//!   permitted"): do not load it; `ctrl_tcp` is the control interface.
//! - No `uareg` command in 1.0; `uanew <account line>` registers at once when `regint` is
//!   non-zero; `uadel <aor>` unregisters (REGISTER with `expires=0`) and deletes the UA.
//! - Account line: `<sip:user@host:port>;auth_pass=...;regint=N;answermode=manual;
//!   audio_codecs=pcmu,pcma`. The REGISTER goes to the AOR's host:port; `regint=0` means
//!   no REGISTER. The Contact user is `user-0x<pointer>` (e.g. `1001-0x55e9a7f27c50`),
//!   not the plain user: INVITE the registered Contact. An INVITE to the plain AOR user
//!   at the phone's address (`Baresip::uri`) is accepted too.
//! - The REGISTER: Request-URI `sip:<registrar host:port>`, To/From
//!   `sip:user@<registrar host:port>`, `Contact: <sip:user-0x..@127.0.0.1:port>;expires=N`
//!   and no Expires header; `Via ...;rport`. A registrar must read the Contact's expires
//!   parameter and may grant less or more (baresip follows the 200's value).
//! - Digest: MD5 only. A 401 whose WWW-Authenticate uses `algorithm=SHA-256` fails the
//!   registration with "Function not implemented" — and so does a 401 offering SHA-256
//!   *and* MD5 (RFC 8760 style, in either order): libre gives up on the first header it
//!   cannot do. `qop="auth"` works; the Authorization header carries no `algorithm=`.
//! - Wrong password: REGISTER_FAIL "401 Unauthorized" — but only after libre re-sent the
//!   same credentials ~15 times while the registrar kept answering with the *same*
//!   nonce (Kamailio does); a registrar that counts failures sees all of them.
//! - Every REGISTER (refreshes and the un-REGISTER too) starts without credentials and
//!   is challenged again: libre does not reuse a nonce. Refreshes come at 0.9 x the
//!   expires the registrar granted in its 200 (measured: 3.6 s for 4 s). After a
//!   REGISTER_FAIL it did not try again within 40 s (regint 60).
//! - `answermode=auto` answers without ever emitting CALL_INCOMING; with `manual` the
//!   phone sends 180 Ringing, emits CALL_INCOMING and waits for `accept`. `hangup` on a
//!   ringing call answers 486 Busy Here; on an answered one it sends BYE.
//! - Audio source `aufile,<wav>`: the file must be 16-bit mono at the codec's rate
//!   (8 kHz for G.711, 16 kHz for G.722), is loaded whole, starts at answer, and the call is *hung up* when
//!   it ends (AUDIO_ERROR "end of file", then CALL_CLOSED): the harness pads it with
//!   silence up to `call_limit`. No audio player is loaded (there is no null player in
//!   1.0: aufile has no player); the decoder and filters still run.
//! - `sndfile` (filter, needs `snd_path`) writes `dump-YYYY-MM-DD-hh-mm-ss-dec.wav`
//!   (what the phone heard) and `...-enc.wav` (what it sent), 16-bit at the codec's rate, named by the
//!   *second* the first frame passed: two calls starting in the same second would share a
//!   name. The header is only complete once the call is freed (just after CALL_CLOSED),
//!   so the harness waits for a consistent RIFF size and renames them `callN-heard.wav`
//!   / `callN-sent.wav`.
//! - The call status line (`[0:00:01] audio=...` with `\r`) floods stdout unless
//!   `statmode_default off`.
//! - `rtp_ports a-b`: baresip picks random ports in the range per call and retries on a
//!   busy one; RTP and RTCP take two ports unless `rtcp_mux yes`.
//! - Without stun/turn/ice modules there is no STUN/ICE; one codec module is loaded
//!   (`PhoneOptions::codec`): `g711.so` by default, so the SDP answer holds PCMU/PCMA and
//!   telephone-event/8000 (payload type 101) when offered; `g722.so` (spandsp's G.722)
//!   offers and answers `9 G722/8000` alone.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::{free_port, free_udp_block, wait_closed, wait_until};

/// How long a command may take to be answered over the control connection.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Ports in each phone's RTP range: baresip picks random ones in it per call.
const RTP_SPAN: u16 = 20;

/// What a phone is and how it behaves.
#[derive(Clone, Debug)]
pub struct PhoneOptions {
    pub user: String,
    pub password: String,
    /// The registrar it REGISTERs with (digest auth); `None`: no REGISTER, the phone is
    /// reached at its own address (`Baresip::uri`).
    pub registrar: Option<SocketAddr>,
    /// Registration interval asked for (`expires`), in seconds.
    pub regint: u32,
    /// `Some(d)`: answers `d` after the INVITE (180 Ringing meanwhile); `None`: rings
    /// until the caller cancels or `Baresip::hangup` rejects it.
    pub answer_after: Option<Duration>,
    /// 8 kHz mono 16-bit WAV played to the caller once answered; silence after it.
    pub play: Option<PathBuf>,
    /// The phone hangs up by itself this long after answering (its audio file ends).
    pub call_limit: Duration,
    /// baresip's `mediaenc` for the account: `Some("srtp-mand")` offers and accepts SDES
    /// SRTP only (its `srtp` module, libsrtp's transforms).
    pub media_encryption: Option<&'static str>,
    /// The one codec module loaded.
    pub codec: PhoneCodec,
}

/// The codec module a phone loads, and the audio rate its files are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhoneCodec {
    /// `g711.so`: PCMU and PCMA, 8 kHz.
    G711,
    /// `g722.so`: G.722 only, 16 kHz.
    G722,
}

impl PhoneCodec {
    fn module(self) -> &'static str {
        match self {
            PhoneCodec::G711 => "g711.so",
            PhoneCodec::G722 => "g722.so",
        }
    }

    pub fn sample_rate(self) -> u32 {
        match self {
            PhoneCodec::G711 => 8000,
            PhoneCodec::G722 => 16000,
        }
    }
}

impl PhoneOptions {
    /// An agent seat registering with `registrar` and answering at once.
    pub fn agent(user: &str, password: &str, registrar: SocketAddr) -> PhoneOptions {
        PhoneOptions {
            password: password.to_owned(),
            registrar: Some(registrar),
            ..PhoneOptions::unregistered(user)
        }
    }

    /// A phone that does not register and answers at once: call it at `Baresip::uri`.
    pub fn unregistered(user: &str) -> PhoneOptions {
        PhoneOptions {
            user: user.to_owned(),
            password: String::new(),
            registrar: None,
            regint: 60,
            answer_after: Some(Duration::ZERO),
            play: None,
            call_limit: Duration::from_secs(120),
            media_encryption: None,
            codec: PhoneCodec::G711,
        }
    }
}

/// The outcome of a registration attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    Registered,
    /// REGISTER_FAIL with baresip's reason, e.g. "401 Unauthorized".
    Failed(String),
    TimedOut,
}

/// One event from the phone (`type` of the ctrl_tcp event JSON).
#[derive(Clone, Debug)]
pub struct PhoneEvent {
    pub kind: String,
    /// The SIP Call-ID, for call events.
    pub call_id: Option<String>,
    pub param: String,
    pub at: Instant,
}

/// The audio files of one ended call.
#[derive(Clone, Debug)]
pub struct Recording {
    pub call_id: String,
    /// What the phone heard (8 kHz mono 16-bit); `None` if no RTP arrived.
    pub heard: Option<PathBuf>,
    /// What the phone sent.
    pub sent: Option<PathBuf>,
}

#[derive(Default)]
struct State {
    events: Vec<PhoneEvent>,
    responses: HashMap<String, Result<String, String>>,
    recordings: Vec<Recording>,
}

/// What the control reader, the answering timers and the recording collector share.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    writer: Mutex<TcpStream>,
    next_token: AtomicU64,
    /// Collectors of consecutive calls must not rename each other's files.
    collecting: Mutex<()>,
}

/// A running baresip phone; killed when dropped.
pub struct Baresip {
    pub user: String,
    pub sip_port: u16,
    /// First and last port of its RTP range.
    pub rtp_ports: (u16, u16),
    /// This phone's folder: config, play.wav, baresip.log, rec/.
    pub dir: PathBuf,
    aor: String,
    child: Child,
    log: Arc<Mutex<String>>,
    shared: Arc<Shared>,
}

impl Baresip {
    /// Starts a phone under `dir/baresip-<user>-<port>/` and creates its account (which
    /// registers at once if `opts.registrar` is set). Retries with new ports if one was
    /// taken between picking and binding.
    pub fn start(dir: &Path, opts: PhoneOptions) -> Baresip {
        let mut last_log = String::new();
        for _ in 0..3 {
            match Baresip::try_start(dir, &opts) {
                Ok(phone) => return phone,
                Err(log) if log.contains("Address already in use") => last_log = log,
                Err(log) => panic!("baresip for {} did not start:\n{log}", opts.user),
            }
        }
        panic!("baresip for {} found no free ports:\n{last_log}", opts.user);
    }

    fn try_start(dir: &Path, opts: &PhoneOptions) -> Result<Baresip, String> {
        let sip_port = free_port();
        let ctrl_port = free_port();
        let rtp = free_udp_block(RTP_SPAN);
        let rtp = (rtp, rtp + RTP_SPAN - 1);
        let home = dir.join(format!("baresip-{}-{sip_port}", opts.user));
        let rec = home.join("rec");
        std::fs::create_dir_all(&rec).expect("create the phone's folder");
        let play = home.join("play.wav");
        write_padded(
            opts.play.as_deref(),
            opts.call_limit,
            opts.codec.sample_rate(),
            &play,
        );
        let config = format!(
            "sip_listen\t127.0.0.1:{sip_port}\n\
             net_interface\t127.0.0.1\n\
             rtp_ports\t{}-{}\n\
             rtcp_mux\tno\n\
             call_max_calls\t4\n\
             audio_source\taufile,{}\n\
             module_path\t/usr/lib/baresip/modules\n\
             module\t{}\n\
             module\tsrtp.so\n\
             module\tsndfile.so\n\
             module\taufile.so\n\
             module_app\tmenu.so\n\
             module_app\tctrl_tcp.so\n\
             ctrl_tcp_listen\t127.0.0.1:{ctrl_port}\n\
             snd_path\t{}\n\
             statmode_default\toff\n",
            rtp.0,
            rtp.1,
            play.display(),
            opts.codec.module(),
            rec.display(),
        );
        std::fs::write(home.join("config"), config).expect("write the baresip config");

        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(&home)
            .arg("-s")
            .env("HOME", &home)
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run baresip (package baresip-core)");
        let log = Arc::new(Mutex::new(String::new()));
        let ready = keep_log(&mut child, &log, home.join("baresip.log"));
        let log_text = || log.lock().map(|l| l.clone()).unwrap_or_default();
        if ready.recv_timeout(Duration::from_secs(10)) != Ok(true) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(log_text());
        }
        let Ok(stream) = TcpStream::connect(("127.0.0.1", ctrl_port)) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(log_text());
        };
        let reader = stream.try_clone().expect("clone the control connection");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            writer: Mutex::new(stream),
            next_token: AtomicU64::new(1),
            collecting: Mutex::new(()),
        });
        {
            let shared = shared.clone();
            let answer_after = opts.answer_after;
            std::thread::spawn(move || read_control(reader, shared, answer_after, rec));
        }
        let (host, regint) = match opts.registrar {
            Some(registrar) => (registrar.to_string(), opts.regint),
            None => (format!("127.0.0.1:{sip_port}"), 0),
        };
        let aor = format!("sip:{}@{host}", opts.user);
        let phone = Baresip {
            user: opts.user.clone(),
            sip_port,
            rtp_ports: rtp,
            dir: home,
            aor,
            child,
            log,
            shared,
        };
        let mut account = format!(
            "<{}>;regint={regint};answermode=manual;audio_codecs=pcmu,pcma",
            phone.aor
        );
        if !opts.password.is_empty() {
            account.push_str(&format!(";auth_pass={}", opts.password));
        }
        if let Some(mediaenc) = opts.media_encryption {
            account.push_str(&format!(";mediaenc={mediaenc}"));
        }
        if let Err(e) = phone.command("uanew", &account) {
            return Err(format!("uanew failed: {e}\n{}", phone.log()));
        }
        Ok(phone)
    }

    /// The phone's own SIP address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    /// A URI that reaches the phone directly, without a registrar.
    pub fn uri(&self) -> String {
        format!("sip:{}@{}", self.user, self.addr())
    }

    /// Waits for the first REGISTER_OK or REGISTER_FAIL since the phone started.
    pub fn wait_registration(&self, timeout: Duration) -> Registration {
        self.wait_for(timeout, |s| {
            s.events.iter().find_map(|e| match e.kind.as_str() {
                "REGISTER_OK" => Some(Registration::Registered),
                "REGISTER_FAIL" => Some(Registration::Failed(e.param.clone())),
                _ => None,
            })
        })
        .unwrap_or(Registration::TimedOut)
    }

    /// Whether the latest registration event is a success (a refresh keeps it true; an
    /// un-REGISTER or a failed refresh makes it false).
    pub fn registered(&self) -> bool {
        self.with_state(|s| {
            s.events
                .iter()
                .rev()
                .find(|e| {
                    matches!(
                        e.kind.as_str(),
                        "REGISTER_OK" | "REGISTER_FAIL" | "UNREGISTERING"
                    )
                })
                .is_some_and(|e| e.kind == "REGISTER_OK")
        })
    }

    /// Calls offered to the phone (distinct Call-IDs).
    pub fn calls_received(&self) -> usize {
        self.with_state(|s| call_ids(&s.events).len())
    }

    pub fn calls_answered(&self) -> usize {
        self.count("CALL_ESTABLISHED")
    }

    pub fn calls_ended(&self) -> usize {
        self.count("CALL_CLOSED")
    }

    /// The most calls the phone had at once (ringing or answered): above 1 means the
    /// agent was double-booked.
    pub fn max_concurrent_calls(&self) -> usize {
        self.with_state(|s| {
            let mut seen = HashSet::new();
            let (mut now, mut max) = (0usize, 0usize);
            for e in &s.events {
                let Some(id) = &e.call_id else { continue };
                if seen.insert(id.clone()) {
                    now += 1;
                    max = max.max(now);
                }
                if e.kind == "CALL_CLOSED" {
                    now = now.saturating_sub(1);
                }
            }
            max
        })
    }

    pub fn wait_calls_received(&self, n: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| (call_ids(&s.events).len() >= n).then_some(()))
            .is_some()
    }

    pub fn wait_calls_answered(&self, n: usize, timeout: Duration) -> bool {
        self.wait_count("CALL_ESTABLISHED", n, timeout)
    }

    pub fn wait_calls_ended(&self, n: usize, timeout: Duration) -> bool {
        self.wait_count("CALL_CLOSED", n, timeout)
    }

    /// Ends the current call: BYE if answered, 486 Busy Here if still ringing.
    /// Calls `uri` (the engine, as a caller on a trunk would).
    pub fn dial(&self, uri: &str) {
        if let Err(e) = self.command("dial", uri) {
            panic!("dial {uri} from {}: {e}", self.user);
        }
    }

    pub fn hangup(&self) {
        if let Err(e) = self.command("hangup", "") {
            panic!("hangup on {}: {e}", self.user);
        }
    }

    /// Un-REGISTERs (REGISTER with expires=0, challenged again) and removes the account.
    /// Dropping a phone kills it without un-REGISTERing: the binding stays until it
    /// expires.
    pub fn unregister(&self) {
        if let Err(e) = self.command("uadel", &self.aor) {
            panic!("uadel on {}: {e}", self.user);
        }
    }

    /// The recordings of the calls that ended so far, in the order they ended.
    pub fn recordings(&self) -> Vec<Recording> {
        self.with_state(|s| s.recordings.clone())
    }

    /// Waits until `n` calls have their recordings complete.
    pub fn wait_recordings(&self, n: usize, timeout: Duration) -> Vec<Recording> {
        self.wait_for(timeout, |s| {
            (s.recordings.len() >= n).then(|| s.recordings.clone())
        })
        .unwrap_or_else(|| self.recordings())
    }

    /// The INVITE requests the phone received (retransmissions once), as on the wire
    /// (CRLF line ends): for checking headers such as X-Hotline-Queue.
    pub fn invites(&self) -> Vec<String> {
        let log = self.log();
        let me = format!(" -> {}", self.addr());
        let mut out: Vec<String> = Vec::new();
        for block in log.split("\x1b[36;1m#\n").skip(1) {
            let block = block.split("\x1b[;m").next().unwrap_or_default();
            let Some((route, message)) = block.split_once('\n') else {
                continue;
            };
            let message = message.trim_end().to_owned();
            if route.ends_with(&me) && message.starts_with("INVITE ") && !out.contains(&message) {
                out.push(message);
            }
        }
        out
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<PhoneEvent> {
        self.with_state(|s| s.events.clone())
    }

    /// How many events of a kind (e.g. "REGISTER_OK", which refreshes repeat) arrived.
    pub fn count(&self, kind: &str) -> usize {
        self.with_state(|s| s.events.iter().filter(|e| e.kind == kind).count())
    }

    /// baresip's output so far: log lines and the SIP trace.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until its console output contains `needle` (it is copied by another thread,
    /// and may lag the control connection's events).
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// Runs a baresip command (as typed after `/`, without it) and returns its output.
    pub fn command(&self, command: &str, params: &str) -> Result<String, String> {
        let token = send_command(&self.shared, command, params)?;
        self.wait_for(COMMAND_TIMEOUT, |s| s.responses.get(&token).cloned())
            .unwrap_or_else(|| Err(format!("no answer to {command} in {COMMAND_TIMEOUT:?}")))
    }

    fn wait_count(&self, kind: &str, n: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| {
            (s.events.iter().filter(|e| e.kind == kind).count() >= n).then_some(())
        })
        .is_some()
    }

    fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&state)
    }

    fn wait_for<T>(&self, timeout: Duration, mut f: impl FnMut(&State) -> Option<T>) -> Option<T> {
        let until = Instant::now() + timeout;
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(found) = f(&state) {
                return Some(found);
            }
            let left = until.checked_duration_since(Instant::now())?;
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Baresip {
    /// Stops the phone dead (SIGSTOP), as a phone that lost its network: no more RTP, no
    /// SIP answers. Dropping it still kills it.
    pub fn freeze(&self) {
        let status = Command::new("kill")
            .arg("-STOP")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "SIGSTOP to baresip {}", self.user);
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call_ids(events: &[PhoneEvent]) -> HashSet<&str> {
    events.iter().filter_map(|e| e.call_id.as_deref()).collect()
}

/// Sends one command; returns the token its response will carry.
fn send_command(shared: &Shared, command: &str, params: &str) -> Result<String, String> {
    let mut writer = shared.writer.lock().unwrap_or_else(|e| e.into_inner());
    let token = shared.next_token.fetch_add(1, Ordering::SeqCst).to_string();
    let json = serde_json::json!({"command": command, "params": params, "token": token});
    let body = json.to_string();
    writer
        .write_all(format!("{}:{body},", body.len()).as_bytes())
        .map_err(|e| format!("send {command}: {e}"))?;
    Ok(token)
}

/// Copies baresip's stdout to `file` and `log`; the receiver gets `true` once baresip
/// says it is ready, `false` if it exits first.
fn keep_log(child: &mut Child, log: &Arc<Mutex<String>>, file: PathBuf) -> mpsc::Receiver<bool> {
    let (ready_tx, ready) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let log = log.clone();
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(file).ok();
        let mut buf = [0u8; 8192];
        let mut said_ready = false;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(&buf[..n]);
            }
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            l.push_str(&String::from_utf8_lossy(&buf[..n]));
            if !said_ready && l.contains("baresip is ready.") {
                said_ready = true;
                let _ = ready_tx.send(true);
            }
        }
        let _ = ready_tx.send(false);
    });
    ready
}

/// Reads netstring JSON from the control connection until it closes: records events and
/// responses, answers incoming calls, collects recordings of ended calls.
fn read_control(
    stream: TcpStream,
    shared: Arc<Shared>,
    answer_after: Option<Duration>,
    rec: PathBuf,
) {
    let mut reader = BufReader::new(stream);
    while let Some(message) = read_netstring(&mut reader) {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&message) else {
            continue;
        };
        let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if json.get("response").is_some() {
            let data = text("data").unwrap_or_default();
            let ok = json.get("ok").and_then(|v| v.as_bool()) == Some(true);
            state.responses.insert(
                text("token").unwrap_or_default(),
                if ok { Ok(data) } else { Err(data) },
            );
        } else if json.get("event").is_some() {
            let event = PhoneEvent {
                kind: text("type").unwrap_or_default(),
                call_id: text("id"),
                param: text("param").unwrap_or_default(),
                at: Instant::now(),
            };
            match (event.kind.as_str(), answer_after) {
                ("CALL_INCOMING", Some(delay)) => {
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(delay);
                        let _ = send_command(&shared, "accept", "");
                    });
                }
                ("CALL_CLOSED", _) => {
                    let ended = 1 + state
                        .events
                        .iter()
                        .filter(|e| e.kind == "CALL_CLOSED")
                        .count();
                    let (shared, rec) = (shared.clone(), rec.clone());
                    let call_id = event.call_id.clone().unwrap_or_default();
                    std::thread::spawn(move || collect_recording(&shared, &rec, ended, call_id));
                }
                _ => {}
            }
            state.events.push(event);
        }
        drop(state);
        shared.changed.notify_all();
    }
}

fn read_netstring(reader: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = 0usize;
    let mut byte = [0u8; 1];
    loop {
        reader.read_exact(&mut byte).ok()?;
        match byte[0] {
            b':' => break,
            d @ b'0'..=b'9' => len = len.checked_mul(10)?.checked_add((d - b'0') as usize)?,
            _ => return None,
        }
    }
    let mut body = vec![0u8; len + 1];
    reader.read_exact(&mut body).ok()?;
    (body.pop() == Some(b',')).then_some(body)
}

/// Renames the sndfile dumps of the call that just ended (`callN-heard.wav`,
/// `callN-sent.wav`) once baresip has closed them.
fn collect_recording(shared: &Shared, rec: &Path, n: usize, call_id: String) {
    let _one_at_a_time = shared.collecting.lock().unwrap_or_else(|e| e.into_inner());
    let mut recording = Recording {
        call_id,
        heard: None,
        sent: None,
    };
    let dumps: Vec<PathBuf> = std::fs::read_dir(rec)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for dump in dumps {
        let name = dump
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("dump-") || !wait_closed(&dump, Duration::from_secs(5)) {
            continue;
        }
        let (slot, what) = if name.ends_with("-dec.wav") {
            (&mut recording.heard, "heard")
        } else {
            (&mut recording.sent, "sent")
        };
        let to = rec.join(format!("call{n}-{what}.wav"));
        if std::fs::rename(&dump, &to).is_ok() {
            *slot = Some(to);
        }
    }
    if recording.heard.is_some() || recording.sent.is_some() {
        shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recordings
            .push(recording);
        shared.changed.notify_all();
    }
}

/// `play` (or nothing) followed by silence, `limit` long in all: baresip hangs up when
/// its audio file ends.
fn write_padded(play: Option<&Path>, limit: Duration, rate: u32, to: &Path) {
    let mut samples: Vec<i16> = Vec::new();
    if let Some(play) = play {
        let mut reader =
            hound::WavReader::open(play).unwrap_or_else(|e| panic!("{}: {e}", play.display()));
        let spec = reader.spec();
        assert!(
            spec.channels == 1
                && spec.sample_rate == rate
                && spec.bits_per_sample == 16
                && spec.sample_format == hound::SampleFormat::Int,
            "{}: baresip's aufile needs mono 16-bit PCM at {rate} Hz, not {spec:?}",
            play.display()
        );
        samples = reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{}: {e}", play.display()));
    }
    let total = (limit.as_secs_f64() * rate as f64) as usize;
    samples.resize(total.max(samples.len()), 0);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(to, spec).expect("create play.wav");
    for s in samples {
        writer.write_sample(s).expect("write play.wav");
    }
    writer.finalize().expect("finish play.wav");
}
