//! Any text as a dialplan file: a dialplan or diagnostics with positions, never a panic.
#![no_main]

use std::path::Path;

use hotline::dialplan::{DialplanConfig, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let calendar = DialplanConfig::default().calendar();
    let (plan, diagnostics) = parse(Path::new("fuzz.yaml"), text, calendar);
    assert!(plan.is_some() || !diagnostics.is_empty());
});
