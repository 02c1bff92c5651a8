//! ITU-T G.722 at 64 kbit/s (mode 1): 16 kHz PCM split by a quadrature mirror filter into
//! two 8 kHz sub-bands, each coded by backward-adaptive ADPCM (6 bits for 0-4 kHz, 2 bits
//! for 4-8 kHz), one octet per pair of input samples. Sans-IO and stateful: each stream
//! needs its own `Encoder` or `Decoder`, kept for the life of the stream, because both
//! ends adapt their predictors from the codes alone. Integer arithmetic exactly as the
//! Recommendation states it, so we interoperate bit for bit with other implementations.
//!
//! The RTP clock of G.722 is 8000 Hz although it carries 16 kHz audio (RFC 3551 4.5.2):
//! a 20 ms packet holds 160 octets, 320 samples, and advances the timestamp by 160.

use super::resample::History;

/// The QMF's 24 coefficients, of which these are one half (the filter is symmetric).
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Low band: decision levels of the 6-bit quantizer, and the codes for each interval.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [u8; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [u8; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
/// Low band: the 6-bit inverse quantizer (what the decoder outputs).
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Low band: the 4-bit inverse quantizer that drives adaptation (the code's top 4 bits),
/// so a decoder that dropped the low bits would stay in step.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// The scale factor's mantissa (shared by both bands).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// High band: the 2-bit quantizer and its adaptation.
const IHN: [u8; 3] = [0, 1, 0];
const IHP: [u8; 3] = [0, 3, 2];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const RH2: [usize; 4] = [2, 1, 2, 1];
const WH: [i32; 3] = [0, -214, 798];

fn saturate(x: i32) -> i32 {
    x.clamp(i16::MIN as i32, i16::MAX as i32)
}

/// One sub-band's adaptive predictor and quantizer scale: identical in the encoder and
/// the decoder, updated from the transmitted code only.
#[derive(Debug, Clone)]
struct Band {
    /// The prediction of the next sample, and its zero part.
    s: i32,
    sz: i32,
    /// Reconstructed signal, partial reconstruction, pole and zero coefficients and
    /// quantized differences, newest first. Coefficients are numbered from 1 as in the
    /// Recommendation (`a[0]` and `b[0]` are unused).
    r: [i32; 3],
    a: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    /// The log scale factor and the quantizer step it gives.
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Band {
        Band {
            s: 0,
            sz: 0,
            r: [0; 3],
            a: [0; 3],
            p: [0; 3],
            d: [0; 7],
            b: [0; 7],
            nb: 0,
            det,
        }
    }

    /// Moves the log scale factor by `step` (leaking toward zero), bounded by `max`, and
    /// derives the quantizer step; `shift` is 8 in the low band, 10 in the high one.
    fn scale(&mut self, step: i32, max: i32, shift: i32) {
        self.nb = (((self.nb * 127) >> 7) + step).clamp(0, max);
        let mantissa = ILB[((self.nb >> 6) & 31) as usize];
        let exp = shift - (self.nb >> 11);
        let det = if exp < 0 {
            mantissa << -exp
        } else {
            mantissa >> exp
        };
        self.det = det << 2;
    }

    /// Adapts to a low-band code (6 bits): returns nothing, the next prediction is `s`.
    fn adapt_low(&mut self, code: u8) {
        let top = (code >> 2) as usize;
        let d = (self.det * QM4[top]) >> 15;
        self.scale(WL[RL42[top]], 18432, 8);
        self.predict(d);
    }

    /// Adapts to a high-band code (2 bits).
    fn adapt_high(&mut self, code: u8) {
        let d = (self.det * QM2[code as usize]) >> 15;
        self.scale(WH[RH2[code as usize]], 22528, 10);
        self.predict(d);
    }

    /// Block 4 of the Recommendation: reconstructs with the quantized difference `d`,
    /// updates the pole and zero coefficients by sign correlation, and predicts.
    fn predict(&mut self, d: i32) {
        let sign = |x: i32| x >> 15;
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        self.p[0] = saturate(self.sz + d);

        // Second pole coefficient.
        let a1x4 = saturate(self.a[1] << 2);
        let mut wd2 = if sign(self.p[0]) == sign(self.p[1]) {
            -a1x4
        } else {
            a1x4
        };
        wd2 = wd2.min(32767);
        let mut ap2 = (wd2 >> 7)
            + if sign(self.p[0]) == sign(self.p[2]) {
                128
            } else {
                -128
            };
        ap2 += (self.a[2] * 32512) >> 15;
        let ap2 = ap2.clamp(-12288, 12288);

        // First pole coefficient, kept inside the stability triangle.
        let step = if sign(self.p[0]) == sign(self.p[1]) {
            192
        } else {
            -192
        };
        let ap1 = saturate(step + ((self.a[1] * 32640) >> 15));
        let limit = saturate(15360 - ap2);
        let ap1 = ap1.clamp(-limit, limit);

        // Zero coefficients, then the delay lines.
        let gain = if d == 0 { 0 } else { 128 };
        // Each zero coefficient leaks toward 0 and steps toward agreeing in sign with
        // the difference it weighs (`b[0]` is unused, so it stays 0).
        for (b, &past) in self.b.iter_mut().zip(self.d.iter()).skip(1) {
            let toward = if sign(past) == sign(d) { gain } else { -gain };
            *b = saturate(toward + ((*b * 32640) >> 15));
        }
        self.d.copy_within(0..6, 1);
        self.r.copy_within(0..2, 1);
        self.p.copy_within(0..2, 1);
        self.a[1] = ap1;
        self.a[2] = ap2;

        // The next prediction.
        let pole = |a: i32, r: i32| (a * saturate(r + r)) >> 15;
        let sp = saturate(pole(self.a[1], self.r[1]) + pole(self.a[2], self.r[2]));
        let zeros: i32 = (1..7)
            .map(|i| (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15)
            .sum();
        self.sz = saturate(zeros);
        self.s = saturate(sp + self.sz);
    }
}

/// Both bands' state and the QMF's history: what a stream's encoder or decoder keeps.
#[derive(Debug, Clone)]
struct State {
    /// The last 24 samples through the QMF.
    x: History<24>,
    low: Band,
    high: Band,
}

impl Default for State {
    fn default() -> Self {
        State {
            x: History::new(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }
}

impl State {
    /// Shifts a pair into the QMF history and returns the two filter sums (the taps on the
    /// older and on the newer sample of each pair).
    fn qmf(&mut self, first: i32, second: i32) -> (i32, i32) {
        self.x.push(first);
        self.x.push(second);
        let x = self.x.samples();
        let mut older = 0;
        let mut newer = 0;
        for (i, pair) in x.chunks_exact(2).enumerate() {
            older += pair[0] * QMF[i];
            newer += pair[1] * QMF[11 - i];
        }
        (older, newer)
    }
}

/// Encodes one stream of 16 kHz PCM.
#[derive(Debug, Clone, Default)]
pub struct Encoder(State);

impl Encoder {
    /// Encodes pairs of samples from `pcm` into `out`, one octet each; returns how many
    /// octets were written (an odd last sample is left out).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let st = &mut self.0;
        let mut n = 0;
        for (pair, byte) in pcm.chunks_exact(2).zip(out.iter_mut()) {
            let (older, newer) = st.qmf(pair[0] as i32, pair[1] as i32);
            let xlow = (newer + older) >> 14;
            let xhigh = (newer - older) >> 14;

            let el = saturate(xlow - st.low.s);
            let magnitude = if el >= 0 { el } else { -(el + 1) };
            // The first decision level above the magnitude (levels rise: a binary search).
            let level = 1 + Q6[1..30].partition_point(|&q| magnitude >= (q * st.low.det) >> 12);
            let ilow = if el < 0 { ILN[level] } else { ILP[level] };
            st.low.adapt_low(ilow);

            let eh = saturate(xhigh - st.high.s);
            let magnitude = if eh >= 0 { eh } else { -(eh + 1) };
            let level = if magnitude >= (564 * st.high.det) >> 12 {
                2
            } else {
                1
            };
            let ihigh = if eh < 0 { IHN[level] } else { IHP[level] };
            st.high.adapt_high(ihigh);

            *byte = (ihigh << 6) | ilow;
            n += 1;
        }
        n
    }
}

/// Decodes one stream into 16 kHz PCM.
#[derive(Debug, Clone, Default)]
pub struct Decoder(State);

impl Decoder {
    /// Appends two samples per octet of `codes` to `out`.
    pub fn decode(&mut self, codes: &[u8], out: &mut Vec<i16>) {
        let st = &mut self.0;
        out.reserve(codes.len() * 2);
        for &code in codes {
            let ilow = code & 0x3f;
            let ihigh = code >> 6;
            let rlow = (st.low.s + ((st.low.det * QM6[ilow as usize]) >> 15)).clamp(-16384, 16383);
            st.low.adapt_low(ilow);
            let rhigh =
                (st.high.s + ((st.high.det * QM2[ihigh as usize]) >> 15)).clamp(-16384, 16383);
            st.high.adapt_high(ihigh);

            let (older, newer) = st.qmf(rlow + rhigh, rlow - rhigh);
            out.push(saturate(newer >> 11) as i16);
            out.push(saturate(older >> 11) as i16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, amplitude: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / 16000.0).sin()) as i16
            })
            .collect()
    }

    fn round_trip(pcm: &[i16]) -> Vec<i16> {
        let mut codes = vec![0u8; pcm.len() / 2];
        assert_eq!(Encoder::default().encode(pcm, &mut codes), codes.len());
        let mut out = Vec::new();
        Decoder::default().decode(&codes, &mut out);
        out
    }

    /// The signal-to-noise ratio of `out` against `input` at the best alignment (the two
    /// QMFs delay the signal by a few samples), after the predictors have settled.
    fn snr_db(input: &[i16], out: &[i16]) -> f64 {
        let settle = 1600;
        (0..48)
            .map(|lag| {
                let (mut signal, mut noise) = (0f64, 0f64);
                for i in settle..input.len() - 48 {
                    let x = input[i] as f64;
                    let e = out[i + lag] as f64 - x;
                    signal += x * x;
                    noise += e * e;
                }
                10.0 * (signal / noise.max(1.0)).log10()
            })
            .fold(f64::MIN, f64::max)
    }

    #[test]
    fn tones_across_the_wide_band_survive_a_round_trip() {
        // 300 Hz to 3.4 kHz is the telephone band; 5 and 6.5 kHz are what G.711 cannot carry
        // at all and the high sub-band (2 bits) carries coarsely.
        for (hz, min_db) in [
            (300.0, 25.0),
            (1000.0, 25.0),
            (3000.0, 20.0),
            (5000.0, 8.0),
            (6500.0, 8.0),
        ] {
            let input = tone(hz, 8000.0, 16000);
            let out = round_trip(&input);
            assert_eq!(out.len(), input.len());
            let snr = snr_db(&input, &out);
            assert!(snr > min_db, "{hz} Hz: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn silence_codes_to_silence_and_loud_input_does_not_overflow() {
        let out = round_trip(&[0i16; 3200]);
        assert!(out.iter().all(|&s| s.abs() <= 4), "{:?}", &out[..32]);
        // Full-scale square waves drive every clamp and saturation.
        let square: Vec<i16> = (0..3200)
            .map(|i| {
                if (i / 20) % 2 == 0 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        let out = round_trip(&square);
        let energy = |s: &[i16]| s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>();
        assert!(energy(&out[1600..]) > 0.5 * energy(&square[1600..]));
    }

    #[test]
    fn a_stream_coded_in_pieces_equals_one_coded_whole() {
        let input = tone(440.0, 6000.0, 3200);
        let mut whole = vec![0u8; 1600];
        Encoder::default().encode(&input, &mut whole);
        let mut enc = Encoder::default();
        let mut pieces = vec![0u8; 1600];
        for (pcm, out) in input.chunks(320).zip(pieces.chunks_mut(160)) {
            assert_eq!(enc.encode(pcm, out), 160);
        }
        assert_eq!(whole, pieces, "the state carries across packets");
        let mut dec = Decoder::default();
        let mut out = Vec::new();
        for codes in pieces.chunks(160) {
            dec.decode(codes, &mut out);
        }
        assert_eq!(out.len(), 3200);
    }
}
