//! SDP offer/answer (RFC 3264) for G.711 audio and RFC 4733 telephone-events, over the
//! `sdp` crate: reading a peer's description, choosing a codec and whether the stream is
//! SRTP keyed by SDES (RFC 4568 `a=crypto`), and writing ours. Pure.

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaDescription, MediaName, RangedPort};
use sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::codec::Codec;
use super::srtp::{MASTER_LEN, Suite};
use crate::cidr::Cidr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("no audio stream offered")]
    NoAudio,
    #[error("no codec in common (we take PCMU and PCMA)")]
    NoCommonCodec,
    #[error(
        "audio offered only as {0} (we take RTP/AVP, and RTP/SAVP keyed by a=crypto with AES_CM_128_HMAC_SHA1_80 or _32)"
    )]
    Profile(String),
    #[error("this trunk requires SRTP (media_encryption = \"sdes\"): offer RTP/SAVP with a=crypto")]
    EncryptionRequired,
    #[error("media address {0} is not one we can send to: {1}")]
    Address(IpAddr, &'static str),
}

/// RFC 3264 6.1 stream direction, from the point of view of the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answerer writes for an offer with this one.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether we may send media when we wrote this direction.
    pub fn we_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether we expect to receive media when we wrote this direction.
    pub fn we_receive(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// What a peer's SDP says about its (first) audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where to send RTP; the IP is unspecified (0.0.0.0) when the peer holds the call.
    pub addr: SocketAddr,
    /// The formats we know, in the peer's order of preference.
    pub codecs: Vec<Codec>,
    /// The payload type of telephone-event/8000, if offered.
    pub dtmf_pt: Option<u8>,
    pub direction: Direction,
    /// The other m= lines (index, media, proto), which an answer lists again with port 0.
    others: Vec<(usize, String, String)>,
    /// The stream is RTP/SAVP: the first of its `a=crypto` lines we can use.
    pub crypto: Option<Crypto>,
}

/// An SDES `a=crypto` line (RFC 4568 9.1): its tag, suite and the master key and salt of
/// the side that wrote it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: Suite,
    pub master: [u8; MASTER_LEN],
}

impl Crypto {
    /// Reads `1 AES_CM_128_HMAC_SHA1_80 inline:KEY[|lifetime]`; `None` for a suite we lack,
    /// several keys, an MKI (which we would have to carry in every packet) or a session
    /// parameter (which changes the transform).
    fn parse(value: &str) -> Option<Crypto> {
        let mut words = value.split_ascii_whitespace();
        let tag = words.next()?.parse().ok()?;
        let suite = Suite::from_name(words.next()?)?;
        let key = words.next()?.strip_prefix("inline:")?;
        // Session parameters about SRTCP alone are harmless: we send none and drop it.
        let srtcp_only = |w: &str| matches!(w, "UNENCRYPTED_SRTCP" | "UNAUTHENTICATED_SRTCP");
        if !words.all(srtcp_only) || key.contains(';') {
            return None;
        }
        let mut parts = key.split('|');
        let master = STANDARD.decode(parts.next()?).ok()?.try_into().ok()?;
        // A lifetime may follow; an MKI (`n:len`) may not.
        if parts.any(|p| p.contains(':')) {
            return None;
        }
        Some(Crypto { tag, suite, master })
    }

    fn to_attribute(self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.master)
        )
    }
}

/// Whether a call's media may, or must, be SRTP (`[trunks.named.NAME] media_encryption`:
/// `"optional"` or `"sdes"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum Encryption {
    /// SRTP when the offer asks for it, RTP otherwise.
    #[default]
    #[serde(rename = "optional")]
    Optional,
    /// SRTP only: an offer without a usable `a=crypto` line is refused (488).
    #[serde(rename = "sdes")]
    Required,
}

/// What an answer's SRTP needs: the policy and our master key for the call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Security {
    pub encryption: Encryption,
    pub master: [u8; MASTER_LEN],
}

