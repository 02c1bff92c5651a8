//! `hotline check` for grammars: load a grammar folder, report its file errors, then run
//! every example through the classifier and report those that miss their own intent.
//! Returns diagnostics; printing them is the caller's job.

use std::path::Path;
use std::sync::Arc;

use super::classifier::Classifier;
use super::text::TextTools;
use crate::diag::Diagnostic;

/// Every problem of the grammar folder `dir`, sorted by file and position; empty when the
/// grammar is fine. Loads the OpenCC/jieba dictionaries (a few hundred ms); use
/// `check_grammar_with` when they are already loaded.
pub fn check_grammar(dir: &Path) -> Vec<Diagnostic> {
    match TextTools::load() {
        Ok(tools) => check_grammar_with(dir, tools),
        Err(e) => vec![Diagnostic::whole(dir, e.to_string())],
    }
}

pub fn check_grammar_with(dir: &Path, tools: Arc<TextTools>) -> Vec<Diagnostic> {
    match Classifier::load(dir, tools) {
        Ok(classifier) => classifier.check_examples(),
        Err(diags) => diags,
    }
}
