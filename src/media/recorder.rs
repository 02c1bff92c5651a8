//! Recording what a call leg receives into an 8 kHz 16-bit WAV file. Gaps in the RTP
//! timestamps (lost packets, silence suppression) become silence, so the file lasts as long
//! as the caller's audio did. Owned by the media worker that owns the leg.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Gaps longer than this (a held call, a restarted stream) are not filled.
const MAX_GAP_SAMPLES: u32 = 8000 * 10;

pub struct Recorder {
    writer: hound::WavWriter<BufWriter<File>>,
    next_ts: Option<u32>,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Recorder, hound::Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(Recorder {
            writer: hound::WavWriter::create(path, spec)?,
            next_ts: None,
        })
    }

    /// Appends one frame received with RTP timestamp `ts`.
    pub fn write(&mut self, ts: u32, pcm: &[i16]) -> Result<(), hound::Error> {
        if let Some(next) = self.next_ts {
            let gap = ts.wrapping_sub(next);
            if gap > 0 && gap < MAX_GAP_SAMPLES {
                for _ in 0..gap {
                    self.writer.write_sample(0i16)?;
                }
            }
        }
        for &s in pcm {
            self.writer.write_sample(s)?;
        }
        self.next_ts = Some(ts.wrapping_add(pcm.len() as u32));
        Ok(())
    }

    /// Writes the WAV header's final sizes.
    pub fn finish(self) -> Result<(), hound::Error> {
        self.writer.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_in_timestamps_become_silence() {
        let dir = std::env::temp_dir().join(format!("hotline-rec-{}", std::process::id()));
        let path = dir.join("r.wav");
        let mut r = Recorder::create(&path).expect("create");
        r.write(1000, &[100; 160]).expect("write");
        r.write(1320, &[200; 160]).expect("write"); // one 20 ms packet lost
        r.write(1480, &[300; 160]).expect("write");
        r.finish().expect("finish");
        let samples: Vec<i16> = hound::WavReader::open(&path)
            .expect("open")
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(samples.len(), 640);
        assert_eq!(
            (samples[0], samples[200], samples[400], samples[639]),
            (100, 0, 200, 300)
        );
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
