//! The SDP a leg last sent and its version (RFC 3264 8): an SDP that describes the same
//! session as the last keeps its version, any other moves it on by one. It owns only that
//! memory; the legs build the SDP.

/// The last SDP a leg sent, and its version.
#[derive(Debug, Clone)]
pub(super) struct SentSdp {
    version: u64,
    last: Option<String>,
}

impl SentSdp {
    pub(super) fn new() -> SentSdp {
        SentSdp {
            version: 1,
            last: None,
        }
    }

    /// The SDP `build` makes for a version, at the version RFC 3264 asks for; remembered
    /// as the last sent.
    pub(super) fn next(&mut self, build: impl Fn(u64) -> String) -> String {
        let mut sdp = build(self.version);
        if self.last.as_ref().is_some_and(|last| *last != sdp) {
            self.version += 1;
            sdp = build(self.version);
        }
        self.last = Some(sdp.clone());
        sdp
    }

    /// The SDP last sent, if any.
    pub(super) fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_moves_only_when_the_session_does() {
        let mut sent = SentSdp::new();
        let held = |held: bool| {
            move |v: u64| {
                format!(
                    "o=- 7 {v}\na={}",
                    if held { "sendonly" } else { "sendrecv" }
                )
            }
        };
        assert_eq!(sent.next(held(false)), "o=- 7 1\na=sendrecv");
        assert_eq!(sent.next(held(false)), "o=- 7 1\na=sendrecv");
        assert_eq!(sent.next(held(true)), "o=- 7 2\na=sendonly");
        assert_eq!(sent.next(held(false)), "o=- 7 3\na=sendrecv");
        assert_eq!(sent.last(), Some("o=- 7 3\na=sendrecv"));
    }
}
