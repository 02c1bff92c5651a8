//! Prompt loading against the real espeak-ng and sox, in a scratch folder per test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{PromptConfig, PromptSet};
use crate::dialplan::{Calendar, DialplanSet, ValidationContext};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("hotline-prompts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dialplans(dir: &Path, prompts: &str) -> DialplanSet {
    let yaml = format!(
        "languages: [cmn, yue]\ndefault: true\nprompts:\n{prompts}steps:\n  start:\n    play: hello\n    next: end\n  end:\n    hangup: done\n"
    );
    let calendar = Calendar {
        timezone: jiff::tz::TimeZone::UTC,
        holidays: Vec::new(),
    };
    DialplanSet::from_sources(
        &[(dir.join("plan.yaml"), yaml)],
        &calendar,
        &ValidationContext::default(),
    )
    .unwrap_or_else(|d| panic!("{d:?}"))
}

fn config(dir: &Path) -> PromptConfig {
    PromptConfig {
        cache_dir: dir.join("cache"),
        ..PromptConfig::default()
    }
}

const HELLO: &str = "  hello:\n    cmn: 您好，这里是12345市民服务热线。\n    yue: 您好，呢度係12345市民服務熱線。\n";

#[test]
fn texts_are_rendered_once_to_8khz_and_shared() {
    let s = Scratch::new("render");
    let plans = dialplans(
        &s.0,
        &format!("{HELLO}  again:\n    cmn: 您好，这里是12345市民服务热线。\n    yue: 再見\n"),
    );
    let set = PromptSet::load(&plans, &config(&s.0)).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(
        set.report().rendered,
        3,
        "the same Mandarin text renders once"
    );
    assert_eq!(set.report().cached, 0);
    for lang in ["cmn", "yue"] {
        let samples = set.get("plan", "hello", lang).expect("audio").pcm();
        // Several seconds of speech at 8 kHz, not silence.
        assert!(samples.len() > 8000, "{lang}: {} samples", samples.len());
        assert!(
            samples.iter().any(|s| s.unsigned_abs() > 1000),
            "{lang} is silent"
        );
    }
    let a = set.get("plan", "hello", "cmn").expect("audio");
    let b = set.get("plan", "again", "cmn").expect("audio");
    assert!(Arc::ptr_eq(a, b), "one decoded copy for one text");
    assert!(set.get("plan", "hello", "en").is_none());
    assert!(set.get("other", "hello", "cmn").is_none());

    let again = PromptSet::load(&plans, &config(&s.0)).expect("from the cache");
    assert_eq!(again.report().rendered, 0);
    assert_eq!(again.report().cached, 4);
    assert_eq!(
        again.get("plan", "hello", "yue").map(|c| c.pcm()),
        set.get("plan", "hello", "yue").map(|c| c.pcm())
    );
}

#[test]
fn a_recorded_wav_overrides_the_text() {
    let s = Scratch::new("recorded");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(s.0.join("hello_yue.wav"), spec).expect("wav");
    for i in 0..1600i16 {
        w.write_sample(i).expect("sample");
    }
    w.finalize().expect("wav");
    let plans = dialplans(
        &s.0,
        "  hello:\n    cmn: 您好\n    yue:\n      text: 您好\n      file: hello_yue.wav\n",
    );
    let set = PromptSet::load(&plans, &config(&s.0)).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(set.report().recorded, 1);
    let samples = set.get("plan", "hello", "yue").expect("audio").pcm();
    assert_eq!(samples.len(), 1600);
    assert_eq!(samples[1599], 1599);
}

#[test]
fn a_missing_tts_names_every_prompt_it_leaves_silent() {
    let s = Scratch::new("missing");
    let plans = dialplans(&s.0, HELLO);
    let config = PromptConfig {
        tts: PathBuf::from("/nonexistent/espeak-ng"),
        ..config(&s.0)
    };
    let errors = PromptSet::load(&plans, &config).expect_err("no TTS");
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with(&format!(
            "{}:5:10: prompt `hello` (cmn): cannot run `/nonexistent/espeak-ng`",
            s.0.join("plan.yaml").display()
        )),
        "{messages:?}"
    );
    assert!(messages[1].contains("prompt `hello` (yue)"), "{messages:?}");
}

#[test]
fn a_recorded_wav_in_the_wrong_format_is_refused() {
    let s = Scratch::new("format");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(s.0.join("cd.wav"), spec)
        .expect("wav")
        .finalize()
        .expect("wav");
    let plans = dialplans(
        &s.0,
        "  hello:\n    cmn:\n      file: cd.wav\n    yue:\n      file: missing.wav\n",
    );
    let errors = PromptSet::load(&plans, &config(&s.0)).expect_err("bad files");
    let messages: Vec<String> = errors.iter().map(|d| d.message.clone()).collect();
    assert!(
        messages[0].contains("is 44100 Hz, 2 channel(s)"),
        "{messages:?}"
    );
    assert!(messages[1].contains("missing.wav"), "{messages:?}");
}

#[test]
fn a_text_read_with_another_languages_letters_is_refused_at_its_place() {
    let s = Scratch::new("foreign");
    let plans = dialplans(&s.0, "  hello:\n    cmn: 请下载APP办理\n    yue: 請撳#字\n");
    let errors = PromptSet::load(&plans, &config(&s.0)).expect_err("Latin letters");
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 1, "`#` is read as 井號鍵: {messages:?}");
    assert!(
        messages[0].starts_with(&format!(
            "{}:5:10: prompt `hello` (cmn): espeak-ng voice `cmn-latn-pinyin` reads part of this text with another language's letters ((en)",
            s.0.join("plan.yaml").display()
        )),
        "{messages:?}"
    );
    assert!(
        messages[0].contains(": `APP`; write it in Chinese characters"),
        "{messages:?}"
    );
    let cached = std::fs::read_dir(s.0.join("cache")).map_or(0, |d| d.count());
    assert_eq!(cached, 1, "only the Cantonese prompt is in the cache");
}

/// Every prompt of the shipped hotline renders in its own language with the default voices:
/// none falls back to English letters (the language check runs on each rendering).
#[test]
fn every_shipped_prompt_is_spoken_in_its_own_language() {
    let s = Scratch::new("shipped");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans/12345.yaml");
    let yaml = std::fs::read_to_string(&file).expect("dialplans/12345.yaml");
    let calendar = Calendar {
        timezone: jiff::tz::TimeZone::UTC,
        holidays: Vec::new(),
    };
    let plans =
        DialplanSet::from_sources(&[(file, yaml)], &calendar, &ValidationContext::default())
            .unwrap_or_else(|d| panic!("{d:?}"));
    let set = PromptSet::load(&plans, &config(&s.0)).unwrap_or_else(|d| panic!("{d:#?}"));
    let r = set.report();
    assert!(r.rendered >= 40, "both languages of every prompt: {r:?}");
}
