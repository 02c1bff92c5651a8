//! All prompt audio of a dialplan set, decoded (and G.711-encoded) once and shared: a call
//! looks up (dialplan, prompt, language) and gets an `Arc<Clip>`, never a copy. Building the set
//! renders what the cache lacks (in parallel, one job per core) and reports every prompt
//! that has no audio, each at its place in the dialplan.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{PromptConfig, PromptError, cache, render, wav};
use crate::diag::Diagnostic;
use crate::dialplan::{DialplanSet, Pos};

/// 8 kHz mono 16-bit PCM, shared by every call that plays it.
pub type Samples = Arc<[i16]>;

use crate::media::clip::Clip;

/// What building the set did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Texts rendered now.
    pub rendered: usize,
    /// Texts found in the cache.
    pub cached: usize,
    /// Recorded WAV files.
    pub recorded: usize,
}

#[derive(Debug, Default)]
pub struct PromptSet {
    /// Dialplan name -> prompt -> language -> samples.
    plans: HashMap<String, HashMap<String, HashMap<String, Arc<Clip>>>>,
    report: LoadReport,
}

/// One (dialplan, prompt, language) and the file that holds its audio.
struct Entry {
    plan: String,
    prompt: String,
    language: String,
    file: PathBuf,
    /// The text to render into `file` when it is not there yet.
    render: Option<(String, String)>,
    /// For error messages.
    source_file: PathBuf,
    at: Pos,
}

impl PromptSet {
    pub fn load(
        dialplans: &DialplanSet,
        config: &PromptConfig,
    ) -> Result<PromptSet, Vec<Diagnostic>> {
        let entries = entries(dialplans, config);
        let mut report = LoadReport::default();
        let mut to_render: Vec<(&PathBuf, &str, &str, &str)> = Vec::new();
        for e in &entries {
            match &e.render {
                None => report.recorded += 1,
                Some(_) if e.file.is_file() => report.cached += 1,
                Some((text, voice)) => {
                    if !to_render.iter().any(|(f, ..)| *f == &e.file) {
                        to_render.push((&e.file, text, &e.language, voice));
                    }
                }
            }
        }
        report.rendered = to_render.len();
        let failed = render_all(config, &to_render);

        let mut diagnostics = Vec::new();
        let mut decoded: HashMap<&PathBuf, Arc<Clip>> = HashMap::new();
        let mut set = PromptSet::default();
        for e in &entries {
            let samples = match failed.iter().find(|(f, _)| *f == &e.file) {
                Some((_, error)) => Err(error.to_string()),
                None => match decoded.get(&e.file) {
                    Some(s) => Ok(Arc::clone(s)),
                    None => wav::read(&e.file)
                        .map(|pcm| Clip::from_pcm(Samples::from(pcm)))
                        .inspect(|s| {
                            decoded.insert(&e.file, Arc::clone(s));
                        })
                        .map_err(|err| err.to_string()),
                },
            };
            match samples {
                Ok(samples) => {
                    set.plans
                        .entry(e.plan.clone())
                        .or_default()
                        .entry(e.prompt.clone())
                        .or_default()
                        .insert(e.language.clone(), samples);
                }
                Err(message) => diagnostics.push(Diagnostic::at(
                    &e.source_file,
                    e.at.line as usize,
                    e.at.column as usize,
                    format!("prompt `{}` ({}): {message}", e.prompt, e.language),
                )),
            }
        }
        if diagnostics.is_empty() {
            set.report = report;
            Ok(set)
        } else {
            Err(diagnostics)
        }
    }

    /// The audio of `prompt` in `language` for the dialplan named `plan`.
    pub fn get(&self, plan: &str, prompt: &str, language: &str) -> Option<&Arc<Clip>> {
        self.plans.get(plan)?.get(prompt)?.get(language)
    }

    /// Adds audio for a prompt (tests build sets without rendering).
    #[cfg(test)]
    pub fn insert(&mut self, plan: &str, prompt: &str, language: &str, clip: Arc<Clip>) {
        self.plans
            .entry(plan.to_owned())
            .or_default()
            .entry(prompt.to_owned())
            .or_default()
            .insert(language.to_owned(), clip);
    }

    pub fn report(&self) -> LoadReport {
        self.report
    }
}

fn entries(dialplans: &DialplanSet, config: &PromptConfig) -> Vec<Entry> {
    let mut out = Vec::new();
    for plan in dialplans.plans() {
        for (prompt, def) in &plan.prompts {
            for (language, source) in &def.languages {
                let voice = config.voice(language);
                let (file, render) = match (&source.file, &source.text) {
                    (Some(file), _) => (file.clone(), None),
                    (None, Some(text)) => (
                        cache::path(&config.cache_dir, text, language, voice, config.rate),
                        Some((text.clone(), voice.to_owned())),
                    ),
                    // The parser refuses a prompt with neither.
                    (None, None) => continue,
                };
                out.push(Entry {
                    plan: plan.name.clone(),
                    prompt: prompt.clone(),
                    language: language.clone(),
                    file,
                    render,
                    source_file: plan.file.clone(),
                    at: source.at,
                });
            }
        }
    }
    out
}

/// Renders every job, spread over the cores; the ones that failed, with why.
fn render_all<'a>(
    config: &PromptConfig,
    jobs: &[(&'a PathBuf, &str, &str, &str)],
) -> Vec<(&'a PathBuf, PromptError)> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_worker = jobs.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(per_worker)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(file, text, language, voice)| {
                            tracing::info!(file = %file.display(), voice, "rendering prompt");
                            render::render(config, text, language, voice, file)
                                .err()
                                .map(|e| (*file, e))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}
