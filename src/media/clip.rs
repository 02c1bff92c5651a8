//! Prompt audio in memory: 8 kHz PCM decoded once, with its G.711 encodings made once, all
//! shared between the calls that play it (`Arc`, `Bytes`): a call never copies a prompt.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::g711::Law;

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
