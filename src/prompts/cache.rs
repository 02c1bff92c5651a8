//! Names of rendered prompts in the cache folder: one file per text, language, voice and
//! rate, so that editing a text renders it anew and nothing else does. The version of the
//! reading rules is part of the key: a change to how texts are read renders them anew.
//! Pure.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Bumped whenever `reading` or the language check changes what a text sounds like.
const READING_VERSION: &str = "reading-2";

pub fn path(dir: &Path, text: &str, language: &str, voice: &str, rate: u32) -> PathBuf {
    let mut hash = Sha256::new();
    for part in [text, language, voice, &rate.to_string(), READING_VERSION] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hex::encode(hash.finalize());
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    };
    dir.join(format!(
        "{}-{}-{}.wav",
        safe(language),
        safe(voice),
        &digest[..20]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_the_key_changes_the_name() {
        let dir = Path::new("cache");
        let base = path(dir, "您好", "cmn", "cmn", 150);
        assert!(base.starts_with("cache"));
        assert!(base.to_string_lossy().ends_with(".wav"));
        assert_eq!(base, path(dir, "您好", "cmn", "cmn", 150));
        for other in [
            path(dir, "您好。", "cmn", "cmn", 150),
            path(dir, "您好", "yue", "cmn", 150),
            path(dir, "您好", "cmn", "zh", 150),
            path(dir, "您好", "cmn", "cmn", 160),
        ] {
            assert_ne!(base, other);
        }
    }
}
