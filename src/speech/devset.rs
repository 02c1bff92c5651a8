//! The shared speech dev set (`../shared/speech/dev` beside the project): where it is and
//! what its manifests say. Used by the clip tests and the accuracy benchmark; the engine
//! itself never reads it.

use std::path::{Path, PathBuf};

use super::SpeechError;

/// One Mandarin telephone clip of `manifest.tsv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub file: PathBuf,
    pub lang: String,
    /// The queue the caller should land in.
    pub queue: String,
    /// What was said.
    pub text: String,
    /// What vosk-model-small-cn-0.22 transcribed when the set was made.
    pub vosk_text: String,
}

/// One Cantonese request of `yue_text.tsv`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub queue: String,
    pub text: String,
}

/// The shared folder: `../shared` beside the project root (a normal checkout), else
/// `$HOTLINE_SHARED`, else `../../shared` (a git worktree under `wt/`).
pub fn shared_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        Some(root.join("../shared")),
        std::env::var_os("HOTLINE_SHARED").map(PathBuf::from),
        Some(root.join("../../shared")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.join("speech/dev/manifest.tsv").is_file())
}

/// `speech/dev` of the shared folder.
pub fn dev_dir() -> Result<PathBuf, SpeechError> {
    shared_dir()
        .map(|d| d.join("speech/dev"))
        .ok_or_else(|| SpeechError::File {
            path: PathBuf::from("../shared/speech/dev"),
            reason: "the shared dev set is not beside the project; set HOTLINE_SHARED".into(),
        })
}

fn rows(path: &Path, columns: usize) -> Result<Vec<Vec<String>>, SpeechError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpeechError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let fields: Vec<String> = l.split('\t').map(str::to_owned).collect();
            if fields.len() < columns {
                return Err(SpeechError::File {
                    path: path.to_owned(),
                    reason: format!("line {}: {columns} tab-separated columns expected", i + 1),
                });
            }
            Ok(fields)
        })
        .collect()
}

/// The clips of `dir/manifest.tsv` (file, lang, queue, text, duration_s, vosk_text).
pub fn clips(dir: &Path) -> Result<Vec<Clip>, SpeechError> {
    Ok(rows(&dir.join("manifest.tsv"), 6)?
        .into_iter()
        .map(|f| Clip {
            file: dir.join(&f[0]),
            lang: f[1].clone(),
            queue: f[2].clone(),
            text: f[3].clone(),
            vosk_text: f[5].clone(),
        })
        .collect())
}

/// The lines of `dir/yue_text.tsv` (queue, text).
pub fn cantonese_lines(dir: &Path) -> Result<Vec<TextLine>, SpeechError> {
    Ok(rows(&dir.join("yue_text.tsv"), 2)?
        .into_iter()
        .map(|f| TextLine {
            queue: f[0].clone(),
            text: f[1].clone(),
        })
        .collect())
}
