//! Bad input over UDP and TCP: the RFC 4475 torture messages answered as the RFC says, and
//! two dozen other kinds of broken SIP, after which the engine still takes a normal call.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{Engine, out_dir, sipp, tone};

/// How long a torture message may take to be answered: long for a debug build on a busy
/// machine (only the messages that get no answer wait it out).
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// What came back for a message: the status of the first final response, the status of any
/// response if only provisional ones came, or nothing.
fn status_of(text: &str) -> Option<u16> {
    let mut provisional = None;
    for msg in text.split("SIP/2.0 ").skip(1) {
        let code: u16 = msg.get(..3)?.parse().ok()?;
        if code >= 200 {
            return Some(code);
        }
        provisional = Some(code);
    }
    provisional
}

/// Collects what `read` returns (it waits at most the time given, `None` at the end)
/// until a final response or `wait`: the status of what came back.
fn answer(
    wait: Duration,
    mut read: impl FnMut(&mut [u8], Duration) -> Option<usize>,
) -> Option<u16> {
    let mut text = String::new();
    let mut buf = vec![0u8; 65_536];
    let until = Instant::now() + wait;
    while let Some(left) = until
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        let Some(n) = read(&mut buf, left) else { break };
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if status_of(&text).is_some_and(|c| c >= 200) {
            break;
        }
    }
    status_of(&text)
}

