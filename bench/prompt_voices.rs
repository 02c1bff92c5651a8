//! Prompt voices compared by a number (issue 13), run by bench/prompt_voices.sh.
//!
//! Every Mandarin prompt of dialplans/12345.yaml, in its read-aloud form, is rendered by each
//! espeak-ng voice to 8 kHz (as callers hear it), then transcribed by the shipped Mandarin
//! recogniser (the Vosk small model, whole prompt at once, no grammar). Printed per voice:
//! how many renderings switch to another language's letters (espeak-ng's `(en)` marker),
//! the character error rate against the text (median and mean), and seconds of audio per
//! prompt. A robotic voice scores far worse than a natural one would; the figure is for
//! comparing voices, not an absolute intelligibility score.
//!
//! Usage: `bench/prompt_voices.sh [VOICE ...]` (default: cmn cmn-latn-pinyin).

use std::path::{Path, PathBuf};

use hotline::dialplan::{Calendar, DialplanSet, ValidationContext};
use hotline::prompts::{self, PromptConfig};
use hotline::speech::{Backend, Language, SpeechConfig};

fn fail(message: &str) -> ! {
    eprintln!("prompt_voices: {message}");
    std::process::exit(1)
}

fn main() {
    let voices: Vec<String> = {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        if args.is_empty() {
            vec!["cmn".into(), "cmn-latn-pinyin".into()]
        } else {
            args
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("dialplans/12345.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap_or_else(|e| fail(&e.to_string()));
    let calendar = Calendar {
        timezone: jiff::tz::TimeZone::UTC,
        holidays: Vec::new(),
    };
    let plans =
        DialplanSet::from_sources(&[(file, yaml)], &calendar, &ValidationContext::default())
            .unwrap_or_else(|d| fail(&format!("{d:?}")));
    let texts: Vec<String> = plans
        .plans()
        .iter()
        .flat_map(|p| p.prompts.values())
        .filter_map(|def| def.languages.get("cmn")?.text.clone())
        .collect();
    let model_dir = match SpeechConfig::default().backend(Language::Mandarin) {
        Ok(Backend::Vosk { model, .. }) => model,
        _ => fail("no Mandarin model (run make setup)"),
    };
    vosk::set_log_level(vosk::LogLevel::Warn);
    let model = vosk::Model::new(model_dir.to_string_lossy())
        .unwrap_or_else(|| fail("Vosk could not load the model"));
    let scratch = std::env::temp_dir().join(format!("hotline-voices-{}", std::process::id()));
    println!(
        "prompt voices: {} Mandarin prompts of dialplans/12345.yaml, 8 kHz, Vosk small-cn",
        texts.len()
    );
    println!(
        "{:<18} {:>9} {:>10} {:>8} {:>12}",
        "voice", "fallback", "CER p50", "CER mean", "s per prompt"
    );
    for voice in &voices {
        let config = PromptConfig {
            cache_dir: scratch.clone(),
            ..PromptConfig::default()
        };
        let mut cers = Vec::new();
        let mut fallbacks = 0;
        let mut seconds = 0.0;
        for (i, text) in texts.iter().enumerate() {
            let spoken = prompts::spoken(text, "cmn");
            if prompts::check_language(&config, &spoken, voice).is_err() {
                fallbacks += 1;
            }
            let wav: PathBuf = scratch.join(format!("{voice}-{i}.wav"));
            prompts::synthesize(&config, &spoken, voice, &wav)
                .unwrap_or_else(|e| fail(&e.to_string()));
            let pcm = prompts::read_wav(&wav).unwrap_or_else(|e| fail(&e.to_string()));
            seconds += pcm.len() as f64 / 8000.0;
            let heard = transcribe(&model, &pcm);
            cers.push(cer(&comparable(&spoken), &comparable(&heard)));
        }
        cers.sort_by(f64::total_cmp);
        let mean = cers.iter().sum::<f64>() / cers.len().max(1) as f64;
        println!(
            "{voice:<18} {:>9} {:>9.1}% {:>7.1}% {:>12.1}",
            format!("{fallbacks}/{}", texts.len()),
            100.0 * cers.get(cers.len() / 2).copied().unwrap_or(0.0),
            100.0 * mean,
            seconds / texts.len().max(1) as f64
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

fn transcribe(model: &vosk::Model, pcm: &[i16]) -> String {
    let mut r = vosk::Recognizer::new(model, 8000.0).unwrap_or_else(|| fail("no recogniser"));
    let mut text = String::new();
    for chunk in pcm.chunks(1600) {
        if let Ok(vosk::DecodingState::Finalized) = r.accept_waveform(chunk)
            && let Some(res) = r.result().single()
        {
            text.push_str(res.text);
        }
    }
    if let Some(res) = r.final_result().single() {
        text.push_str(res.text);
    }
    text
}

/// Letters only, 幺 as the recogniser writes it (一).
fn comparable(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .map(|c| if c == '幺' { '一' } else { c })
        .collect()
}

/// Character error rate: edit distance over the reference length.
fn cer(reference: &[char], heard: &[char]) -> f64 {
    let mut prev: Vec<usize> = (0..=heard.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, h) in heard.iter().enumerate() {
            let cost = usize::from(r != h);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[heard.len()] as f64 / reference.len().max(1) as f64
}
