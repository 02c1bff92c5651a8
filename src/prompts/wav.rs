//! Reads prompt WAV files (recorded or rendered) into samples, refusing anything that is not
//! the engine's own format rather than playing it at the wrong speed.

use std::path::Path;

use super::PromptError;

pub fn read(path: &Path) -> Result<Vec<i16>, PromptError> {
    let wav_error = |source| PromptError::Wav {
        path: path.to_owned(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::IoError(source) => PromptError::Io {
            path: path.to_owned(),
            source,
        },
        other => wav_error(other),
    })?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(PromptError::Format {
            path: path.to_owned(),
            rate: spec.sample_rate,
            channels: spec.channels,
            bits: spec.bits_per_sample,
            format: match spec.sample_format {
                hound::SampleFormat::Int => "integer",
                hound::SampleFormat::Float => "float",
            },
        });
    }
    reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(wav_error)
}
