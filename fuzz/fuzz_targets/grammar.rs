//! Any text as an intent grammar file: a grammar or diagnostics, never a panic. The text
//! tools (dictionaries) load once.
#![no_main]

use std::sync::{Arc, OnceLock};

use hotline::speech::{Grammar, TextTools};
use libfuzzer_sys::fuzz_target;

fn tools() -> &'static Arc<TextTools> {
    static TOOLS: OnceLock<Arc<TextTools>> = OnceLock::new();
    TOOLS.get_or_init(|| TextTools::load().expect("the text dictionaries"))
}

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("hotline-fuzz-grammar-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() || std::fs::write(dir.join("intent.yaml"), data).is_err() {
        return;
    }
    let _ = Grammar::load(&dir, tools());
});
