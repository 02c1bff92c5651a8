//! The architecture's invariants, checked on the source (ARCHITECTURE.md, "Invariants"):
//! no sans-IO core reads a clock, sleeps, spawns, or touches a socket or the async runtime.
//! Their callers pass `now` in and move bytes; a core that reached for the clock could not
//! be tested in virtual time. Test code (`#[cfg(test)]` modules, `tests.rs`, `*_tests.rs`,
//! `test_*.rs`) may use the real clock as a starting point.

use std::path::{Path, PathBuf};

/// The sans-IO cores: folders (every file below) and single files.
const CORES: &[&str] = &[
    "src/sip",
    "src/acd/router",
    "src/dialplan",
    "src/registrar",
    "src/stats/fold.rs",
    "src/media/session.rs",
    "src/media/srtp.rs",
    "src/media/jitter.rs",
    "src/media/dtmf.rs",
    "src/media/codec.rs",
    "src/media/g722.rs",
    "src/media/resample.rs",
    "src/speech/endpoint.rs",
    "src/speech/admission.rs",
    "src/endpoint/core.rs",
    "src/endpoint/conns.rs",
    "src/endpoint/admission.rs",
    "src/endpoint/trunk_limits.rs",
    "src/endpoint/trunks.rs",
    "src/endpoint/outgoing.rs",
    "src/endpoint/qualify.rs",
    "src/call/core.rs",
    "src/call/flow.rs",
    "src/call/placing.rs",
    "src/call/caller_leg.rs",
    "src/call/far_leg.rs",
    "src/call/session_refresh.rs",
    "src/call/incoming.rs",
    "src/call/identity.rs",
];

/// What a core must not contain, and what it would mean.
const FORBIDDEN: &[(&str, &str)] = &[
    ("Instant::now", "reads the clock"),
    ("SystemTime::now", "reads the clock"),
    ("Timestamp::now", "reads the clock"),
    ("Zoned::now", "reads the clock"),
    ("now_ms()", "reads the clock"),
    ("thread::sleep", "sleeps"),
    ("thread::spawn", "spawns a thread"),
    ("tokio::", "uses the async runtime"),
    ("UdpSocket", "touches a socket"),
    ("TcpStream", "touches a socket"),
    ("TcpListener", "touches a socket"),
];

/// Every line of non-test code in `text` that breaks an invariant, as `file:line: why`.
fn violations(file: &Path, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            // A test module declared here (`mod tests;`) is skipped; one written inline
            // runs to the end of the file by convention.
            match lines.next() {
                Some((_, next)) if next.trim_end().ends_with(';') => continue,
                _ => break,
            }
        }
        if code.starts_with("//") {
            continue;
        }
        for (pattern, why) in FORBIDDEN {
            if code.contains(pattern) {
                found.push(format!("{}:{}: {why} (`{pattern}`)", file.display(), i + 1));
            }
        }
    }
    found
}

fn is_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || name.starts_with("test_")
        || path.components().any(|c| c.as_os_str() == "tests")
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_owned());
        return;
    }
    let entries = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e} (a core moved? update CORES)", path.display()));
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() || p.extension().is_some_and(|e| e == "rs") {
            rust_files(&p, out);
        }
    }
}

#[test]
fn no_core_reads_the_clock_or_touches_a_socket() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for core in CORES {
        let path = root.join(core);
        assert!(path.exists(), "{core} does not exist: update CORES");
        rust_files(&path, &mut files);
    }
    let found: Vec<String> = files
        .iter()
        .filter(|f| !is_test_file(f))
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).expect("read a core's source");
            violations(f.strip_prefix(root).unwrap_or(f), &text)
        })
        .collect();
    assert!(
        found.is_empty(),
        "sans-IO cores must take `now` and bytes from their callers:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_a_clock_read_but_not_in_tests_or_comments() {
    let text = "fn f() {\n    // Instant::now is fine in a comment\n    let t = Instant::now();\n}\n\
#[cfg(test)]\nmod helpers;\nfn g() { tokio::spawn(async {}); }\n#[cfg(test)]\nmod tests {\n    fn h() { Instant::now(); }\n}\n";
    assert_eq!(
        violations(Path::new("core.rs"), text),
        [
            "core.rs:3: reads the clock (`Instant::now`)",
            "core.rs:7: uses the async runtime (`tokio::`)"
        ]
    );
}
