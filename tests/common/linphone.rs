//! linphonec (Debian's linphone-cli, liblinphone 5.1) as an independent SIP stack: a
//! phone that registers (unlike baresip 1.0 it answers RFC 7616 digest challenges with
//! SHA-256, so the registrar's default algorithm is exercised), or a caller with the
//! features carriers' phones and PBXs use: SDES-SRTP made mandatory and RFC 4028 session
//! timers that it refreshes itself. Killed when dropped.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, free_udp_block, wait_until};

pub struct Linphone {
    pub user: String,
    /// This phone's folder: linphonerc, its SIP trace (linphone.log) and its HOME.
    pub dir: PathBuf,
    child: Child,
}

impl Linphone {
    /// Starts a phone that calls `target` at once, offering only SRTP (SDES) and asking
    /// for a session timer of `session_expires` seconds, which it refreshes. It says the
    /// WAV file `play` (linphonec's file mode: there is no sound card here).
    pub fn call_srtp_with_timer(
        dir: &Path,
        target: &str,
        session_expires: u32,
        play: &Path,
    ) -> Linphone {
        let sip_port = free_port();
        let config = format!(
            "[sip]\nsip_port={sip_port}\nsip_tcp_port=0\nsip_tls_port=0\n\
             session_expires_enabled=1\nsession_expires_value={session_expires}\n\
             media_encryption=srtp\nmedia_encryption_mandatory=1\n\
             [rtp]\naudio_rtp_port={rtp}\n",
            rtp = free_udp_block(2),
        );
        let mut phone = Linphone::start(dir, "caller", sip_port, &config);
        phone.command("soundcard use files");
        phone.command(&format!("play {}", play.display()));
        phone.command(&format!("call {target}"));
        phone
    }

    /// Starts a phone that registers `user` with `password` at `registrar` at once.
    pub fn register(dir: &Path, user: &str, password: &str, registrar: SocketAddr) -> Linphone {
        let sip_port = free_port();
        let config = format!(
            "[sip]\nsip_port={sip_port}\nsip_tcp_port=0\nsip_tls_port=0\ndefault_proxy=0\n\
             [rtp]\naudio_rtp_port={rtp}\n\
             [proxy_0]\nreg_proxy=<sip:{registrar};transport=udp>\n\
             reg_identity=sip:{user}@{registrar}\nreg_expires=60\nreg_sendregister=1\npublish=0\n\
             [auth_info_0]\nusername={user}\npasswd={password}\n",
            rtp = free_udp_block(2),
        );
        Linphone::start(dir, user, sip_port, &config)
    }

    fn start(dir: &Path, user: &str, sip_port: u16, config: &str) -> Linphone {
        let home = dir.join(format!("linphone-{user}-{sip_port}"));
        std::fs::create_dir_all(home.join(".local/share/linphone"))
            .expect("create the phone's folder");
        let rc = home.join("linphonerc");
        std::fs::write(&rc, config).expect("write the linphone config");
        let child = Command::new("linphonec")
            .arg("-c")
            .arg(&rc)
            .args(["-d", "6", "-l"])
            .arg(home.join("linphone.log"))
            .env("HOME", &home)
            .current_dir(&home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run linphonec (package linphone-cli)");
        Linphone {
            user: user.to_owned(),
            dir: home,
            child,
        }
    }

    /// Its debug log, which holds every SIP message it sent and received.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("linphone.log")).unwrap_or_default()
    }

    /// Waits until its log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// Types a linphonec command (such as `call sip:...`).
    pub fn command(&mut self, line: &str) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
        }
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