impl Security {
    /// A fresh master key (random per call) under `encryption`.
    pub fn new(encryption: Encryption) -> Security {
        Security {
            encryption,
            master: rand::random(),
        }
    }
}

/// The keys of an SRTP stream: the suite, ours (what we send) and the peer's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: Suite,
    pub ours: [u8; MASTER_LEN],
    pub theirs: [u8; MASTER_LEN],
}

// Keys never reach a log: what holds them prints everything else.
impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Crypto {{ tag: {}, suite: {:?}, .. }}",
            self.tag, self.suite
        )
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Security {{ encryption: {:?}, .. }}", self.encryption)
    }
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpKeys {{ suite: {:?}, .. }}", self.suite)
    }
}

/// The result of offer/answer for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    pub dtmf_pt: Option<u8>,
    pub remote: SocketAddr,
    /// The offer's address when it was outside the call's reach: `remote` is then the
    /// signalling peer's address with the offered port.
    pub redirected_from: Option<IpAddr>,
    /// The direction we write (the answer's, or our offer's).
    pub direction: Direction,
    /// The stream is SRTP with these keys.
    pub srtp: Option<SrtpKeys>,
}

impl RemoteMedia {
    pub fn parse(body: &[u8]) -> Result<RemoteMedia, SdpError> {
        let sd = SessionDescription::unmarshal(&mut Cursor::new(body))
            .map_err(|e| SdpError::Malformed(e.to_string()))?;
        let audio =
            |m: &&MediaDescription| m.media_name.media == "audio" && m.media_name.port.value > 0;
        let proto = |m: &MediaDescription| m.media_name.protos.join("/");
        // RTP, or SRTP we can key: a stream answered in another profile than offered would
        // be silence both ways. The first SRTP stream is ours, else the first RTP one (an
        // offer of both, in either order, is answered encrypted).
        let crypto = |m: &MediaDescription| {
            m.attributes
                .iter()
                .filter(|a| a.key == "crypto")
                .find_map(|a| Crypto::parse(a.value.as_deref()?))
        };
        let streams = || {
            sd.media_descriptions
                .iter()
                .enumerate()
                .filter(|(_, m)| audio(m))
        };
        let secure = streams().find_map(|(i, m)| {
            proto(m)
                .eq_ignore_ascii_case("RTP/SAVP")
                .then(|| crypto(m))
                .flatten()
                .map(|c| (i, Some(c)))
        });
        let (audio_index, crypto) = secure
            .or_else(|| {
                streams()
                    .find(|(_, m)| proto(m).eq_ignore_ascii_case("RTP/AVP"))
                    .map(|(i, _)| (i, None))
            })
            .ok_or_else(|| match sd.media_descriptions.iter().find(audio) {
                Some(m) => SdpError::Profile(proto(m)),
                None => SdpError::NoAudio,
            })?;
        let m = &sd.media_descriptions[audio_index];
        let conn = m
            .connection_information
            .as_ref()
            .or(sd.connection_information.as_ref())
            .and_then(|c| c.address.as_ref())
            .ok_or_else(|| SdpError::Malformed("no c= line for the audio stream".into()))?;
        let ip: IpAddr = conn.address.parse().map_err(|_| {
            SdpError::Malformed(format!("c= address {:?} is not an IP", conn.address))
        })?;
        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        if ip.is_multicast() || broadcast {
            return Err(SdpError::Address(ip, "not a unicast address"));
        }
        let port = u16::try_from(m.media_name.port.value)
            .map_err(|_| SdpError::Malformed("audio port out of range".into()))?;
        let rtpmaps: Vec<(u8, String)> = m
            .attributes
            .iter()
            .filter(|a| a.key == "rtpmap")
            .filter_map(|a| {
                let (pt, name) = a.value.as_deref()?.split_once(' ')?;
                Some((pt.parse().ok()?, name.to_ascii_lowercase()))
            })
            .collect();
        let name_of = |pt: u8| {
            rtpmaps
                .iter()
                .find(|(p, _)| *p == pt)
                .map(|(_, n)| n.as_str())
        };
        let mut codecs = Vec::new();
        let mut dtmf_pt = None;
        for f in &m.media_name.formats {
            let Ok(pt) = f.parse::<u8>() else { continue };
            let codec = match name_of(pt) {
                Some(n) if n.starts_with("telephone-event/8000") => {
                    dtmf_pt = Some(pt);
                    None
                }
                // Our codecs have static types, which an answer must keep (RFC 3264 6.1): a
                // name on another type is one we would answer wrongly. G.722's RTP clock
                // is 8000 although it samples at 16 kHz (RFC 3551 4.5.2).
                Some(n) => Codec::ALL.into_iter().find(|c| {
                    c.payload_type() == pt
                        && n.strip_prefix(&c.name().to_ascii_lowercase())
                            .is_some_and(|rest| rest == "/8000" || rest == "/8000/1")
                }),
                // A static payload type needs no rtpmap.
                None => Codec::ALL.into_iter().find(|c| c.payload_type() == pt),
            };
            codecs.extend(codec);
        }
        let direction = [&m.attributes, &sd.attributes]
            .into_iter()
            .flat_map(|attrs| attrs.iter())
            .find_map(|a| match a.key.as_str() {
                "sendrecv" => Some(Direction::SendRecv),
                "sendonly" => Some(Direction::SendOnly),
                "recvonly" => Some(Direction::RecvOnly),
                "inactive" => Some(Direction::Inactive),
                _ => None,
            })
            .unwrap_or(Direction::SendRecv);
        let others = sd
            .media_descriptions
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != audio_index)
            .map(|(i, m)| (i, m.media_name.media.clone(), m.media_name.protos.join("/")))
            .collect();
        Ok(RemoteMedia {
            addr: SocketAddr::new(ip, port),
            codecs,
            dtmf_pt,
            direction,
            others,
            crypto,
        })
    }

    /// Answers this offer with G.722 when both sides have it (wideband: better for the
    /// recognizer and for agents), else with the peer's first codec that we accept
    /// (`ours`); the rest as `settle` says.
    pub fn negotiate(
        &self,
        ours: &[Codec],
        reach: &Reach,
        security: &Security,
    ) -> Result<Negotiated, SdpError> {
        let common = || self.codecs.iter().copied().filter(|c| ours.contains(c));
        let codec = common()
            .find(|c| c.is_wideband())
            .or_else(|| common().next());
        self.settle(codec, reach, security)
    }

    /// Reads the answer to our offer: the answerer sends with the first codec it lists
    /// (RFC 3264 6.1), so that is the one we decode, and send too; the rest as `settle` says.
    pub fn accept_answer(
        &self,
        ours: &[Codec],
        reach: &Reach,
        security: &Security,
    ) -> Result<Negotiated, SdpError> {
        let codec = self.codecs.iter().copied().find(|c| ours.contains(c));
        self.settle(codec, reach, security)
    }

    /// The stream with `codec`, sent from `reach.local` to the peer's address if the call
    /// may reach it, else to the signalling peer at the peer's port (a NATed phone's
    /// private address; a dual-stack phone that signals over IPv4 and names its IPv6
    /// address, as Linphone does; an attacker's aim at a third host). Refused only when
    /// neither is of our family. An SRTP stream is keyed with `security`'s master key for
    /// what we send; a trunk that requires SRTP refuses an RTP one.
    fn settle(
        &self,
        codec: Option<Codec>,
        reach: &Reach,
        security: &Security,
    ) -> Result<Negotiated, SdpError> {
        if self.crypto.is_none() && security.encryption == Encryption::Required {
            return Err(SdpError::EncryptionRequired);
        }
        let ip = self.addr.ip();
        let our_family = |a: IpAddr| a.to_canonical().is_ipv4() == reach.local.is_ipv4();
        let foreign = !ip.is_unspecified() && !our_family(ip);
        if foreign && !our_family(reach.peer) {
            return Err(SdpError::Address(
                ip,
                "another address family than our media's",
            ));
        }
        let codec = codec.ok_or(SdpError::NoCommonCodec)?;
        let allowed = ip.is_unspecified() || (!foreign && reach.allows(ip));
        Ok(Negotiated {
            codec,
            dtmf_pt: self.dtmf_pt,
            remote: if allowed {
                self.addr
            } else {
                SocketAddr::new(reach.peer, self.addr.port())
            },
            redirected_from: (!allowed).then_some(ip),
            direction: self.direction.answer(),
            srtp: self.crypto.map(|c| SrtpKeys {
                suite: c.suite,
                ours: security.master,
                theirs: c.master,
            }),
        })
    }

    /// Whether the peer put the stream on hold (RFC 3264 8.4, and RFC 2543's c=0.0.0.0).
    pub fn is_hold(&self) -> bool {
        self.addr.ip().is_unspecified()
            || matches!(self.direction, Direction::SendOnly | Direction::Inactive)
    }
}