/// Sends one datagram and reads what comes back.
fn over_udp(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<u16> {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.send_to(bytes, addr).expect("send");
    answer(wait, |buf, left| {
        s.set_read_timeout(Some(left)).expect("timeout");
        s.recv(buf).ok()
    })
}

/// The same over a fresh TCP connection.
fn over_tcp(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("write");
    answer(wait, |buf, left| {
        s.set_read_timeout(Some(left)).expect("timeout");
        s.read(buf).ok().filter(|&n| n > 0)
    })
}

/// Whether what came back is the answer tests/rfc4475_answers.tsv names: that status as
/// the final response, a 2xx for `call` (the engine answers the call), nothing for `-`.
fn matches_answer(expected: &str, got: Option<u16>) -> bool {
    match expected {
        "-" => got.is_none(),
        "call" => got.is_some_and(|c| (200..300).contains(&c)),
        status => got.is_some_and(|c| status.parse() == Ok(c)),
    }
}

/// A normal call after the abuse: SIPp places one and the engine answers it.
fn still_answers(engine: &Engine) {
    let wav = engine.dir.join("caller.wav");
    tone(&wav, 0.5, 440, true);
    let run = sipp(
        engine,
        "caller_prompt.xml",
        &[("WAV", &wav.display().to_string())],
        &["-m", "2", "-r", "2"],
    );
    assert!(
        run.success,
        "the engine no longer answers calls:\n{}\n{}",
        run.output, run.errors
    );
}

#[test]
fn rfc_4475_torture_messages_get_the_answers_the_rfc_expects() {
    let dir = out_dir("rfc4475");
    // An agent, so REGISTERs meet the registrar as they do in a hotline with agents.
    let acd = "queues = [{ name = \"general\" }]\nagents = [{ id = \"1001\", name = \"A\", \
password = \"pw-1001\", languages = [\"cmn\"], skills = { general = 1 } }]\n";
    let torture = common::shared().join("conformance/rfc4475");
    let answers = std::fs::read_to_string(common::root().join("tests/rfc4475_answers.tsv"))
        .expect("tests/rfc4475_answers.tsv");
    let table: Vec<(&str, &str)> = answers
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split('\t');
            Some((cols.next()?, cols.next()?))
        })
        .collect();
    assert_eq!(table.len(), 49, "all 49 messages of RFC 4475");
    let mut failures = Vec::new();
    // One engine per transport: the INVITEs' calls are still up when the other transport
    // would send the same Call-ID.
    for transport in ["UDP", "TCP"] {
        let mut engine = Engine::start(&dir, 1.0, &[("acd", acd)]);
        for (file, expected) in &table {
            let bytes = std::fs::read(torture.join(file)).expect("torture file");
            let got = match transport {
                "UDP" => over_udp(engine.addr(), &bytes, ANSWER_WAIT),
                _ => over_tcp(engine.addr(), &bytes, ANSWER_WAIT),
            };
            // Over TCP the message must frame: a Content-Length that lies leaves the
            // stream waiting (or gets a 400), which is all a stream can do; dblreq.dat's
            // second request is framed as a second message. baddn.dat has no blank line
            // after its headers, so a stream never sees it end.
            let framing = transport == "TCP"
                && [
                    "clerr.dat",
                    "ncl.dat",
                    "mcl01.dat",
                    "dblreq.dat",
                    "baddn.dat",
                ]
                .contains(file);
            let ok =
                matches_answer(expected, got) || (framing && (got.is_none() || got == Some(400)));
            if !ok {
                failures.push(format!(
                    "{transport} {file}: expected {expected}, got {got:?}"
                ));
            }
        }
        assert!(engine.alive(), "the engine survived");
        still_answers(&engine);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A request from parts, with `\n` turned into CRLF.
fn req(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

const HEAD: &str = "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{N}\nFrom: <sip:a@127.0.0.1>;tag=1\nTo: <sip:12345@127.0.0.1>\nCall-ID: broken-{N}\n";

fn options(n: usize, extra: &str, cseq: &str) -> Vec<u8> {
    let head = HEAD.replace("{N}", &n.to_string());
    req(&format!(
        "OPTIONS sip:12345@127.0.0.1 SIP/2.0\n{head}CSeq: {cseq}\n{extra}Content-Length: 0\n\n"
    ))
}

#[test]
fn two_dozen_kinds_of_broken_sip_get_answers_or_counted_drops_and_calls_still_work() {
    let dir = out_dir("malformed");
    let mut engine = Engine::start(&dir, 1.0, &[]);
    let long_line = format!("X-Long: {}\n", "a".repeat(63 * 1024));
    let sdp_invite = |n: usize, content_type: &str, body: &str, length: usize| {
        let head = HEAD.replace("{N}", &n.to_string());
        req(&format!(
            "INVITE sip:12345@127.0.0.1 SIP/2.0\n{head}CSeq: 1 INVITE\nContact: <sip:a@127.0.0.1:5999>\n\
Content-Type: {content_type}\nContent-Length: {length}\n\n{body}"
        ))
    };
    // Written with \n, which `req` turns into CRLF: its length on the wire counts both.
    let sdp =
        "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 9 RTP/AVP 0\n";
    let wire_len = |s: &str| s.len() + s.matches('\n').count();
    let mut garbage = vec![0u8; 1500];
    for (i, b) in garbage.iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0];
    }
    // (what, bytes, acceptable answers; empty = no answer at all)
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "missing Call-ID",
            req(
                "OPTIONS sip:12345@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKc1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n",
            ),
            &[400],
        ),
        (
            "missing From",
            req(
                "OPTIONS sip:12345@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKc2\nTo: <sip:b@h>\nCall-ID: x2\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n",
            ),
            &[400],
        ),
        (
            "missing To",
            req(
                "OPTIONS sip:12345@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKc3\nFrom: <sip:a@h>;tag=1\nCall-ID: x3\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n",
            ),
            &[400],
        ),
        (
            "missing Via",
            req(
                "OPTIONS sip:12345@127.0.0.1 SIP/2.0\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: x4\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n",
            ),
            &[],
        ),
        ("CSeq not a number", options(5, "", "one OPTIONS"), &[400]),
        (
            "CSeq over 2^31",
            options(6, "", "4294967296 OPTIONS"),
            &[400],
        ),
        ("CSeq method mismatch", options(7, "", "1 INVITE"), &[400]),
        ("CSeq without method", options(8, "", "1"), &[400]),
        (
            "Max-Forwards not a number",
            options(9, "Max-Forwards: many\n", "1 OPTIONS"),
            &[400],
        ),
        (
            "two Call-IDs",
            options(10, "Call-ID: another\n", "1 OPTIONS"),
            &[400],
        ),
        (
            "a Call-ID with a terminal escape and a NUL",
            req(&format!(
                "OPTIONS sip:12345@127.0.0.1 SIP/2.0\n{}CSeq: 1 OPTIONS\nContent-Length: 0\n\n",
                HEAD.replace("broken-{N}", "evil\u{1b}[2J\u{0}-41")
                    .replace("{N}", "41")
            )),
            &[400],
        ),
        (
            "negative Content-Length",
            req(&format!(
                "OPTIONS sip:12345@127.0.0.1 SIP/2.0\n{}CSeq: 1 OPTIONS\nContent-Length: -4\n\n",
                HEAD.replace("{N}", "11")
            )),
            &[400],
        ),
        (
            "Content-Length larger than the body",
            sdp_invite(12, "application/sdp", sdp, wire_len(sdp) + 50),
            &[400],
        ),
        (
            "Content-Length smaller than the body",
            sdp_invite(13, "application/sdp", sdp, 20),
            &[400],
        ),
        (
            "SDP that is not SDP",
            sdp_invite(14, "application/sdp", "hello", 5),
            &[400],
        ),
        (
            "body of an unknown type",
            sdp_invite(15, "application/x-nothing", "abc", 3),
            &[415],
        ),
        (
            "no codec in common",
            sdp_invite(
                16,
                "application/sdp",
                &sdp.replace("RTP/AVP 0", "RTP/AVP 18"),
                wire_len(sdp) + 1,
            ),
            &[488],
        ),
        ("binary garbage", garbage, &[]),
        (
            "a 64 KB header line",
            options(18, &long_line, "1 OPTIONS"),
            &[200, 513],
        ),
        (
            "unknown compact form",
            options(19, "z: what is this\ny: 1\n", "1 OPTIONS"),
            &[200],
        ),
        (
            "header line without a colon",
            options(20, "This line has no colon\n", "1 OPTIONS"),
            &[400],
        ),
        (
            "SIP/3.0",
            req(&format!(
                "OPTIONS sip:12345@127.0.0.1 SIP/3.0\n{}CSeq: 1 OPTIONS\nContent-Length: 0\n\n",
                HEAD.replace("{N}", "21")
            )),
            &[505],
        ),
        (
            "unknown method",
            req(&format!(
                "FROBNICATE sip:12345@127.0.0.1 SIP/2.0\n{}CSeq: 1 FROBNICATE\nContent-Length: 0\n\n",
                HEAD.replace("{N}", "22")
            )),
            &[501],
        ),
        (
            "Request-URI without a scheme",
            req(&format!(
                "OPTIONS garbage SIP/2.0\n{}CSeq: 1 OPTIONS\nContent-Length: 0\n\n",
                HEAD.replace("{N}", "23")
            )),
            &[400],
        ),
        (
            "two spaces in the request line",
            req(&format!(
                "OPTIONS  sip:12345@127.0.0.1 SIP/2.0\n{}CSeq: 1 OPTIONS\nContent-Length: 0\n\n",
                HEAD.replace("{N}", "24")
            )),
            &[400],
        ),
        (
            "bytes that are not UTF-8 in a header",
            {
                let mut m = options(25, "X-Bin: \u{1}\n", "1 OPTIONS");
                let at = m.len() - 25;
                m[at] = 0xff;
                m
            },
            &[],
        ),
        (
            "a stray response",
            req(
                "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnobody\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: stray\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
            ),
            &[],
        ),
        ("only line ends", b"\r\n\r\n\r\n".to_vec(), &[]),
        (
            "BYE for no call",
            req(&format!(
                "BYE sip:12345@127.0.0.1 SIP/2.0\n{}CSeq: 2 BYE\nContent-Length: 0\n\n",
                HEAD.replace("{N}", "28").replace(
                    "To: <sip:12345@127.0.0.1>",
                    "To: <sip:12345@127.0.0.1>;tag=zz"
                )
            )),
            &[481],
        ),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (what, bytes, expected) in &cases {
        for transport in ["UDP", "TCP"] {
            // Over TCP a Content-Length larger than what was sent means "more is coming".
            if transport == "TCP" && *what == "Content-Length larger than the body" {
                continue;
            }
            let bytes = if transport == "TCP" {
                bytes.replace_via("TCP")
            } else {
                bytes.clone()
            };
            let wait = Duration::from_millis(if expected.is_empty() { 400 } else { 2000 });
            let got = match transport {
                "UDP" => over_udp(engine.addr(), &bytes, wait),
                _ => over_tcp(engine.addr(), &bytes, wait),
            };
            let ok = match got {
                None => expected.is_empty(),
                Some(code) => expected.contains(&code),
            };
            if !ok {
                failures.push(format!(
                    "{transport} {what}: expected {expected:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(engine.alive());
    still_answers(&engine);
}

trait ReplaceVia {
    fn replace_via(&self, transport: &str) -> Vec<u8>;
}

impl ReplaceVia for Vec<u8> {
    fn replace_via(&self, transport: &str) -> Vec<u8> {
        let needle = b"SIP/2.0/UDP";
        let mut out = self.clone();
        if let Some(at) = out.windows(needle.len()).position(|w| w == needle) {
            out[at + 8..at + 11].copy_from_slice(transport.as_bytes());
        }
        out
    }
}

/// Whether the engine closed `s` within `wait` (a read returns end of stream or an error
/// other than a timeout).
fn closed_by_engine(s: &mut TcpStream, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// TCP connections cannot pile up: a source holds at most its share, a connection that
/// never finishes its message (a slow drip) or says nothing is closed, and the counts show
/// in /metrics; a well-behaved connection still gets answers.
#[test]
fn tcp_connections_are_capped_and_slow_or_silent_ones_are_closed() {
    let dir = out_dir("tcp_limits");
    let engine = Engine::start(
        &dir,
        1.0,
        &[(
            "sip",
            "tcp_max_per_source = 3\ntcp_message_deadline_s = 2\ntcp_idle_s = 4\n",
        )],
    );
    let addr = engine.addr();
    let mut drip = TcpStream::connect(addr).expect("connect");
    let mut silent = TcpStream::connect(addr).expect("connect");
    let mut talker = TcpStream::connect(addr).expect("connect");
    let mut extra = TcpStream::connect(addr).expect("connect");
    assert!(
        closed_by_engine(&mut extra, Duration::from_secs(2)),
        "a fourth connection from one source is refused"
    );
    // The talker finishes a message at once and is answered.
    talker
        .write_all(&options(1, "", "1 OPTIONS"))
        .expect("write");
    let ok = answer(ANSWER_WAIT, |buf, left| {
        talker.set_read_timeout(Some(left)).expect("timeout");
        talker.read(buf).ok().filter(|&n| n > 0)
    });
    assert_eq!(ok, Some(200));
    // The drip sends its request a few bytes a second and never finishes it in time.
    let request = options(2, "", "1 OPTIONS");
    let started = Instant::now();
    for chunk in request.chunks(4).take(12) {
        if drip.write_all(chunk).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        closed_by_engine(&mut drip, Duration::from_secs(4)),
        "a dripped message is cut off at its deadline"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        closed_by_engine(&mut silent, Duration::from_secs(2)),
        "a connection that never sends a message is closed at the same deadline"
    );
    assert!(
        closed_by_engine(&mut talker, Duration::from_secs(8)),
        "an idle connection is closed after tcp_idle_s"
    );
    let metric = |s: &str| engine.metric(s).unwrap_or(0.0);
    assert_eq!(
        metric("hotline_sip_tcp_refused_total{reason=\"max_per_source\"}"),
        1.0
    );
    assert_eq!(
        metric("hotline_sip_tcp_closed_total{reason=\"message_deadline\"}"),
        2.0
    );
    assert_eq!(metric("hotline_sip_tcp_closed_total{reason=\"idle\"}"), 1.0);
    assert_eq!(metric("hotline_sip_tcp_connections"), 0.0);
    still_answers(&engine);
}
