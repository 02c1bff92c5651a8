//! The grammar as operators meet it: `check_grammar` (what `hotline check` runs) on the
//! shipped 12345 grammar and on broken folders, and the shipped grammar on the text of
//! the dev set (the Mandarin sentences as said and as Vosk heard them, and the Cantonese
//! lines, which have no audio).

mod speech_support;

use std::path::{Path, PathBuf};

use hotline::speech::{Classifier, Language, TextTools, check_grammar, devset};
use speech_support::dev_dir;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars/12345")
}

#[test]
fn the_shipped_grammar_checks_clean() {
    let diags = check_grammar(&shipped());
    let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert!(text.is_empty(), "{}", text.join("\n"));
}

/// A grammar folder under the temp dir with `files`.
fn folder(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("temp file");
    }
    dir
}

#[test]
fn broken_files_are_reported_all_at_once_with_file_line_column() {
    let dir = folder(
        "broken-grammar",
        &[
            (
                "hotline.yaml",
                "negation:\n  scope: 4\n  cues:\n    cmn: [不是]\n    yu: [唔係]\n",
            ),
            (
                "fund.yaml",
                "intent: housing_fund\nkeywords:\n  cmn: {公积金: 3\n",
            ),
            (
                "labor.yaml",
                "intent: labor\nkeywords:\n  cmn:\n    欠薪: 3\n    欠薪: 2\n",
            ),
            (
                "noise.yaml",
                "intent: noise\nqueue: \"\"\nkeywords:\n  cmn:\n    噪音: -1\nexamples:\n  cmn: [好吵]\n",
            ),
        ],
    );
    let d = |file: &str| dir.join(file).display().to_string();
    let got: Vec<String> = check_grammar(&dir)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        vec![
            format!("{}:3:8: unclosed bracket '{{'", d("fund.yaml")),
            format!(
                "{}:5:5: unknown field `yu`, expected one of cmn, yue",
                d("hotline.yaml")
            ),
            format!(
                "{}:5:5: duplicate mapping key: 欠薪, set DuplicateKeyPolicy in Options if acceptable",
                d("labor.yaml")
            ),
            format!(
                "{}:2:8: `queue` is no longer read from grammars: the dialplan sends each intent \
                 to its queue (`queue: \"{{intent}}\"`, dialplans/README.md); delete this line",
                d("noise.yaml")
            ),
            format!(
                "{}:5:9: weight must be above 0 and at most 100, not -1",
                d("noise.yaml")
            ),
        ]
    );
}

#[test]
fn examples_that_land_elsewhere_are_reported_at_the_example() {
    let dir = folder(
        "example-grammar",
        &[
            (
                "fund.yaml",
                "intent: housing_fund\nkeywords:\n  cmn: {公积金: 3}\n\
                 examples:\n  cmn:\n    - 公积金怎么取\n    - 社保卡丢了\n",
            ),
            (
                "social.yaml",
                "intent: social_insurance\nkeywords:\n  cmn: {社保: 3}\n\
                 examples:\n  yue:\n    - 唔係社保係公積金\n",
            ),
        ],
    );
    let d = |file: &str| dir.join(file).display().to_string();
    let got: Vec<String> = check_grammar(&dir)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        vec![
            format!(
                "{}:7:7: example classifies as `social_insurance` (score 3.00), not `housing_fund` (score 0.00)",
                d("fund.yaml")
            ),
            format!(
                // Without negation cues (no hotline.yaml) 唔係 denies nothing: a tie.
                "{}:6:7: example classifies as `housing_fund` (score 3.00), not `social_insurance` (score 3.00)",
                d("social.yaml")
            ),
        ]
    );
}

#[test]
fn the_dev_set_text_lands_in_its_queues() {
    let tools = TextTools::load().expect("dictionaries");
    let classifier = Classifier::load(&shipped(), tools).expect("shipped grammar");
    let queue = |text: &str| {
        classifier
            .classify(text)
            .intent
            .map(|s| s.intent)
            .unwrap_or_default()
    };
    let dev = dev_dir();
    let mut misses = Vec::new();
    for clip in devset::clips(&dev).expect("manifest") {
        for text in [&clip.text, &clip.vosk_text] {
            if queue(text) != clip.queue {
                misses.push(format!(
                    "{text} -> `{}`, want `{}`",
                    queue(text),
                    clip.queue
                ));
            }
        }
    }
    let lines = devset::cantonese_lines(&dev).expect("yue_text.tsv");
    assert_eq!(lines.len(), 22);
    let mut detected = 0;
    for line in &lines {
        if queue(&line.text) != line.queue {
            misses.push(format!(
                "{} -> `{}`, want `{}`",
                line.text,
                queue(&line.text),
                line.queue
            ));
        }
        if classifier.classify(&line.text).language.language == Language::Cantonese {
            detected += 1;
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n"));
    // Lines with Cantonese-only words; the rest read as Mandarin too (巴士成日遲到).
    assert!(detected >= 16, "{detected} of 22 detected as Cantonese");
    let mandarin_as_cantonese = devset::clips(&dev)
        .expect("manifest")
        .iter()
        .filter(|c| classifier.classify(&c.text).language.language == Language::Cantonese)
        .count();
    assert_eq!(mandarin_as_cantonese, 0);
}