/// Where a call's audio may be sent: our address family, the call's signalling peer, and
/// the networks the operator trusts (the trunks' and `[media] remote_networks`). Audio never
/// goes to a third host an offer names, so an INVITE cannot aim our RTP at anyone.
#[derive(Debug, Clone)]
pub struct Reach {
    pub local: IpAddr,
    pub peer: IpAddr,
    pub networks: Arc<[Cidr]>,
}

impl Reach {
    pub fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
        ip.to_canonical() == self.peer.to_canonical()
            || self.networks.iter().any(|c| c.contains(ip))
    }
}

/// Writes our side of the description: an answer to `remote` when given (keeping its
/// m-line order and rejecting its other streams), else an offer of `codecs`.
pub struct LocalMedia<'a> {
    pub ip: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub version: u64,
    pub codecs: &'a [Codec],
    pub dtmf_pt: Option<u8>,
    pub direction: Direction,
    /// Our master key, written when answering an SRTP offer or offering SRTP.
    pub master: &'a [u8; MASTER_LEN],
    /// An offer (no `remote`) of SRTP with this suite; RTP when `None`.
    pub offer_srtp: Option<Suite>,
}

impl LocalMedia<'_> {
    pub fn to_sdp(&self, remote: Option<&RemoteMedia>) -> String {
        let ip = self.ip.to_string();
        let addr_type = if self.ip.is_ipv4() { "IP4" } else { "IP6" };
        let attr = |key: &str, value: Option<String>| Attribute {
            key: key.to_owned(),
            value,
        };
        let mut formats: Vec<String> = self
            .codecs
            .iter()
            .map(|l| l.payload_type().to_string())
            .collect();
        let mut attributes: Vec<Attribute> = self
            .codecs
            .iter()
            .map(|l| {
                attr(
                    "rtpmap",
                    Some(format!("{} {}/8000", l.payload_type(), l.name())),
                )
            })
            .collect();
        if let Some(pt) = self.dtmf_pt {
            formats.push(pt.to_string());
            attributes.push(attr("rtpmap", Some(format!("{pt} telephone-event/8000"))));
            attributes.push(attr("fmtp", Some(format!("{pt} 0-16"))));
        }
        attributes.push(attr("ptime", Some("20".into())));
        attributes.push(attr(self.direction.attr(), None));
        // SRTP answers the offer's chosen line with its tag and suite, and our key; an
        // offer of SRTP has one line, tag 1.
        let crypto = match remote {
            Some(r) => r.crypto.map(|c| Crypto {
                master: *self.master,
                ..c
            }),
            None => self.offer_srtp.map(|suite| Crypto {
                tag: 1,
                suite,
                master: *self.master,
            }),
        };
        if let Some(c) = crypto {
            attributes.push(attr("crypto", Some(c.to_attribute())));
        }
        let protos = match crypto {
            Some(_) => vec!["RTP".into(), "SAVP".into()],
            None => vec!["RTP".into(), "AVP".into()],
        };
        let audio = MediaDescription {
            media_name: MediaName {
                media: "audio".into(),
                port: RangedPort {
                    value: self.port as isize,
                    range: None,
                },
                protos,
                formats,
            },
            media_title: None,
            connection_information: None,
            bandwidth: Vec::new(),
            encryption_key: None,
            attributes,
        };
        // An answer keeps the offer's m-lines in order, the ones we refuse with port 0.
        let mut media = vec![audio];
        if let Some(r) = remote {
            media = (0..=r.others.len())
                .map(|i| match r.others.iter().find(|(at, _, _)| *at == i) {
                    Some((_, kind, proto)) => rejected(kind, proto),
                    None => media[0].clone(),
                })
                .collect();
        }
        let sd = SessionDescription {
            version: 0,
            origin: Origin {
                username: "hotline".into(),
                session_id: self.session_id,
                session_version: self.version,
                network_type: "IN".into(),
                address_type: addr_type.into(),
                unicast_address: ip.clone(),
            },
            session_name: "hotline".into(),
            session_information: None,
            uri: None,
            email_address: None,
            phone_number: None,
            connection_information: Some(ConnectionInformation {
                network_type: "IN".into(),
                address_type: addr_type.into(),
                address: Some(Address {
                    address: ip,
                    ttl: None,
                    range: None,
                }),
            }),
            bandwidth: Vec::new(),
            time_descriptions: vec![TimeDescription {
                timing: Timing {
                    start_time: 0,
                    stop_time: 0,
                },
                repeat_times: Vec::new(),
            }],
            time_zones: Vec::new(),
            encryption_key: None,
            attributes: Vec::new(),
            media_descriptions: media,
        };
        sd.marshal()
    }
}

