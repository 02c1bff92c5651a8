//! Between 8 and 16 kHz, for a wideband codec (G.722) bridged to a narrowband one, for
//! prompts (recorded at 8 kHz) played on a wideband leg, and for feeding Vosk at the rate
//! its model was trained on (bench/speech_accuracy.sh measures that against letting Kaldi
//! resample). Both directions are one half-band windowed-sinc filter, streaming one frame
//! at a time: the upsampler passes every input sample through and interpolates one between
//! each pair; the downsampler keeps every other sample of the filtered signal. Each owns
//! only its history.

const HALF: usize = 16;
const TAPS: usize = 2 * HALF;

/// The filter's odd-phase taps: the weights of the samples at distances k - HALF + 0.5
/// from the point half-way between two 8 kHz samples (symmetric, Blackman window, unity
/// gain at DC).
fn half_band() -> [f32; TAPS] {
    let mut coeffs = [0f32; TAPS];
    for (k, c) in coeffs.iter_mut().enumerate() {
        let x = k as f64 - HALF as f64 + 0.5;
        let sinc = (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x);
        let phase = 2.0 * std::f64::consts::PI * (k as f64 + 0.5) / TAPS as f64;
        let window = 0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos();
        *c = (sinc * window) as f32;
    }
    let sum: f32 = coeffs.iter().sum();
    coeffs.iter_mut().for_each(|c| *c /= sum);
    coeffs
}

fn to_i16(x: f32) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

/// Doubles the sample rate of a stream, one frame at a time, with a delay of `HALF`
/// input samples (2 ms).
pub struct Upsampler {
    coeffs: [f32; TAPS],
    /// The last `TAPS` input samples, oldest first.
    history: [f32; TAPS],
}

impl Default for Upsampler {
    fn default() -> Self {
        Upsampler::new()
    }
}

impl Upsampler {
    pub fn new() -> Upsampler {
        Upsampler {
            coeffs: half_band(),
            history: [0.0; TAPS],
        }
    }

    /// Forgets the stream so far, as if it had been silent.
    pub fn reset(&mut self) {
        self.history = [0.0; TAPS];
    }

    /// Appends twice as many samples as `input` holds to `out` (cleared first).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.clear();
        out.reserve(input.len() * 2);
        for &s in input {
            self.history.copy_within(1.., 0);
            self.history[TAPS - 1] = f32::from(s);
            out.push(self.history[HALF - 1] as i16);
            let mid: f32 = self
                .history
                .iter()
                .zip(self.coeffs.iter())
                .map(|(h, c)| h * c)
                .sum();
            out.push(to_i16(mid));
        }
    }
}

/// Halves the sample rate of a stream (16 to 8 kHz), filtering out what lies above the
/// new band's 4 kHz first; a delay of `TAPS - 2` input samples (under 2 ms).
pub struct Downsampler {
    coeffs: [f32; TAPS],
    /// The last `2 * TAPS` input samples, oldest first. The output sample's centre is at
    /// `TAPS`; its odd-distance neighbours reach both ends.
    history: [f32; 2 * TAPS],
}

impl Default for Downsampler {
    fn default() -> Self {
        Downsampler::new()
    }
}

impl Downsampler {
    pub fn new() -> Downsampler {
        Downsampler {
            coeffs: half_band(),
            history: [0.0; 2 * TAPS],
        }
    }

    /// Appends one sample per pair of `input` to `out` (cleared first).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.clear();
        out.reserve(input.len() / 2);
        for pair in input.chunks_exact(2) {
            self.history.copy_within(2.., 0);
            self.history[2 * TAPS - 2] = f32::from(pair[0]);
            self.history[2 * TAPS - 1] = f32::from(pair[1]);
            // A half-band filter: the centre tap is 1/2, the other even ones are zero and
            // the odd ones are half the interpolator's.
            let centre = TAPS;
            let odd: f32 = (0..HALF)
                .map(|j| {
                    let near = 2 * j + 1;
                    self.coeffs[HALF + j]
                        * (self.history[centre + near] + self.history[centre - near])
                })
                .sum();
            out.push(to_i16(0.5 * (self.history[centre] + odd)));
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
