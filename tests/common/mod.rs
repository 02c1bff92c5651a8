//! What the integration tests share: starting the real engine binary on free loopback
//! ports with a config of the test's own, running SIPp scenarios against it, and making
//! audio files with sox. Each test writes under tests/out/<test>/ (kept for reading after a
//! failure).
#![allow(dead_code)]

pub mod agents;
pub mod baresip;
pub mod certs;
pub mod chromium;
pub mod kamailio;
pub mod linphone;
pub mod stats;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the checkout, or `$HOTLINE_SHARED`.
pub fn shared() -> PathBuf {
    std::env::var_os("HOTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"))
}

/// A fresh output folder for one test.
pub fn out_dir(test: &str) -> PathBuf {
    let dir = root().join("tests/out").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test's output folder");
    dir
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The first of `len` consecutive UDP ports, starting at an even one, free right now.
///
/// Blocks come from 10000-19999: below the engines' test media ranges (20000 and up) and
/// the ephemeral ports that `free_port` and the kernel hand out, so a port checked here
/// cannot be taken by another test's `free_port` before the peer binds it (which once
/// failed a run: SIPp's video port, `-mp` + 2, was not checked and had been taken). Each
/// call moves on past the last block, starting from a place set by the process id, so
/// tests running at once in one process, or in two, do not draw the same block.
pub fn free_udp_block(len: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let len = u32::from(len.max(2)).next_multiple_of(2);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 64) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let offset = NEXT.fetch_add(len, Ordering::Relaxed) % SPAN;
        if offset + len > SPAN {
            continue;
        }
        let start = FIRST + offset;
        let bound: Vec<_> = (start..start + len)
            .map_while(|p| UdpSocket::bind(("127.0.0.1", p as u16)).ok())
            .collect();
        if bound.len() == len as usize {
            return start as u16;
        }
    }
}

/// SIPp's `-mp`: audio RTP and RTCP there, video RTP and RTCP on the next two.
pub fn free_media_port() -> u16 {
    free_udp_block(4)
}

