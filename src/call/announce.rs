//! What a queued caller hears: position and estimated-wait announcements (spoken once per
//! distinct text, then cached on disk and in memory) and the comfort audio between them.
//! Owned by the engine and shared by every call; rendering runs off the async runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tracing::warn;

use crate::media::clip::Clip;
use crate::prompts::{self, PromptConfig};

/// The announcement text for a caller at `position` (1 = next) with an estimated wait.
/// The estimate is spoken in whole minutes, rounded up, and left out beyond an hour.
pub fn text(language: &str, position: u32, wait: Option<Duration>) -> String {
    let minutes = wait
        .map(|w| w.as_secs().div_ceil(60).max(1))
        .filter(|&m| m <= 60);
    match language {
        "yue" => {
            let mut t = if position <= 1 {
                "你係下一位".to_owned()
            } else {
                format!("你而家排第{position}位")
            };
            if let Some(m) = minutes {
                t.push_str(&format!("，預計等候{m}分鐘"));
            }
            t.push_str("。請唔好收線。");
            t
        }
        _ => {
            let mut t = if position <= 1 {
                "您是下一位".to_owned()
            } else {
                format!("您现在排在第{position}位")
            };
            if let Some(m) = minutes {
                t.push_str(&format!("，预计等待{m}分钟"));
            }
            t.push_str("。请不要挂机。");
            t
        }
    }
}

/// Renders and caches announcements.
pub struct Announcer {
    config: PromptConfig,
    cache: Mutex<HashMap<(String, String), Arc<Clip>>>,
}

impl Announcer {
    pub fn new(config: PromptConfig) -> Announcer {
        Announcer {
            config,
            cache: Mutex::default(),
        }
    }

    /// The audio of the announcement, or `None` when it cannot be rendered (logged once
    /// per text; the caller then hears only the comfort audio).
    pub async fn clip(
        self: &Arc<Self>,
        language: &str,
        position: u32,
        wait: Option<Duration>,
    ) -> Option<Arc<Clip>> {
        let text = text(language, position, wait);
        let key = (language.to_owned(), text.clone());
        if let Some(c) = self.lock().get(&key) {
            return Some(c.clone());
        }
        let me = self.clone();
        let language = language.to_owned();
        let rendered =
            tokio::task::spawn_blocking(move || prompts::speak(&me.config, &text, &language)).await;
        match rendered {
            Ok(Ok(clip)) => {
                self.lock().insert(key, clip.clone());
                Some(clip)
            }
            Ok(Err(e)) => {
                warn!(error = %e, "cannot render a queue announcement");
                None
            }
            Err(_) => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Clip>>> {
        // The map stays consistent whatever a panicking holder did (one insert at a time).
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Comfort audio: a soft three-note chime every four seconds, made once.
pub fn comfort() -> Arc<Clip> {
    static CLIP: OnceLock<Arc<Clip>> = OnceLock::new();
    CLIP.get_or_init(|| {
        let rate = 8000.0;
        let mut pcm = vec![0i16; 4 * 8000];
        for (i, freq) in [523.25f64, 659.25, 783.99].into_iter().enumerate() {
            let start = i * 3200;
            for n in 0..6400 {
                let t = n as f64 / rate;
                let envelope = (-3.0 * t).exp() * (1.0 - (-200.0 * t).exp());
                let v = 2500.0 * envelope * (2.0 * std::f64::consts::PI * freq * t).sin();
                let s = &mut pcm[start + n];
                *s = (*s as f64 + v).clamp(-32767.0, 32767.0) as i16;
            }
        }
        Clip::from_pcm(pcm.into())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_say_position_and_minutes_in_the_callers_language() {
        assert_eq!(
            text("cmn", 3, Some(Duration::from_secs(61))),
            "您现在排在第3位，预计等待2分钟。请不要挂机。"
        );
        assert_eq!(text("cmn", 1, None), "您是下一位。请不要挂机。");
        assert_eq!(
            text("yue", 2, Some(Duration::from_secs(20))),
            "你而家排第2位，預計等候1分鐘。請唔好收線。"
        );
        assert_eq!(
            text("cmn", 9, Some(Duration::from_secs(7200))),
            "您现在排在第9位。请不要挂机。"
        );
    }

    #[test]
    fn comfort_audio_is_quiet_but_not_silent() {
        let c = comfort();
        let peak = c.pcm().iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!(peak > 1000 && peak < 8000, "peak {peak}");
        assert_eq!(c.duration(), Duration::from_secs(4));
    }
}
