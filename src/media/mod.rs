//! Media: SDP offer/answer, RTP packets, the jitter buffer, G.711, RFC 4733 DTMF, prompt
//! playback and recording as sans-IO pieces, and the media workers (the only tokio part)
//! that own the RTP sockets and pace every call's audio from one shared 20 ms clock.

use std::path::Path;

use serde::Deserialize;

use crate::diag::{Diagnostic, PathKey, Problem};

/// The `[media]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// First and last RTP port (even ports are used; the odd one above is left for RTCP).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// A call whose RTP stopped for this long is ended.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub media_timeout_s: u64,
    /// How long the receiver holds packets to put them back in order.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub jitter_ms: u64,
    /// Codecs we accept, in our order of preference when the offer leaves a choice.
    pub codecs: Vec<String>,
    /// Media workers (each owns a share of the calls); 0 = one per core.
    pub workers: usize,
    /// Networks (CIDR) audio may be sent to besides each call's signalling peer and the
    /// trunks' networks, such as a carrier's media gateways. An offer naming any other
    /// address gets its audio at the signalling peer's address instead.
    pub remote_networks: Vec<String>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_port_min: 20000,
            rtp_port_max: 39999,
            media_timeout_s: 30,
            jitter_ms: 60,
            codecs: vec!["PCMU".into(), "PCMA".into()],
            workers: 0,
            remote_networks: Vec::new(),
        }
    }
}

impl MediaConfig {
    /// Every problem of the section, with paths from the file's root.
    pub fn problems(&self) -> Vec<Problem> {
        self.remote_networks
            .iter()
            .enumerate()
            .filter_map(|(i, cidr)| {
                let e = cidr.parse::<crate::cidr::Cidr>().err()?;
                Some(Problem {
                    path: vec![
                        PathKey::Key("media".to_owned()),
                        PathKey::Key("remote_networks".to_owned()),
                        PathKey::Index(i),
                    ],
                    message: e.to_string(),
                })
            })
            .collect()
    }

    pub fn diagnostics(&self, file: &Path, text: &str) -> Vec<Diagnostic> {
        crate::diag::diagnostics(file, text, self.problems())
    }
}

/// The `[recording]` section: what the caller sends, one WAV per call.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    pub enabled: bool,
    pub dir: String,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: false,
            dir: "data/recordings".into(),
        }
    }
}

pub mod clip;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod recorder;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod worker;
