//! Everything that is checked before the engine goes live (and by `hotline check`): the
//! config's own sections, the dialplans against the queues, intents and grammars the rest
//! of the config defines, and the prompts' audio. All problems are returned at once as
//! `file:line:column` diagnostics. Reads files; starts nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::call::Flows;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::dialplan::{DialplanSet, LoadError, QueueInfo, ValidationContext};
use crate::prompts::PromptSet;

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
                let agents = config.acd.agents.iter().filter(|a| a.skills.contains_key(&q.name)).count();
                (q.name.clone(), QueueInfo { agents })
            })
            .collect(),
    )
}

/// What dialplan validation may check against. `grammar` is the intents and grammar sets
/// the speech module knows, when it is configured.
pub fn validation_context(config: &Config, grammar: Option<(BTreeSet<String>, BTreeSet<String>)>) -> ValidationContext {
    let (intents, grammars) = match grammar {
        Some((i, g)) => (Some(i), Some(g)),
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

/// Loads and checks the dialplans (`paths`, or the configured folder) and their prompts
/// (rendering what the prompt cache lacks).
pub fn load_flows(config: &Config, paths: &[PathBuf], ctx: &ValidationContext) -> Result<Flows, Vec<Diagnostic>> {
    let paths = if paths.is_empty() {
        vec![config.dialplan.directory.clone()]
    } else {
        paths.to_vec()
    };
    let dialplans = match DialplanSet::load(&paths, &config.dialplan.calendar(), ctx) {
        Ok(set) => set,
        Err(LoadError::Invalid(diagnostics)) => return Err(diagnostics),
        Err(e) => {
            return Err(vec![Diagnostic {
                file: paths.first().cloned().unwrap_or_default(),
                line: 1,
                column: 1,
                message: e.to_string(),
            }]);
        }
    };
    let prompts = PromptSet::load(&dialplans, &config.prompts)?;
    Ok(Flows { dialplans, prompts })
}
