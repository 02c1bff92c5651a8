//! Everything that is checked before the engine goes live (and by `hotline check`): the
//! config's own sections, the dialplans against the queues, intents and grammars the rest
//! of the config defines, and the prompts' audio. All problems are returned at once as
//! `file:line:column` diagnostics. Reads files; starts nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::call::Flows;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::dialplan::{DialplanSet, LoadError, QueueInfo, TrunkInfo, ValidationContext};
use crate::prompts::PromptSet;
use crate::speech::corpus::Split;
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
        trunks: Some(
            config
                .trunks
                .named
                .iter()
                .map(|(name, t)| {
                    (
                        name.clone(),
                        TrunkInfo {
                            uri: !t.uri.is_empty(),
                        },
                    )
                })
                .collect(),
        ),
    }
}

/// Problems in the config file's sections that parse but do not hold together.
pub fn config_diagnostics(config: &Config, file: &Path, text: &str) -> Vec<Diagnostic> {
    let mut out = config.acd.diagnostics(file, text);
    out.extend(config.registrar.diagnostics(file, text));
    out.extend(config.sip.diagnostics(file, text));
    out.extend(config.trunks.diagnostics(file, text));
    out.extend(config.media.diagnostics(file, text));
    out.extend(config.api.diagnostics(file, text));
    out
}

/// What checking the grammar folder found.
#[derive(Debug, Default)]
pub struct GrammarCheck {
    /// The grammar's names (for dialplan validation), when it loads.
    pub names: Option<GrammarNames>,
    /// File and corpus errors, examples that miss their own intent.
    pub problems: Vec<Diagnostic>,
    /// The learned model on the corpus's held-out splits, one line each.
    pub accuracy: Vec<String>,
}

/// Loads the grammar folder (and trains its model), runs its examples and measures the
/// model on the corpus's dev and test splits. Loads the text dictionaries.
pub fn grammar(config: &Config) -> GrammarCheck {
    let dir = &config.speech.grammar_dir;
    let tools = match TextTools::load() {
        Ok(t) => t,
        Err(e) => {
            let problem = Diagnostic::whole(dir, e.to_string());
            return GrammarCheck {
                problems: vec![problem],
                ..GrammarCheck::default()
            };
        }
    };
    match Classifier::load(dir, tools) {
        Ok(c) => GrammarCheck {
            names: Some(c.grammar().names()),
            problems: c.check_examples(),
            accuracy: if c.has_model() {
                [Split::Dev, Split::Test]
                    .into_iter()
                    .map(|s| format!("{} split: {}", s.name(), c.evaluate(s)))
                    .collect()
            } else {
                Vec::new()
            },
        },
        Err(problems) => GrammarCheck {
            problems,
            ..GrammarCheck::default()
        },
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
        Err(e) => Err(vec![Diagnostic::whole(
            paths.first().cloned().unwrap_or_default(),
            e.to_string(),
        )]),
    }
}
