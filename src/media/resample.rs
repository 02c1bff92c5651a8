//! Between 8 and 16 kHz, for a wideband codec (G.722) bridged to a narrowband one, for
//! prompts (recorded at 8 kHz) played on a wideband leg, and for feeding Vosk at the rate
//! its model was trained on (bench/speech_accuracy.sh measures that against letting Kaldi
//! resample). Both directions are one half-band windowed-sinc filter, streaming one frame
//! at a time: the upsampler passes every input sample through and interpolates one between
//! each pair; the downsampler keeps every other sample of the filtered signal. Integer
//! taps (Q14), so the sums vectorise: this runs for every packet of every G.722 leg. Each
//! owns only its history.

const HALF: usize = 16;
const TAPS: usize = 2 * HALF;
/// The taps' fixed point: 1.0 is `1 << Q`.
const Q: u32 = 14;

/// The filter's odd-phase taps: the weights of the samples at distances k - HALF + 0.5
/// from the point half-way between two 8 kHz samples (symmetric, Blackman window, unity
/// gain at DC), in Q14.
fn half_band() -> [i32; TAPS] {
    let mut taps = [0f64; TAPS];
    for (k, c) in taps.iter_mut().enumerate() {
        let x = k as f64 - HALF as f64 + 0.5;
        let sinc = (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x);
        let phase = 2.0 * std::f64::consts::PI * (k as f64 + 0.5) / TAPS as f64;
        let window = 0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos();
        *c = sinc * window;
    }
    let sum: f64 = taps.iter().sum();
    taps.map(|c| (c / sum * f64::from(1 << Q)).round() as i32)
}

fn to_i16(x: i32) -> i16 {
    x.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// The last `N` samples of a stream as one slice, oldest first, without moving them:
/// each sample is written twice, `N` apart, so the newest `N` are always contiguous.
#[derive(Debug, Clone)]
pub(crate) struct History<const N: usize> {
    buf: [[i32; N]; 2],
    /// Where the newest sample is.
    newest: usize,
}

impl<const N: usize> History<N> {
    pub(crate) fn new() -> Self {
        History {
            buf: [[0; N]; 2],
            newest: N - 1,
        }
    }

    pub(crate) fn push(&mut self, sample: i32) {
        self.newest = (self.newest + 1) % N;
        self.buf[0][self.newest] = sample;
        self.buf[1][self.newest] = sample;
    }

    /// The last `N` samples, oldest first.
    pub(crate) fn samples(&self) -> &[i32; N] {
        let from = self.newest + 1;
        self.buf.as_flattened()[from..from + N]
            .try_into()
            .unwrap_or(&self.buf[1])
    }
}

/// Doubles the sample rate of a stream, one frame at a time, with a delay of `HALF`
/// input samples (2 ms).
pub struct Upsampler {
    taps: [i32; TAPS],
    history: History<TAPS>,
}

impl Default for Upsampler {
    fn default() -> Self {
        Upsampler::new()
    }
}

impl Upsampler {
    pub fn new() -> Upsampler {
        Upsampler {
            taps: half_band(),
            history: History::new(),
        }
    }

    /// Forgets the stream so far, as if it had been silent.
    pub fn reset(&mut self) {
        self.history = History::new();
    }

    /// Appends twice as many samples as `input` holds to `out` (cleared first).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.clear();
        out.reserve(input.len() * 2);
        for &s in input {
            self.history.push(i32::from(s));
            let window = self.history.samples();
            out.push(window[HALF - 1] as i16);
            let mid: i32 = window.iter().zip(&self.taps).map(|(h, c)| h * c).sum();
            out.push(to_i16((mid + (1 << (Q - 1))) >> Q));
        }
    }
}

/// Halves the sample rate of a stream (16 to 8 kHz), filtering out what lies above the
/// new band's 4 kHz first; a delay of `TAPS - 2` input samples (under 2 ms).
pub struct Downsampler {
    taps: [i32; TAPS],
    /// The last `2 * TAPS` input samples. The output sample's centre is at `TAPS`; its
    /// odd-distance neighbours reach both ends.
    history: History<{ 2 * TAPS }>,
}

