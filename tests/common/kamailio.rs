//! Kamailio from Debian's package as a real registrar (and proxy) on loopback, configured
//! without a database, over UDP and, with its TLS module, over TLS: shared by the
//! agent-phone harness checks and the trunk registration tests.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::certs::Certs;
use super::{free_port, wait_until};

const WAIT: Duration = Duration::from_secs(10);

/// A Kamailio registrar on a free loopback port that challenges every REGISTER in realm
/// "hotline" with one digest `algorithm` and accepts the password "secret" for any user
/// (`pv_www_authenticate`: no database). Kamailio 5.6 traps met writing it:
/// `disable_tcp` (not `tcp_disable`); `is_method` needs textops (`$rm` does not);
/// `pv_www_authenticate`/`www_challenge` flags are integers, not strings; `fork=no` still
/// runs timer processes (4 in all) and `-DD` with forking 12, so it is stopped with
/// SIGTERM, which takes them down, never SIGKILL; the registrar grants at least
/// `min_expires` (default 60 s) whatever the phone asks; a wrong password is answered
/// with the same nonce again, which baresip re-sends 15 times before giving up. With TLS
/// it must fork (`fork=no` serves the first UDP socket only), and `disable_tcp` must be off.
pub struct Kamailio {
    child: Child,
    port: u16,
    tls_port: Option<u16>,
    log: PathBuf,
}

impl Kamailio {
    /// A registrar only: every other request gets 405.
    pub fn start(dir: &Path, algorithm: &str) -> Kamailio {
        Kamailio::start_with(dir, algorithm, "")
    }

    /// A registrar that also proxies: `route` (Kamailio script) runs for every request but
    /// REGISTER before the 405 (it `exit`s for what it handles); tm and the location
    /// lookup are loaded for it.
    pub fn start_with(dir: &Path, algorithm: &str, route: &str) -> Kamailio {
        Kamailio::launch(dir, algorithm, route, None)
    }

    /// As `start_with`, also listening for TLS with `certs` (the server's certificate; the
    /// engine's must be signed by their authority when Kamailio connects to it).
    pub fn start_tls(dir: &Path, algorithm: &str, route: &str, certs: &Certs) -> Kamailio {
        Kamailio::launch(dir, algorithm, route, Some(certs))
    }

    fn launch(dir: &Path, algorithm: &str, route: &str, tls: Option<&Certs>) -> Kamailio {
        let port = free_port();
        let run = dir.join("kamailio-run");
        std::fs::create_dir_all(&run).expect("create kamailio's runtime folder");
        let tls_port = tls.map(|_| free_port());
        let transports = match (tls, tls_port) {
            (Some(certs), Some(tls_port)) => {
                let tls_cfg = dir.join("kamailio-tls.cfg");
                std::fs::write(
                    &tls_cfg,
                    format!(
                        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                         require_certificate = no\nprivate_key = {key}\ncertificate = {cert}\n\n\
                         [client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n\
                         require_certificate = yes\nca_list = {ca}\n",
                        key = certs.key.display(),
                        cert = certs.cert.display(),
                        ca = certs.ca.display()
                    ),
                )
                .expect("write kamailio-tls.cfg");
                format!(
                    "fork=yes\nchildren=1\ntcp_children=1\nenable_tls=yes\n\
                     listen=udp:127.0.0.1:{port}\nlisten=tls:127.0.0.1:{tls_port}\n\
                     loadmodule \"/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so\"\n\
                     modparam(\"tls\", \"config\", \"{}\")\n",
                    tls_cfg.display()
                )
            }
            _ => format!("fork=no\ndisable_tcp=yes\nlisten=udp:127.0.0.1:{port}\n"),
        };
        let config = format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
auto_aliases=no
{transports}

mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"

modparam("auth", "algorithm", "{algorithm}")
modparam("registrar", "min_expires", 1)

request_route {{
    if ($rm != "REGISTER") {{
        {route}
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (!pv_www_authenticate("hotline", "secret", 0)) {{
        xlog("L_NOTICE", "REGISTER from $fu: challenged\n");
        www_challenge("hotline", 0);
        exit;
    }}
    xlog("L_NOTICE", "REGISTER from $fu: authenticated, Contact $ct\n");
    save("location");
    exit;
}}
"#
        );
        let cfg = dir.join("kamailio.cfg");
        std::fs::write(&cfg, config).expect("write kamailio.cfg");
        let log = dir.join("kamailio.log");
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&cfg)
            // `-D` forks nothing whatever `fork` says; `-DD` forks but stays in front.
            .arg(if tls.is_some() { "-DD" } else { "-D" })
            .args(["-E", "-m", "32", "-M", "4", "-Y"])
            .arg(&run)
            .arg("-w")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create kamailio.log"))
            .spawn()
            .expect("run kamailio (installed by make setup)");
        let kamailio = Kamailio {
            child,
            port,
            tls_port,
            log,
        };
        assert!(
            kamailio.answers_options(),
            "kamailio did not start:\n{}",
            kamailio.log()
        );
        kamailio
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its TLS port (on 127.0.0.1, and `localhost` as its certificate names it).
    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("started with start_tls")
    }

    /// Whether it answers an OPTIONS (with 405) within 10 s: then it is serving.
    fn answers_options(&self) -> bool {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let local = socket.local_addr().expect("local addr");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set timeout");
        let options = format!(
            "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe\r\n\
             From: <sip:probe@{local}>;tag=1\r\nTo: <sip:{0}>\r\nCall-ID: probe@{local}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            self.addr()
        );
        let until = Instant::now() + WAIT;
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            let _ = socket.send_to(options.as_bytes(), self.addr());
            if let Ok(n) = socket.recv(&mut buf) {
                return buf[..n].starts_with(b"SIP/2.0 405");
            }
        }
        false
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log contains `needle` (copied from its output by another thread).
    pub fn wait_log(&self, needle: &str) -> bool {
        wait_until(WAIT, || self.log().contains(needle))
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
