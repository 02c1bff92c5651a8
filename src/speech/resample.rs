//! 8 kHz to 16 kHz, for feeding Vosk at the rate its model was trained on (the other
//! option is 8 kHz as received, letting Kaldi resample; bench/speech_accuracy.sh
//! measures both). A streaming windowed-sinc interpolator: every input sample passes
//! through, and one sample is interpolated between each pair. Owns only its history.

const HALF: usize = 16;
const TAPS: usize = 2 * HALF;

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
        // The point half-way between history[HALF - 1] and history[HALF]: sinc taps at
        // distances k - HALF + 0.5 (symmetric), Blackman window, unity gain at DC.
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
        Upsampler {
            coeffs,
            history: [0.0; TAPS],
        }
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
            out.push(mid.round().clamp(-32768.0, 32767.0) as i16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_comes_out_at_twice_the_rate() {
        let tone = |rate: f64, n: usize| -> Vec<i16> {
            (0..n)
                .map(|i| {
                    (10000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate).sin()) as i16
                })
                .collect()
        };
        let input = tone(8000.0, 800);
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
        let reference = tone(16000.0, 1600);
        let worst = (200..1500)
            .map(|i| (i32::from(all[i + delay]) - i32::from(reference[i])).abs())
            .max()
            .unwrap_or(i32::MAX);
        assert!(worst < 150, "worst error {worst} of 10000");
    }
}