fn rejected(kind: &str, proto: &str) -> MediaDescription {
    MediaDescription {
        media_name: MediaName {
            media: kind.to_owned(),
            port: RangedPort {
                value: 0,
                range: None,
            },
            protos: proto.split('/').map(str::to_owned).collect(),
            formats: vec!["0".into()],
        },
        media_title: None,
        connection_information: None,
        bandwidth: Vec::new(),
        encryption_key: None,
        attributes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A call from 127.0.0.1 with no other trusted network.
    fn reach() -> Reach {
        reach_from(LOCAL, "127.0.0.1")
    }

    fn plain() -> Security {
        Security::new(Encryption::Optional)
    }

    /// Our answer to `remote` from 127.0.0.1:20000 with what `n` negotiated.
    fn answer(remote: &RemoteMedia, n: &Negotiated, master: &[u8; MASTER_LEN]) -> String {
        LocalMedia {
            ip: LOCAL,
            port: 20000,
            session_id: 7,
            version: 1,
            codecs: &[n.codec],
            dtmf_pt: n.dtmf_pt,
            direction: n.direction,
            master,
            offer_srtp: None,
        }
        .to_sdp(Some(remote))
    }

    fn reach_from(local: IpAddr, peer: &str) -> Reach {
        Reach {
            local,
            peer: peer.parse().expect("ip"),
            networks: Arc::from(Vec::new()),
        }
    }

    const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 18 8 0 101\r\n\
a=rtpmap:18 G729/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

    #[test]
    fn the_first_g711_law_of_the_offer_wins_and_dtmf_is_kept() {
        let remote = RemoteMedia::parse(OFFER.as_bytes()).expect("valid offer");
        assert_eq!(
            remote.addr,
            "127.0.0.1:6000"
                .parse::<std::net::SocketAddr>()
                .expect("addr")
        );
        assert_eq!(remote.codecs, [Codec::PCMA, Codec::PCMU]);
        let n = remote
            .negotiate(&[Codec::PCMU, Codec::PCMA], &reach(), &plain())
            .expect("common codec");
        assert_eq!(n.codec, Codec::PCMA);
        assert_eq!(n.dtmf_pt, Some(101));
        assert_eq!(n.direction, Direction::SendRecv);
    }

    #[test]
    fn g722_is_taken_whenever_both_sides_have_it_and_written_at_its_8000_clock() {
        let offer = |formats: &str, maps: &str| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP {formats}\r\n{maps}"
            )
        };
        // Listed second by the peer, by rtpmap; and by its static type alone.
        let mapped = offer(
            "0 9 101",
            "a=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        let remote = RemoteMedia::parse(mapped.as_bytes()).expect("valid");
        assert_eq!(remote.codecs, [Codec::PCMU, Codec::G722]);
        let ours = [Codec::PCMU, Codec::PCMA, Codec::G722];
        let n = remote.negotiate(&ours, &reach(), &plain()).expect("common");
        assert_eq!(n.codec, Codec::G722, "wideband when both sides have it");
        assert_eq!(
            remote
                .negotiate(&[Codec::PCMU], &reach(), &plain())
                .map(|n| n.codec),
            Ok(Codec::PCMU),
            "not when we do not accept it"
        );
        let read = remote.accept_answer(&ours, &reach(), &plain());
        assert_eq!(
            read.map(|n| n.codec),
            Ok(Codec::PCMU),
            "an answer's first codec is the one its writer sends"
        );
        // Named on a dynamic type, or with another clock: not a codec we can answer.
        let dynamic = offer("96 0", "a=rtpmap:96 G722/8000\r\na=rtpmap:0 PCMU/80000\r\n");
        let dynamic = RemoteMedia::parse(dynamic.as_bytes()).expect("valid");
        assert_eq!(dynamic.codecs, []);
        let only = RemoteMedia::parse(offer("9", "").as_bytes()).expect("valid");
        assert_eq!(only.codecs, [Codec::G722]);
        assert_eq!(
            only.negotiate(&[Codec::PCMU], &reach(), &plain()),
            Err(SdpError::NoCommonCodec)
        );
        let answer = answer(&remote, &n, &[7; MASTER_LEN]);
        assert!(
            answer.contains("m=audio 20000 RTP/AVP 9 101\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:9 G722/8000\r\n"), "{answer}");
    }

    #[test]
    fn the_answer_lists_our_port_codec_dtmf_and_rejects_other_streams() {
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.4\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n\
m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
        let remote = RemoteMedia::parse(offer.as_bytes()).expect("valid");
        let n = remote
            .negotiate(&[Codec::PCMU, Codec::PCMA], &reach(), &plain())
            .expect("PCMU");
        let answer = answer(&remote, &n, &[7; MASTER_LEN]);
        assert!(answer.contains("m=audio 20000 RTP/AVP 0\r\n"), "{answer}");
        assert!(answer.contains("c=IN IP4 127.0.0.1\r\n"), "{answer}");
        assert!(answer.contains("a=rtpmap:0 PCMU/8000\r\n"), "{answer}");
        assert!(answer.contains("a=sendrecv\r\n"), "{answer}");
        let video = answer
            .find("m=video 0 RTP/AVP")
            .expect("rejected video stream listed");
        assert!(
            video > answer.find("m=audio").expect("audio"),
            "m-line order kept"
        );
        // And it reads back.
        let back = RemoteMedia::parse(answer.as_bytes()).expect("our answer parses");
        assert_eq!(back.addr.port(), 20000);
    }

    #[test]
    fn no_common_codec_and_holds_are_recognised() {
        let g729 = OFFER.replace("RTP/AVP 18 8 0 101", "RTP/AVP 18");
        let remote = RemoteMedia::parse(g729.as_bytes()).expect("valid");
        assert_eq!(
            remote.negotiate(&[Codec::PCMU], &reach(), &plain()),
            Err(SdpError::NoCommonCodec)
        );

        let hold = format!("{OFFER}a=sendonly\r\n");
        let remote = RemoteMedia::parse(hold.as_bytes()).expect("valid");
        assert!(remote.is_hold());
        assert_eq!(
            remote
                .negotiate(&[Codec::PCMU], &reach(), &plain())
                .expect("ok")
                .direction,
            Direction::RecvOnly
        );

        let old_hold = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert!(
            RemoteMedia::parse(old_hold.as_bytes())
                .expect("valid")
                .is_hold()
        );
        assert!(
            !RemoteMedia::parse(OFFER.as_bytes())
                .expect("valid")
                .is_hold()
        );
    }

    /// An SDES offer: tag 2 with a suite we lack, tag 3 with ours and a lifetime.
    fn sdes_offer() -> String {
        let key = STANDARD.encode([5u8; MASTER_LEN]);
        OFFER.replace("RTP/AVP", "RTP/SAVP")
            + &format!(
                "a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:{key}\r\n\
                 a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{key}|2^31\r\n"
            )
    }

    #[test]
    fn an_sdes_offer_is_answered_with_srtp_under_its_tag_and_our_key() {
        let remote = RemoteMedia::parse(sdes_offer().as_bytes()).expect("valid");
        let ours = Security {
            encryption: Encryption::Optional,
            master: [9; MASTER_LEN],
        };
        let n = remote
            .negotiate(&[Codec::PCMU], &reach(), &ours)
            .expect("SRTP");
        assert_eq!(
            n.srtp,
            Some(SrtpKeys {
                suite: Suite::AesCm128HmacSha1_32,
                ours: [9; MASTER_LEN],
                theirs: [5; MASTER_LEN],
            })
        );
        let answer = answer(&remote, &n, &ours.master);
        assert!(
            answer.contains("m=audio 20000 RTP/SAVP 0 101\r\n"),
            "{answer}"
        );
        let line = format!(
            "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n",
            STANDARD.encode([9u8; MASTER_LEN])
        );
        assert!(answer.contains(&line), "{answer}");
        assert_eq!(answer.matches("a=crypto").count(), 1, "{answer}");
    }

    #[test]
    fn an_srtp_offer_carries_one_crypto_line_and_its_answer_keys_the_stream() {
        let offer = LocalMedia {
            ip: "127.0.0.1".parse().expect("ip"),
            port: 20000,
            session_id: 7,
            version: 2,
            codecs: &[Codec::PCMU],
            dtmf_pt: Some(101),
            direction: Direction::SendRecv,
            master: &[9; MASTER_LEN],
            offer_srtp: Some(Suite::AesCm128HmacSha1_80),
        }
        .to_sdp(None);
        assert!(
            offer.contains("m=audio 20000 RTP/SAVP 0 101\r\n"),
            "{offer}"
        );
        let line = format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
            STANDARD.encode([9u8; MASTER_LEN])
        );
        assert!(offer.contains(&line), "{offer}");
        // The peer answers with its own key under our tag.
        let answer = offer.replace(
            &STANDARD.encode([9u8; MASTER_LEN]),
            &STANDARD.encode([4u8; MASTER_LEN]),
        );
        let remote = RemoteMedia::parse(answer.as_bytes()).expect("valid");
        let ours = Security {
            encryption: Encryption::Required,
            master: [9; MASTER_LEN],
        };
        let n = remote
            .negotiate(&[Codec::PCMU], &reach(), &ours)
            .expect("SRTP");
        assert_eq!(n.srtp.map(|k| (k.ours, k.theirs)), Some(([9; 30], [4; 30])));
        assert_eq!(
            format!("{:?}", n.srtp),
            "Some(SrtpKeys { suite: AesCm128HmacSha1_80, .. })",
            "no key in logs"
        );
    }

    #[test]
    fn a_trunk_requiring_srtp_refuses_rtp_and_unusable_keys_are_not_srtp() {
        let required = Security {
            encryption: Encryption::Required,
            master: [9; MASTER_LEN],
        };
        let plain_offer = RemoteMedia::parse(OFFER.as_bytes()).expect("valid");
        assert_eq!(
            plain_offer.negotiate(&[Codec::PCMU], &reach(), &required),
            Err(SdpError::EncryptionRequired)
        );
        let secure = RemoteMedia::parse(sdes_offer().as_bytes()).expect("valid");
        assert!(
            secure
                .negotiate(&[Codec::PCMU], &reach(), &required)
                .is_ok()
        );
        // An MKI, or a key of the wrong length, leaves no line we can use.
        let key = STANDARD.encode([5u8; MASTER_LEN]);
        for bad in [
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4\r\n"),
            format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
                STANDARD.encode([5u8; 16])
            ),
        ] {
            let offer = OFFER.replace("RTP/AVP", "RTP/SAVP") + &bad;
            assert_eq!(
                RemoteMedia::parse(offer.as_bytes()),
                Err(SdpError::Profile("RTP/SAVP".into())),
                "{bad}"
            );
        }
        // Best-effort SRTP offered as two streams, in either order: SRTP is answered.
        let avp_first = format!(
            "{}m=audio 6002 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n",
            OFFER
        );
        let remote = RemoteMedia::parse(avp_first.as_bytes()).expect("valid");
        assert!(remote.crypto.is_some());
        assert_eq!(remote.addr.port(), 6002);
        assert!(
            remote
                .negotiate(&[Codec::PCMU], &reach(), &required)
                .is_ok()
        );
    }

    #[test]
    fn broadcast_is_refused_and_a_foreign_family_is_heard_at_the_signalling_peer() {
        let srtp = OFFER.replace("RTP/AVP", "RTP/SAVP");
        assert_eq!(
            RemoteMedia::parse(srtp.as_bytes()),
            Err(SdpError::Profile("RTP/SAVP".into()))
        );
        // Best-effort SRTP offers plain RTP as a second stream: that one is answered.
        let both = format!("{srtp}m=audio 6002 RTP/AVP 0\r\n");
        let remote = RemoteMedia::parse(both.as_bytes()).expect("the RTP/AVP stream");
        assert_eq!(remote.addr.port(), 6002);
        for address in ["255.255.255.255", "224.0.0.1"] {
            let offer = OFFER.replace("c=IN IP4 127.0.0.1", &format!("c=IN IP4 {address}"));
            assert!(
                matches!(
                    RemoteMedia::parse(offer.as_bytes()),
                    Err(SdpError::Address(..))
                ),
                "{address}"
            );
        }
        let v6 = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP6 2001:db8::5");
        let remote = RemoteMedia::parse(v6.as_bytes()).expect("valid");
        // A dual-stack phone signalling over IPv4 hears us at its IPv4 address.
        let n = remote
            .negotiate(&[Codec::PCMU], &reach(), &plain())
            .expect("answered");
        assert_eq!(n.remote, SocketAddr::from(([127, 0, 0, 1], 6000)));
        assert_eq!(n.redirected_from, "2001:db8::5".parse::<IpAddr>().ok());
        // Neither the offer nor the signalling peer is of our family: nothing to send to.
        assert!(matches!(
            remote.negotiate(&[Codec::PCMU], &reach_from(LOCAL, "2001:db8::5"), &plain()),
            Err(SdpError::Address(..))
        ));
        assert!(
            remote
                .negotiate(
                    &[Codec::PCMU],
                    &reach_from("::1".parse().expect("ip"), "2001:db8::5"),
                    &plain()
                )
                .is_ok()
        );
    }

    #[test]
    fn audio_goes_only_to_the_signalling_peer_or_a_trusted_network() {
        let elsewhere = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 198.51.100.7");
        let remote = RemoteMedia::parse(elsewhere.as_bytes()).expect("valid");
        let from_trunk = reach_from(LOCAL, "10.0.0.1");
        let n = remote
            .negotiate(&[Codec::PCMU], &from_trunk, &plain())
            .expect("answered");
        assert_eq!(
            n.remote,
            "10.0.0.1:6000".parse::<SocketAddr>().expect("addr"),
            "not the third host"
        );
        assert_eq!(
            n.redirected_from,
            Some("198.51.100.7".parse::<IpAddr>().expect("ip"))
        );
        let gateways = Reach {
            networks: Arc::from(vec!["198.51.100.0/24".parse().expect("cidr")]),
            ..from_trunk
        };
        let n = remote
            .negotiate(&[Codec::PCMU], &gateways, &plain())
            .expect("answered");
        assert_eq!(
            n.remote,
            "198.51.100.7:6000".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(n.redirected_from, None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            RemoteMedia::parse(b"\x00\xff garbage"),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            RemoteMedia::parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"),
            Err(SdpError::NoAudio)
        ));
    }
}