impl Default for Downsampler {
    fn default() -> Self {
        Downsampler::new()
    }
}

impl Downsampler {
    pub fn new() -> Downsampler {
        Downsampler {
            taps: half_band(),
            history: History::new(),
        }
    }

    /// Appends one sample per pair of `input` to `out` (cleared first).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.clear();
        out.reserve(input.len() / 2);
        for pair in input.chunks_exact(2) {
            self.history.push(i32::from(pair[0]));
            self.history.push(i32::from(pair[1]));
            let window = self.history.samples();
            // A half-band filter: the centre tap is 1/2, the other even ones are zero and
            // the odd ones are half the interpolator's. The samples after the centre pair
            // with the taps in order, those before it in reverse.
            let (before, after) = window.split_at(TAPS);
            let centre = after[0];
            let later = after[1..].iter().step_by(2);
            let earlier = before.iter().rev().step_by(2);
            let odd: i32 = later
                .zip(earlier)
                .zip(&self.taps[HALF..])
                .map(|((a, b), c)| (a + b) * c)
                .sum();
            out.push(to_i16(((centre << Q) + odd + (1 << Q)) >> (Q + 1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_comes_out_at_twice_the_rate() {
        let input = tone(1000.0, 8000.0, 800);
        let mut up = Upsampler::new();
        let mut out = Vec::new();
        let mut all = Vec::new();
        for frame in input.chunks(160) {
            up.process(frame, &mut out);
            all.extend_from_slice(&out);
        }
        assert_eq!(all.len(), 1600);
        // A delay of HALF input samples: 2 * HALF output samples.
        let delay = 2 * HALF;
        let reference = tone(1000.0, 16000.0, 1600);
        let worst = (200..1500)
            .map(|i| (i32::from(all[i + delay]) - i32::from(reference[i])).abs())
            .max()
            .unwrap_or(i32::MAX);
        assert!(worst < 150, "worst error {worst} of 10000");
    }

    fn tone(hz: f64, rate: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (10000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate).sin()) as i16)
            .collect()
    }

    #[test]
    fn no_input_can_overflow_the_integer_sums() {
        // The largest sum is every tap times a full-scale sample of its sign; the
        // downsampler adds two samples per tap and the centre.
        let taps = half_band();
        let total: i64 = taps.iter().map(|&c| i64::from(c).abs()).sum();
        let odd: i64 = taps[HALF..].iter().map(|&c| i64::from(c).abs()).sum();
        let gain: i32 = taps.iter().sum();
        assert!((gain - (1 << Q)).abs() < 8, "unity gain at DC: {gain}");
        assert!(total * 32768 < i64::from(i32::MAX));
        assert!(odd * 2 * 32768 + (32768 << Q) + (1 << Q) < i64::from(i32::MAX));
    }

    #[test]
    fn the_history_is_the_last_samples_oldest_first() {
        let mut h = History::<4>::new();
        assert_eq!(h.samples(), &[0; 4]);
        for s in 1..=6 {
            h.push(s);
        }
        assert_eq!(h.samples(), &[3, 4, 5, 6]);
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn downsampling_keeps_the_narrow_band_and_removes_what_lies_above_it() {
        let mut down = Downsampler::new();
        let mut out = Vec::new();
        let mut all = Vec::new();
        for frame in tone(1000.0, 16000.0, 3200).chunks(320) {
            down.process(frame, &mut out);
            all.extend_from_slice(&out);
        }
        assert_eq!(all.len(), 1600);
        // A delay of TAPS - 2 input samples: HALF - 1 output samples.
        let reference = tone(1000.0, 8000.0, 1600);
        let worst = (200..1500)
            .map(|i| (i32::from(all[i + HALF - 1]) - i32::from(reference[i])).abs())
            .max()
            .unwrap_or(i32::MAX);
        assert!(worst < 150, "worst error {worst} of 10000");

        // 6 kHz would fold to 2 kHz at 8 kHz: it must be filtered out, not aliased.
        let mut down = Downsampler::new();
        down.process(&tone(6000.0, 16000.0, 3200), &mut out);
        assert!(
            rms(&out[100..]) < 100.0,
            "6 kHz leaked: RMS {}",
            rms(&out[100..])
        );
    }
}
