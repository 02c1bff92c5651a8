//! Prompt audio in memory: 8 kHz PCM decoded once, with its G.711 encodings made once, all
//! shared between the calls that play it (`Arc`, `Bytes`): a call never copies a prompt.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::g711::Law;

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{path}: {source}")]
    Read { path: String, source: hound::Error },
    #[error(
        "{path}: must be 8000 Hz mono 16-bit PCM, found {rate} Hz, {channels} channel(s), {bits} bits"
    )]
    Format {
        path: String,
        rate: u32,
        channels: u16,
        bits: u16,
    },
}

#[derive(Debug)]
pub struct Clip {
    pcm: Arc<[i16]>,
    ulaw: Bytes,
    alaw: Bytes,
}

impl Clip {
    pub fn from_pcm(pcm: Arc<[i16]>) -> Arc<Clip> {
        Arc::new(Clip {
            ulaw: Bytes::from(Law::Ulaw.encode_all(&pcm)),
            alaw: Bytes::from(Law::Alaw.encode_all(&pcm)),
            pcm,
        })
    }

    /// Reads an 8 kHz mono 16-bit PCM WAV file.
    pub fn load_wav(path: &Path) -> Result<Arc<Clip>, ClipError> {
        let shown = path.display().to_string();
        let reader = hound::WavReader::open(path).map_err(|source| ClipError::Read {
            path: shown.clone(),
            source,
        })?;
        let spec = reader.spec();
        if spec.sample_rate != 8000
            || spec.channels != 1
            || spec.bits_per_sample != 16
            || spec.sample_format != hound::SampleFormat::Int
        {
            return Err(ClipError::Format {
                path: shown,
                rate: spec.sample_rate,
                channels: spec.channels,
                bits: spec.bits_per_sample,
            });
        }
        let pcm = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<i16>, _>>()
            .map_err(|source| ClipError::Read {
                path: shown,
                source,
            })?;
        Ok(Clip::from_pcm(pcm.into()))
    }

    pub fn pcm(&self) -> &Arc<[i16]> {
        &self.pcm
    }

    pub fn encoded(&self, law: Law) -> &Bytes {
        match law {
            Law::Ulaw => &self.ulaw,
            Law::Alaw => &self.alaw,
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.pcm.len() as u64 / 8)
    }
}
