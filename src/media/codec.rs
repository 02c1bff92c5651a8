//! The codecs a leg can speak (G.711 µ-law and A-law, G.722), and each leg's coding state:
//! what turns 20 ms of audio into a payload and a payload back into audio. Audio moves
//! inside the engine at 8 kHz (prompts, the recorder, the recognizer's feed, bridges to
//! narrowband legs), with the 16 kHz original alongside when it came from a wideband leg,
//! so two wideband legs bridge without losing the upper band. Sans-IO; owns no clock.

use super::g711::Law;
use super::g722;
use super::resample::{Downsampler, Upsampler};

/// Samples per 20 ms at 8 kHz, and octets of one 20 ms payload of every codec here.
pub const FRAME_SAMPLES: usize = 160;
/// Samples per 20 ms at 16 kHz.
pub const WIDE_SAMPLES: usize = 2 * FRAME_SAMPLES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    G711(Law),
    G722,
}

impl Codec {
    pub const PCMU: Codec = Codec::G711(Law::Ulaw);
    pub const PCMA: Codec = Codec::G711(Law::Alaw);

    /// Every codec, by the name the config and SDP use.
    pub const ALL: [Codec; 3] = [Codec::PCMU, Codec::PCMA, Codec::G722];

    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::G711(law) => law.payload_type(),
            Codec::G722 => 9,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::G711(law) => law.name(),
            Codec::G722 => "G722",
        }
    }

    /// A config name (any case): `PCMU`, `PCMA` or `G722`.
    pub fn from_name(name: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Carries 16 kHz audio (better for the recognizer and for agents).
    pub fn is_wideband(self) -> bool {
        self == Codec::G722
    }
}

/// 20 ms of audio at 8 kHz, with the 16 kHz original when a wideband leg sent it.
#[derive(Clone)]
pub struct Audio {
    pub narrow: [i16; FRAME_SAMPLES],
    pub wide: Option<[i16; WIDE_SAMPLES]>,
}

impl Audio {
    /// Up to 20 ms of `narrow` 8 kHz samples, and the matching `wide` ones if there are
    /// any, padded with silence.
    pub fn new(narrow: &[i16], wide: &[i16]) -> Audio {
        let mut frame = [0i16; FRAME_SAMPLES];
        let n = narrow.len().min(FRAME_SAMPLES);
        frame[..n].copy_from_slice(&narrow[..n]);
        Audio {
            narrow: frame,
            wide: (!wide.is_empty()).then(|| {
                let mut w = [0i16; WIDE_SAMPLES];
                let n = wide.len().min(WIDE_SAMPLES);
                w[..n].copy_from_slice(&wide[..n]);
                w
            }),
        }
    }
}

/// Turns a leg's 20 ms frames into payloads.
pub enum Encoder {
    G711(Law),
    G722(Box<WideEncoder>),
}

/// A G.722 stream's encoder, with what turns 8 kHz audio into its 16 kHz input.
pub struct WideEncoder {
    codec: g722::Encoder,
    up: Upsampler,
    wide: Vec<i16>,
}

impl Encoder {
    pub fn new(codec: Codec) -> Encoder {
        match codec {
            Codec::G711(law) => Encoder::G711(law),
            Codec::G722 => Encoder::G722(Box::new(WideEncoder {
                codec: g722::Encoder::default(),
                up: Upsampler::new(),
                wide: Vec::with_capacity(WIDE_SAMPLES),
            })),
        }
    }

    /// Encodes 20 ms: the wideband original when there is one and we can carry it, else
    /// the 8 kHz samples (upsampled for G.722).
    pub fn encode(&mut self, audio: &Audio, out: &mut [u8; FRAME_SAMPLES]) {
        match self {
            Encoder::G711(law) => {
                for (b, &x) in out.iter_mut().zip(audio.narrow.iter()) {
                    *b = law.encode(x);
                }
            }
            Encoder::G722(e) => match &audio.wide {
                Some(original) => {
                    // The upsampler's history would replay this audio's end, late, if
                    // 8 kHz audio (a prompt, silence) came next: it starts afresh then.
                    e.up.reset();
                    e.codec.encode(original, out);
                }
                None => {
                    e.up.process(&audio.narrow, &mut e.wide);
                    e.codec.encode(&e.wide, out);
                }
            },
        }
    }
}