/// A running engine; killed when dropped.
pub struct Engine {
    child: Child,
    pub port: u16,
    /// The API's port on 127.0.0.1.
    pub api: u16,
    pub dir: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Engine {
    /// Starts `hotline serve` with a config made of the test's ports and a one-step
    /// dialplan: play `prompt_secs` of tone, then hang up (outcome `prompt_played`).
    /// `extra` lines are added to the named config sections.
    pub fn start(dir: &Path, prompt_secs: f32, extra: &[(&str, &str)]) -> Engine {
        let steps =
            "  start:\n    play: hello\n    next: done\n  done:\n    hangup: prompt_played\n";
        Engine::start_steps(dir, prompt_secs, steps, extra)
    }

    /// As `start`, with the dialplan's `steps` (YAML, indented by two) given; prompt
    /// `hello` is `prompt_secs` of tone.
    pub fn start_steps(
        dir: &Path,
        prompt_secs: f32,
        steps: &str,
        extra: &[(&str, &str)],
    ) -> Engine {
        let plans = dir.join("dialplans");
        std::fs::create_dir_all(&plans).expect("dialplan folder");
        tone(&plans.join("prompt.wav"), prompt_secs, 300, false);
        std::fs::write(
            plans.join("test.yaml"),
            format!(
                "languages: [cmn]\ndefault: true\nprompts:\n  hello:\n    cmn: {{file: prompt.wav}}\n\
steps:\n{steps}"
            ),
        )
        .expect("write the test dialplan");
        let directory = format!("directory = \"{}\"\n", plans.display());
        let mut sections = vec![("dialplan", directory.as_str())];
        sections.extend_from_slice(extra);
        Engine::start_with(dir, &sections)
    }

    /// Starts `hotline serve` with the test's ports, database and API address, and
    /// `extra` lines added to the named config sections (the shipped dialplans unless
    /// `[dialplan]` says otherwise).
    pub fn start_with(dir: &Path, extra: &[(&str, &str)]) -> Engine {
        Engine::start_full(dir, extra, "")
    }

    /// As `start_with`, with `tail` (arrays of tables such as `[[acd.queues]]`) written after
    /// the sections. Starts again on new ports if one was taken between picking and binding.
    pub fn start_full(dir: &Path, extra: &[(&str, &str)], tail: &str) -> Engine {
        let mut last_log = String::new();
        for _ in 0..3 {
            match Engine::try_start(dir, extra, tail) {
                Ok(engine) => return engine,
                Err(log) if log.contains("in use") => last_log = log,
                Err(log) => panic!("the engine did not start:\n{log}"),
            }
        }
        panic!("the engine found no free ports:\n{last_log}");
    }

    fn try_start(dir: &Path, extra: &[(&str, &str)], tail: &str) -> Result<Engine, String> {
        let port = free_port();
        let api = free_port();
        // Below the ephemeral ports (32768 and up) that free_port draws from, above the
        // peers' media blocks (free_udp_block).
        let rtp = 20_000 + (port % 1200) * 10;
        let mut sections: Vec<(String, String)> = vec![
            (
                "sip".into(),
                // Two busy cores stall the engine now and then: the tests check calls,
                // not the overload guard (unit-tested, and measured by bench/sip_load.py).
                format!(
                    "udp = \"127.0.0.1:{port}\"\ntcp = \"127.0.0.1:{port}\"\n\
                     adaptive_shedding = false\n"
                ),
            ),
            (
                "media".into(),
                format!("rtp_port_min = {rtp}\nrtp_port_max = {}\n", rtp + 400),
            ),
            (
                "stats".into(),
                format!(
                    "database = \"{}\"\ntimezone = \"UTC\"\npublish_ms = 100\n",
                    dir.join("events.sqlite").display()
                ),
            ),
            (
                "api".into(),
                format!(
                    "listen = \"127.0.0.1:{api}\"\nmetrics_open = true\n\
tokens = [{{ name = \"test\", token = \"{ADMIN_TOKEN}\", role = \"admin\" }}]\n"
                ),
            ),
        ];
        for (section, lines) in extra {
            match sections.iter_mut().find(|(s, _)| s == section) {
                Some((_, body)) => body.push_str(lines),
                None => sections.push((section.to_string(), lines.to_string())),
            }
        }
        let mut config: String = sections
            .iter()
            .map(|(s, body)| format!("[{s}]\n{body}\n\n"))
            .collect();
        config.push_str(tail);
        let config_path = dir.join("hotline.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .arg("--log")
            .arg("info,hotline=debug")
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the engine");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        let log_file = dir.join("engine.log");
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log_file).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = file.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let mut engine = Engine {
            child,
            port,
            api,
            dir: dir.to_owned(),
            log,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while !engine.log().contains("hotline is running") {
            let exited = matches!(engine.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= until {
                // Let the reader take the last lines the engine wrote.
                std::thread::sleep(Duration::from_millis(200));
                return Err(engine.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(engine)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the engine's log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// A GET on the engine's API with the test's admin token: the JSON answer.
    pub fn api_get(&self, path: &str) -> serde_json::Value {
        let (status, body) = http(self.api, "GET", path, Some(ADMIN_TOKEN));
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// The event log as the API shows it, oldest first.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let v = self.api_get("/api/v1/events?limit=1000");
        let mut events = v
            .as_array()
            .cloned()
            .or_else(|| v["events"].as_array().cloned())
            .unwrap_or_default();
        events.sort_by_key(|e| e["seq"].as_i64());
        events
    }

    /// Waits until the whole event log satisfies `pred` (events reach the log through the
    /// ACD and stats actors and a SQLite write, after the call's own end); the log then.
    pub fn wait_events(
        &self,
        timeout: Duration,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        wait_until(timeout, || {
            events = self.events();
            pred(&events)
        });
        events
    }

    /// Waits until an event satisfies `pred`.
    pub fn wait_event(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.events().into_iter().find(|e| pred(e));
            found.is_some()
        });
        found
    }

    /// A value from /metrics: `series` is a name (its first series) or a name with labels.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = http(self.api, "GET", "/metrics", None);
        let next = if series.ends_with('}') {
            &[' '][..]
        } else {
            &[' ', '{'][..]
        };
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(next))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// Waits until the log contains `needle` `n` times.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.count_log(needle) >= n)
    }

    pub fn count_log(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Sends the engine a signal: `HUP` (reload the dialplans), `TERM` (drain and stop).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit on its own: its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin token the test engines accept.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A plain HTTP/1.1 request on 127.0.0.1: status and body.
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("send the request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let chunked = text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A WAV of a sine tone at 8 kHz: 16-bit PCM, or mu-law for SIPp's rtp_stream.
pub fn tone(path: &Path, secs: f32, freq: u32, mulaw: bool) {
    let encoding: &[&str] = if mulaw {
        &["-e", "mu-law"]
    } else {
        &["-b", "16"]
    };
    tone_at(path, secs, freq, 8000, encoding);
}

/// A 16-bit WAV of a sine tone at `rate` Hz (a wideband phone's audio file).
pub fn wide_tone(path: &Path, secs: f32, freq: u32, rate: u32) {
    tone_at(path, secs, freq, rate, &["-b", "16"]);
}

fn tone_at(path: &Path, secs: f32, freq: u32, rate: u32, encoding: &[&str]) {
    let status = Command::new("sox")
        .args(["-n", "-r", &rate.to_string(), "-c", "1"])
        .args(encoding)
        .arg(path)
        .args([
            "synth",
            &secs.to_string(),
            "sine",
            &freq.to_string(),
            "vol",
            "0.5",
        ])
        .status()
        .expect("run sox (installed by make setup)");
    assert!(status.success(), "sox failed");
}

/// The result of one SIPp run.
pub struct SippRun {
    pub success: bool,
    pub output: String,
    pub errors: String,
    /// What the scenario's `<log>` actions wrote.
    pub logs: String,
}

/// SIPp running a tests/sipp scenario (with `{{KEY}}` placeholders filled in) in the
/// background; its output and error log are kept in `dir`.
pub struct Sipp {
    child: Child,
    name: String,
    dir: PathBuf,
}

impl Sipp {
    /// Starts SIPp against `target`; `args` adds options such as `-m`, `-r`, `-t t1`, `-s`.
    pub fn start(
        dir: &Path,
        target: SocketAddr,
        scenario: &str,
        vars: &[(&str, &str)],
        args: &[&str],
    ) -> Sipp {
        Sipp::start_on(dir, free_port(), target, scenario, vars, args)
    }

    /// As `start`, with SIPp on local UDP/TCP `port` (for a peer that must know it first).
    pub fn start_on(
        dir: &Path,
        port: u16,
        target: SocketAddr,
        scenario: &str,
        vars: &[(&str, &str)],
        args: &[&str],
    ) -> Sipp {
        let mut xml = std::fs::read_to_string(root().join("tests/sipp").join(scenario))
            .expect("read scenario");
        for (k, v) in vars {
            xml = xml.replace(&format!("{{{{{k}}}}}"), v);
        }
        let name = format!("{}-{}", scenario.trim_end_matches(".xml"), free_port());
        let sf = dir.join(format!("{name}.xml"));
        std::fs::write(&sf, xml).expect("write scenario");
        let child = Command::new("sipp")
            .arg(target.to_string())
            .arg("-sf")
            .arg(&sf)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &free_media_port().to_string()])
            .args(["-nostdin", "-trace_err", "-error_file"])
            .arg(dir.join(format!("{name}-errors.log")))
            .args(["-trace_logs", "-log_file"])
            .arg(dir.join(format!("{name}-logs.log")))
            .args(["-timeout", "180s", "-timeout_error"])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(
                std::fs::File::create(dir.join(format!("{name}.out"))).expect("create sipp output"),
            )
            .stderr(Stdio::null())
            .spawn()
            .expect("run sipp (installed by make setup)");
        Sipp {
            child,
            name,
            dir: dir.to_owned(),
        }
    }

    /// Waits for SIPp to end (killing it after `timeout`).
    pub fn finish(mut self, timeout: Duration) -> SippRun {
        let until = Instant::now() + timeout;
        let success = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.success(),
                _ if Instant::now() >= until => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break false;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let read = |suffix: &str| {
            std::fs::read_to_string(self.dir.join(format!("{}{suffix}", self.name)))
                .unwrap_or_default()
        };
        SippRun {
            success,
            output: read(".out"),
            errors: read("-errors.log"),
            logs: read("-logs.log"),
        }
    }
}

/// Runs SIPp against the engine and waits for it to end.
pub fn sipp(engine: &Engine, scenario: &str, vars: &[(&str, &str)], args: &[&str]) -> SippRun {
    Sipp::start(&engine.dir, engine.addr(), scenario, vars, args).finish(Duration::from_secs(200))
}

/// Reads a 16-bit mono WAV: samples and sample rate.
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rate = reader.spec().sample_rate;
    let samples = reader
        .samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .expect("samples");
    (samples, rate)
}

/// The dominant frequency of a tone, from its zero crossings.
pub fn frequency(samples: &[i16], rate: u32) -> f64 {
    // The median over quarter-second windows: a packet a loaded machine lost or concealed
    // skews one window, not the reading (one window resolves 2 Hz).
    let crossings = |part: &[i16]| {
        let n = part.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        n as f64 / 2.0 / (part.len() as f64 / rate as f64)
    };
    let mut each: Vec<f64> = samples
        .chunks_exact((rate / 4) as usize)
        .map(crossings)
        .collect();
    if each.is_empty() {
        return crossings(samples);
    }
    each.sort_by(f64::total_cmp);
    each[each.len() / 2]
}

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| (s as f64) * (s as f64)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// One thing an IVR caller does (tests/sipp/ivr_caller.xml's `{{ACTIONS}}`).
pub enum Act<'a> {
    Pause(u32),
    /// An RFC 4733 key press from SIPp's pcaps.
    Key(char),
    /// Starts streaming a mu-law WAV (it plays on while later actions run).
    Stream(&'a Path),
}

pub fn actions(acts: &[Act]) -> String {
    acts.iter()
        .map(|a| match a {
            Act::Pause(ms) => format!("  <pause milliseconds=\"{ms}\"/>\n"),
            Act::Key(k) => {
                let name = match k {
                    '#' => "pound".to_owned(),
                    '*' => "star".to_owned(),
                    d => d.to_string(),
                };
                format!("  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/dtmf_2833_{name}.pcap\"/></action></nop>\n")
            }
            Act::Stream(path) => format!("  <nop><action><exec rtp_stream=\"{},1,0\"/></action></nop>\n", path.display()),
        })
        .collect()
}

/// The `[[acd.queues]]` and `[[acd.agents]]` tables of the shipped hotline.toml.
pub fn shipped_acd() -> String {
    let text = std::fs::read_to_string(root().join("hotline.toml")).expect("hotline.toml");
    let at = text.find("[[acd.").expect("hotline.toml has ACD tables");
    text[at..].to_owned()
}

/// A mu-law copy of a WAV (what SIPp's rtp_stream plays).
pub fn to_mulaw(src: &Path, dst: &Path) {
    let status = Command::new("sox")
        .arg(src)
        .args(["-r", "8000", "-c", "1", "-e", "mu-law"])
        .arg(dst)
        .status()
        .expect("run sox");
    assert!(status.success(), "sox failed on {}", src.display());
}

/// Waits until a WAV is finished: its RIFF size is only written on close (by libsndfile
/// for baresip, by the engine's recorder).
pub fn wait_closed(path: &Path, timeout: Duration) -> bool {
    wait_until(timeout, || {
        let mut riff = [0u8; 8];
        let Ok(mut file) = std::fs::File::open(path) else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        file.read_exact(&mut riff).is_ok()
            && meta.len() > 44
            && u64::from(u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]])) == meta.len() - 8
    })
}

/// Polls `done` until it holds or `timeout` passes (what the engine, phones and stats do
/// happens in other processes and threads); whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIPp callers to `called` (tests/sipp/caller_prompt.xml) that stream a `secs`-long
/// 440 Hz tone and wait for the engine to hang up; `sipp_args` says how many and how fast.
pub fn tone_callers(engine: &Engine, called: &str, secs: f32, sipp_args: &[&str]) -> Sipp {
    let wav = engine.dir.join(format!("caller-{secs}s.wav"));
    if !wav.exists() {
        tone(&wav, secs, 440, true);
    }
    let mut args = vec!["-s", called];
    args.extend_from_slice(sipp_args);
    Sipp::start(
        &engine.dir,
        engine.addr(),
        "caller_prompt.xml",
        &[("WAV", &wav.display().to_string())],
        &args,
    )
}
