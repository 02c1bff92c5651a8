//! `hotline check` on broken dialplans prints exactly the expected `file:line:column`
//! messages (tests/dialplans/broken/NAME.expected beside each case), and passes the
//! shipped ones; checks that need the ACD's queues, the grammars' intents and the trunks
//! run through the library with that knowledge given (tests/dialplans/context/).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use hotline::dialplan::{
    DialplanConfig, DialplanSet, LoadError, QueueInfo, TrunkInfo, ValidationContext,
};

/// An empty config: `check` runs on the built-in defaults.
const DEFAULTS: &str = "tests/dialplans/defaults.toml";

fn check(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--config", DEFAULTS, "check"])
        .args(args)
        .output()
        .expect("runs hotline");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_dialplans_print_the_expected_messages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new("tests/dialplans/broken");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .expect("the broken cases")
        .map(|e| dir.join(e.expect("entry").file_name()))
        .filter(|p| p.extension().is_none_or(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "{cases:?}");
    for case in cases {
        let expected_file = case.with_extension("expected");
        let expected = std::fs::read_to_string(root.join(&expected_file))
            .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()));
        assert!(!expected.trim().is_empty(), "{}", expected_file.display());
        let (ok, stdout, stderr) = check(&[case.to_str().expect("utf-8 path")]);
        assert!(!ok, "{}: check passed\n{stderr}", case.display());
        assert_eq!(stdout, expected, "{}", case.display());
        assert!(stderr.contains("problem(s)"), "{stderr}");
    }
}

#[test]
fn the_shipped_dialplans_pass() {
    let (ok, stdout, stderr) = check(&["dialplans"]);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("1 dialplan(s) OK"), "{stderr}");
    // What could not be checked is said, not passed over.
    assert!(
        stderr.contains("note: not checked: queue names"),
        "{stderr}"
    );
}

#[test]
fn the_configured_folder_is_checked_by_default() {
    let (ok, stdout, stderr) = check(&[]);
    assert!(ok, "{stdout}{stderr}");
}

/// A `--config` that names no file is an error, not a silent start on the defaults.
#[test]
fn a_config_path_that_does_not_exist_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--config", "tests/dialplans/no-such-config.toml", "check"])
        .output()
        .expect("runs hotline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--config tests/dialplans/no-such-config.toml: no such file"),
        "{stderr}"
    );
}

#[test]
fn queues_intents_and_trunks_are_checked_against_what_the_engine_knows() {
    let ctx = ValidationContext {
        queues: Some(BTreeMap::from([
            ("labor".to_owned(), QueueInfo { agents: 3 }),
            ("general".to_owned(), QueueInfo { agents: 1 }),
            ("night_shift".to_owned(), QueueInfo { agents: 0 }),
        ])),
        intents: Some(BTreeSet::from([
            "labor".to_owned(),
            "general".to_owned(),
            "housing_fund".to_owned(),
        ])),
        grammars: Some(BTreeSet::from(["12345".to_owned()])),
        trunks: Some(BTreeMap::from([
            ("pbx1".to_owned(), TrunkInfo { uri: true }),
            ("carrier".to_owned(), TrunkInfo { uri: false }),
        ])),
    };
    // Tests run in the project root.
    let case = PathBuf::from("tests/dialplans/context/queues.yaml");
    let err = DialplanSet::load(
        std::slice::from_ref(&case),
        &DialplanConfig::default().calendar(),
        &ctx,
    )
    .expect_err("invalid");
    let LoadError::Invalid(diagnostics) = err else {
        panic!("{err}")
    };
    let printed: String = diagnostics.iter().map(|d| format!("{d}\n")).collect();
    let expected = std::fs::read_to_string(case.with_extension("expected")).expect("expected");
    assert_eq!(printed, expected);
}

#[test]
fn prompts_command_renders_the_shipped_prompts() {
    let cache = std::env::temp_dir().join(format!("hotline-prompts-cli-{}", std::process::id()));
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_hotline"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--config", DEFAULTS, "prompts", "--cache-dir"])
            .arg(&cache)
            .output()
            .expect("runs hotline")
    };
    let first = run();
    let second = run();
    let _ = std::fs::remove_dir_all(&cache);
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Every prompt of the shipped plan in both languages, rendered once, then all cached.
    let rendered: usize = stdout(&first)
        .strip_prefix("prompts: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", stdout(&first)));
    assert!(rendered >= 40, "{}", stdout(&first));
    assert!(
        stdout(&first).starts_with(&format!("prompts: {rendered} rendered, 0 from the cache")),
        "{}",
        stdout(&first)
    );
    assert!(
        stdout(&second).starts_with(&format!("prompts: 0 rendered, {rendered} from the cache")),
        "{}",
        stdout(&second)
    );
}
