//! What the integration tests share: starting the real engine binary on free loopback
//! ports with a config of the test's own, running SIPp scenarios against it, and making
//! audio files with sox. Each test writes under tests/out/<test>/ (kept for reading after a
//! failure).
#![allow(dead_code)]

pub mod baresip;
pub mod stats;

use std::io::{BufRead, BufReader, Read};
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

/// A free even port with its odd neighbour (RTP and RTCP) for SIPp's media.
pub fn free_media_port() -> u16 {
    loop {
        let port = free_port();
        let even = port & !1;
        if UdpSocket::bind(("127.0.0.1", even)).is_ok()
            && UdpSocket::bind(("127.0.0.1", even + 1)).is_ok()
        {
            return even;
        }
    }
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
        let plans = dir.join("dialplans");
        std::fs::create_dir_all(&plans).expect("dialplan folder");
        tone(&plans.join("prompt.wav"), prompt_secs, 300, false);
        std::fs::write(
            plans.join("test.yaml"),
            "languages: [cmn]\ndefault: true\nprompts:\n  hello:\n    cmn: {file: prompt.wav}\n\
steps:\n  start:\n    play: hello\n    next: done\n  done:\n    hangup: prompt_played\n",
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
        let port = free_port();
        let api = free_port();
        let rtp = 20_000 + (port % 2000) * 10;
        let mut sections: Vec<(String, String)> = vec![
            (
                "sip".into(),
                format!("udp = \"127.0.0.1:{port}\"\ntcp = \"127.0.0.1:{port}\"\n"),
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
                format!("listen = \"127.0.0.1:{api}\"\nmetrics_open = true\n"),
            ),
        ];
        for (section, lines) in extra {
            match sections.iter_mut().find(|(s, _)| s == section) {
                Some((_, body)) => body.push_str(lines),
                None => sections.push((section.to_string(), lines.to_string())),
            }
        }
        let config: String = sections
            .iter()
            .map(|(s, body)| format!("[{s}]\n{body}\n\n"))
            .collect();
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
        let engine = Engine {
            child,
            port,
            api,
            dir: dir.to_owned(),
            log,
        };
        assert!(
            engine.wait_log("hotline is running", Duration::from_secs(20)),
            "the engine did not start:\n{}",
            engine.log()
        );
        engine
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the engine's log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn count_log(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WAV of a sine tone: 16-bit PCM, or mu-law for SIPp's rtp_stream.
pub fn tone(path: &Path, secs: f32, freq: u32, mulaw: bool) {
    let encoding: &[&str] = if mulaw {
        &["-e", "mu-law"]
    } else {
        &["-b", "16"]
    };
    let status = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1"])
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
}

/// Runs SIPp with a scenario from tests/sipp (with `{{KEY}}` placeholders filled in) against
/// the engine. `args` adds options such as `-m`, `-r` and `-t t1`.
pub fn sipp(engine: &Engine, scenario: &str, vars: &[(&str, &str)], args: &[&str]) -> SippRun {
    let mut xml =
        std::fs::read_to_string(root().join("tests/sipp").join(scenario)).expect("read scenario");
    for (k, v) in vars {
        xml = xml.replace(&format!("{{{{{k}}}}}"), v);
    }
    let name = format!("{}-{}", scenario.trim_end_matches(".xml"), free_port());
    let sf = engine.dir.join(format!("{name}.xml"));
    std::fs::write(&sf, xml).expect("write scenario");
    let errors = engine.dir.join(format!("{name}-errors.log"));
    let output = Command::new("sipp")
        .arg(engine.addr().to_string())
        .arg("-sf")
        .arg(&sf)
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-mp", &free_media_port().to_string()])
        .args(["-nostdin", "-trace_err", "-error_file"])
        .arg(&errors)
        .args(["-timeout", "120s", "-timeout_error"])
        .args(args)
        .current_dir(&engine.dir)
        .stdin(Stdio::null())
        .output()
        .expect("run sipp (installed by make setup)");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let mut errors_text = String::new();
    if let Ok(mut f) = std::fs::File::open(&errors) {
        let _ = f.read_to_string(&mut errors_text);
    }
    std::fs::write(engine.dir.join(format!("{name}.out")), &text).expect("save sipp output");
    SippRun {
        success: output.status.success(),
        output: text,
        errors: errors_text,
    }
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

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| (s as f64) * (s as f64)).sum();
    (sum / samples.len() as f64).sqrt()
}
