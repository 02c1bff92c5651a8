//! Everything that is checked before the engine goes live (and by `hotline check`): the
//! config's own sections, the dialplans against the queues, intents and grammars the rest
//! of the config defines, and the prompts' audio. All problems are returned at once as
//! `file:line:column` diagnostics. Reads files; starts nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::call::Flows;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::dialplan::{DialplanSet, LoadError, QueueInfo, ValidationContext};
use crate::prompts::PromptSet;
use crate::speech::{Classifier, GrammarNames, TextTools};

/// The queues `[acd]` configures, with how many agents serve each; `None` when the config
/// has no ACD at all (then queue names cannot be checked).
fn acd_queues(config: &Config) -> Option<BTreeMap<String, QueueInfo>> {
    if config.acd.queues.is_empty() {
        return None;
    }
    Some(
        config
            .acd
            .queues
            .iter()
            .map(|q| {
                let agents = config
                    .acd
                    .agents
                    .iter()
                    .filter(|a| a.skills.contains_key(&q.name))
                    .count();
                (q.name.clone(), QueueInfo { agents })
            })
            .collect(),
    )
}

/// What dialplan validation may check against. `grammar` is what the speech module's
/// grammar defines, when it could be loaded.
pub fn validation_context(config: &Config, grammar: Option<GrammarNames>) -> ValidationContext {
    let (intents, grammars) = match grammar {
        Some(g) => (Some(g.intents), Some(g.sets)),
        None => (None, None),
    };
    ValidationContext {
        queues: acd_queues(config),
        intents,
        grammars,
        trunks: Some(config.trunks.named.keys().cloned().collect()),
    }
}

/// Problems in the config file's sections that parse but do not hold together.
pub fn config_diagnostics(config: &Config, file: &Path, text: &str) -> Vec<Diagnostic> {
    let mut out = config.acd.diagnostics(file, text);
    out.extend(config.registrar.diagnostics(file, text));
    out
}

/// The grammar's names (for dialplan validation), when it loads, and its problems (file
/// errors, examples that miss their own intent). Loads the text dictionaries.
pub fn grammar(config: &Config) -> (Option<GrammarNames>, Vec<Diagnostic>) {
    let dir = &config.speech.grammar_dir;
    let tools = match TextTools::load() {
        Ok(t) => t,
        Err(e) => {
            let problem = Diagnostic {
                file: dir.clone(),
                line: 1,
                column: 1,
                message: e.to_string(),
            };
            return (None, vec![problem]);
        }
    };
    match Classifier::load(dir, tools) {
        Ok(c) => (Some(c.grammar().names()), c.check_examples()),
        Err(d) => (None, d),
    }
}

/// Loads and checks the dialplans and their prompts (rendering what the prompt cache
/// lacks).
pub fn load_flows(
    config: &Config,
    paths: &[PathBuf],
    ctx: &ValidationContext,
) -> Result<Flows, Vec<Diagnostic>> {
    let dialplans = load_dialplans(config, paths, ctx)?;
    let prompts = PromptSet::load(&dialplans, &config.prompts)?;
    Ok(Flows { dialplans, prompts })
}

/// Loads and checks the dialplans (`paths`, or the configured folder).
pub fn load_dialplans(
    config: &Config,
    paths: &[PathBuf],
    ctx: &ValidationContext,
) -> Result<DialplanSet, Vec<Diagnostic>> {
    let paths = if paths.is_empty() {
        vec![config.dialplan.directory.clone()]
    } else {
        paths.to_vec()
    };
    match DialplanSet::load(&paths, &config.dialplan.calendar(), ctx) {
        Ok(set) => Ok(set),
        Err(LoadError::Invalid(diagnostics)) => Err(diagnostics),
        Err(e) => Err(vec![Diagnostic {
            file: paths.first().cloned().unwrap_or_default(),
            line: 1,
            column: 1,
            message: e.to_string(),
        }]),
    }
}
