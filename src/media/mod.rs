//! Media: SDP offer/answer, RTP packets, the jitter buffer, G.711 and G.722, RFC 4733
//! DTMF, prompt playback and recording as sans-IO pieces, and the media workers (the only
//! tokio part) that own the RTP sockets and pace every call's audio from one shared 20 ms
//! clock.

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
    /// Codecs we accept (`PCMU`, `PCMA`, `G722`), in the order our offers list them. An
    /// answer takes G.722 whenever both sides have it (wideband), else the offer's first.
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
            codecs: vec!["G722".into(), "PCMU".into(), "PCMA".into()],
            workers: 0,
            remote_networks: Vec::new(),
        }
    }
}

impl MediaConfig {
    /// Every problem of the section, with paths from the file's root.
    pub fn problems(&self) -> Vec<Problem> {
        let at = |key: &str, i: Option<usize>| {
            let mut path = vec![
                PathKey::Key("media".to_owned()),
                PathKey::Key(key.to_owned()),
            ];
            path.extend(i.map(PathKey::Index));
            path
        };
        let mut problems: Vec<Problem> = self
            .remote_networks
            .iter()
            .enumerate()
            .filter_map(|(i, cidr)| {
                let e = cidr.parse::<crate::cidr::Cidr>().err()?;
                Some(Problem {
                    path: at("remote_networks", Some(i)),
                    message: e.to_string(),
                })
            })
            .collect();
        let known = || {
            codec::Codec::ALL
                .iter()
                .map(|c| format!("\"{}\"", c.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, name) in self.codecs.iter().enumerate() {
            if codec::Codec::from_name(name).is_none() {
                problems.push(Problem {
                    path: at("codecs", Some(i)),
                    message: format!("unknown codec {name:?}: write one of {}", known()),
                });
            }
        }
        if self.codecs.is_empty() {
            problems.push(Problem {
                path: at("codecs", None),
                message: format!(
                    "no codec: every call would be refused; list some of {}",
                    known()
                ),
            });
        }
        problems
    }

    /// The configured codecs, in order (unknown names are reported by `problems` first).
    pub fn codec_list(&self) -> Vec<codec::Codec> {
        self.codecs
            .iter()
            .filter_map(|c| codec::Codec::from_name(c))
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
pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod g722;
pub mod jitter;
pub mod recorder;
pub mod resample;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod worker;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Vec<String> {
        let config = crate::config::Config::parse(Path::new("x.toml"), text).expect("parses");
        config
            .media
            .diagnostics(Path::new("x.toml"), text)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_unknown_or_missing_codec_is_reported_where_it_was_written() {
        assert_eq!(
            check("[media]\ncodecs = [\"g722\", \"PCMA\"]\n"),
            Vec::<String>::new()
        );
        let found = check("[media]\ncodecs = [\"PCMU\", \"G729\"]\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("x.toml:2:19: ")
                && found[0]
                    .contains("unknown codec \"G729\": write one of \"PCMU\", \"PCMA\", \"G722\""),
            "{found:?}"
        );
        let found = check("[media]\ncodecs = []\n");
        assert!(
            found.len() == 1 && found[0].contains("no codec: every call would be refused"),
            "{found:?}"
        );
    }
}