/// Turns a leg's received payloads back into audio.
pub enum Decoder {
    G711(Law),
    G722(Box<WideDecoder>),
}

/// A G.722 stream's decoder, with what turns its 16 kHz output into 8 kHz.
pub struct WideDecoder {
    codec: g722::Decoder,
    down: Downsampler,
}

impl Decoder {
    pub fn new(codec: Codec) -> Decoder {
        match codec {
            Codec::G711(law) => Decoder::G711(law),
            Codec::G722 => Decoder::G722(Box::new(WideDecoder {
                codec: g722::Decoder::default(),
                down: Downsampler::new(),
            })),
        }
    }

    /// Decodes one payload into 8 kHz samples in `narrow` and, for a wideband codec, the
    /// 16 kHz ones in `wide` (both cleared first; `wide` stays empty for G.711).
    pub fn decode(&mut self, payload: &[u8], narrow: &mut Vec<i16>, wide: &mut Vec<i16>) {
        wide.clear();
        match self {
            Decoder::G711(law) => law.decode_into(payload, narrow),
            Decoder::G722(d) => {
                d.codec.decode(payload, wide);
                d.down.process(wide, narrow);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_payload_types_are_rfc_3551s() {
        assert_eq!(Codec::from_name("g722"), Some(Codec::G722));
        assert_eq!(Codec::from_name("PCMA"), Some(Codec::PCMA));
        assert_eq!(Codec::from_name("G729"), None);
        let types: Vec<_> = Codec::ALL.iter().map(|c| c.payload_type()).collect();
        assert_eq!(types, [0, 8, 9]);
    }

    /// A 1 kHz tone at 8 kHz, 20 ms at a time from sample `at`.
    fn tone_frame(at: usize) -> Audio {
        let pcm: Vec<i16> = (at..at + FRAME_SAMPLES)
            .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * i as f64 / 8.0).sin()) as i16)
            .collect();
        Audio::new(&pcm, &[])
    }

    #[test]
    fn narrowband_audio_crosses_a_g722_leg_and_comes_back_narrow() {
        let mut enc = Encoder::new(Codec::G722);
        let mut dec = Decoder::new(Codec::G722);
        let (mut narrow, mut wide) = (Vec::new(), Vec::new());
        let mut back = Vec::new();
        let mut sent = Vec::new();
        for f in 0..20 {
            let frame = tone_frame(f * FRAME_SAMPLES);
            sent.extend_from_slice(&frame.narrow);
            let mut payload = [0u8; FRAME_SAMPLES];
            enc.encode(&frame, &mut payload);
            dec.decode(&payload, &mut narrow, &mut wide);
            assert_eq!((narrow.len(), wide.len()), (FRAME_SAMPLES, WIDE_SAMPLES));
            back.extend_from_slice(&narrow);
        }
        // The resamplers and the QMFs delay the tone; find it at its best alignment.
        let err = (0..64)
            .map(|lag| {
                (800..3000)
                    .map(|i| (back[i + lag] as f64 - sent[i] as f64).powi(2))
                    .sum::<f64>()
            })
            .fold(f64::MAX, f64::min);
        let signal: f64 = (800..3000).map(|i| (sent[i] as f64).powi(2)).sum();
        let snr = 10.0 * (signal / err).log10();
        assert!(snr > 15.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn g711_codes_each_sample_and_has_no_wideband_side() {
        let mut enc = Encoder::new(Codec::PCMA);
        let frame = tone_frame(0);
        let mut payload = [0u8; FRAME_SAMPLES];
        enc.encode(&frame, &mut payload);
        assert_eq!(payload[2], Law::Alaw.encode(frame.narrow[2]));
        let (mut narrow, mut wide) = (Vec::new(), vec![1i16]);
        Decoder::new(Codec::PCMA).decode(&payload, &mut narrow, &mut wide);
        assert_eq!(narrow[2], Law::Alaw.decode(payload[2]));
        assert!(wide.is_empty());
    }
}
