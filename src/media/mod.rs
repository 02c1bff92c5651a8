//! Media: SDP offer/answer, RTP packets, the jitter buffer, G.711, RFC 4733 DTMF, prompt
//! playback and recording as sans-IO pieces, and the media workers (the only tokio part)
//! that own the RTP sockets and pace every call's audio from one shared 20 ms clock.

use serde::Deserialize;

/// The `[media]` section of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// First and last RTP port (even ports are used; the odd one above is left for RTCP).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// A call whose RTP stopped for this long is ended.
    pub media_timeout_s: u64,
    /// How long the receiver holds packets to put them back in order.
    pub jitter_ms: u64,
    /// Codecs we accept, in our order of preference when the offer leaves a choice.
    pub codecs: Vec<String>,
    /// Media workers (each owns a share of the calls); 0 = one per core.
    pub workers: usize,
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
        }
    }
}

/// The `[recording]` section: what the caller sends, one WAV per call.
#[derive(Debug, Clone, Deserialize)]
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
pub mod worker;
