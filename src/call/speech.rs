//! The call's side of speech recognition: a dialplan `Listen` becomes a recognizer session
//! fed with the caller's audio (tapped from its media worker), and the session's events
//! become the interpreter's `Speech` inputs. Refuses at once when no recognizer can be had,
//! so the flow falls back to keys without waiting.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info};

use crate::dialplan::{ListenId, ListenRequest, Speech, SpeechResult, Unavailable};
use crate::media::worker::{MediaLeg, TapHandle};
use crate::metrics::Registry;
use crate::speech::{
    self, GrammarNames, Language, ListenOptions, SpeechConfig, SpeechEvent, SpeechEvents,
    SpeechService,
};

/// Speech recognition as calls see it: the service when one is configured.
#[derive(Clone)]
pub struct SpeechAccess {
    service: Option<Arc<SpeechService>>,
}

/// The recognizer's own no-input timer is set beyond anything a step waits: the
/// interpreter decides when silence after its prompt is no input.
const RECOGNIZER_NO_INPUT: Duration = Duration::from_secs(120);

impl SpeechAccess {
    /// Loads the models and grammar. Blocking and slow (about a second per model): call it
    /// off the async runtime.
    pub fn start(
        config: &SpeechConfig,
        registry: &Registry,
    ) -> Result<SpeechAccess, speech::SpeechError> {
        Ok(SpeechAccess {
            service: Some(SpeechService::start(config, registry)?),
        })
    }

    /// The grammar's names, for dialplan validation.
    pub fn grammar_names(&self) -> Option<GrammarNames> {
        Some(self.service.as_ref()?.classifier().grammar().names())
    }

    /// Starts listening to `media` for the interpreter's `Listen`.
    pub fn listen(
        &self,
        media: &MediaLeg,
        id: ListenId,
        request: &ListenRequest,
    ) -> Result<Listening, Unavailable> {
        let service = self.service.as_ref().ok_or(Unavailable::NoRecognizer)?;
        let language: Language = request
            .language
            .parse()
            .map_err(|_| Unavailable::NoRecognizer)?;
        let options = ListenOptions {
            no_input: Some(RECOGNIZER_NO_INPUT),
            max_utterance: Some(request.max_speech),
            ..ListenOptions::default()
        };
        let listener = service.listen(language, options).map_err(|e| match e {
            speech::Unavailable::Busy => Unavailable::PoolBusy,
            speech::Unavailable::NoRecognizer => Unavailable::NoRecognizer,
        })?;
        let (audio, events) = listener.split();
        let tap = media.tap_handle();
        tap.set(Some(Box::new(move |narrow: &[i16], wide: &[i16]| {
            // A full backlog drops the frame (counted by the speech module); the call goes on.
            let _ = audio.push(narrow, wide);
        })));
        Ok(Listening {
            id,
            detect_language: request.detect_language,
            events,
            tap,
        })
    }
}

/// One recognition in progress. Dropping it frees the session at once and stops the audio.
pub struct Listening {
    pub id: ListenId,
    detect_language: bool,
    events: SpeechEvents,
    tap: TapHandle,
}

impl Listening {
    /// The next input for the interpreter; `None` once the session is over.
    pub async fn next(&mut self) -> Option<(ListenId, Speech)> {
        loop {
            let speech = match self.events.recv().await? {
                SpeechEvent::SpeechStarted { .. } => Speech::Started,
                SpeechEvent::Partial { text } if text.trim().is_empty() => continue,
                SpeechEvent::Partial { text } => Speech::Partial(text),
                SpeechEvent::Final(rec) => {
                    let language = (self.detect_language
                        && !rec.decision.language.markers.is_empty())
                    .then(|| rec.decision.language.language.code().to_owned());
                    let decision_ms = rec.stats.decision_latency.as_secs_f64() * 1000.0;
                    let silence_ms = rec.endpoint.saturating_sub(rec.speech_end).as_millis();
                    info!(transcript = %rec.transcript,
                        intent = rec.decision.intent.as_ref().map_or("none", |s| s.intent.as_str()),
                        confidence = rec.decision.confidence, decision_ms, silence_ms,
                        audio_ms = rec.stats.audio.as_millis(), decode_ms = rec.stats.decode.as_millis(),
                        "recognised");
                    Speech::Final(SpeechResult {
                        alternatives: rec
                            .decision
                            .scores
                            .iter()
                            .take(2)
                            .map(|s| (s.intent.clone(), s.score))
                            .collect(),
                        intent: rec.decision.intent.as_ref().map(|s| s.intent.clone()),
                        confidence: rec.decision.confidence,
                        transcript: rec.transcript,
                        language,
                    })
                }
                SpeechEvent::NoInput { .. } => Speech::Final(SpeechResult {
                    alternatives: Vec::new(),
                    transcript: String::new(),
                    intent: None,
                    confidence: 0.0,
                    language: None,
                }),
                SpeechEvent::Failed { reason } => {
                    debug!(%reason, "recognizer failed");
                    Speech::Unavailable(Unavailable::NoRecognizer)
                }
            };
            return Some((self.id, speech));
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.tap.set(None);
    }
}
