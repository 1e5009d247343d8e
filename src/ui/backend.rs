//! What the window drives: a dictation started and stopped by the user. The live backend starts
//! it through the dictation core; tests put a fake in its place.

use crate::channel::Sink;
use crate::dictation::{
    Dictation, DictationEvent, DictationRequest, OfflineRecognizer, Source, StartError, Target,
};
use crate::protocol::ApiKey;

use super::settings::Settings;

/// What a dictation needs to start, as the window knows it.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub settings: Settings,
    pub api_key: Option<ApiKey>,
    /// Recognise on this computer (the offline recogniser) instead of `settings.url`.
    pub offline: bool,
}

/// Starts and stops dictations. `start` must return at once; everything after arrives on `events`.
pub trait Backend {
    /// Starts capturing and connecting. An error is shown in the status line.
    fn start(
        &mut self,
        request: StartRequest,
        events: Sink<DictationEvent>,
    ) -> Result<(), StartError>;

    /// Stops capturing: the session sends `end` and reports the last finals, then `Ended`.
    fn stop(&mut self);

    /// The next dictation will be offline: get ready (load the model) in the background.
    fn prewarm_offline(&mut self, _language: crate::protocol::Language) {}
}

/// The real thing: the microphone through the dictation core.
pub struct LiveBackend {
    dictation: Option<Dictation>,
    /// The recogniser on this computer, loaded once and shared by every dictation of this window
    /// (also as the fallback when the service stays away).
    offline: OfflineRecognizer,
}

impl LiveBackend {
    /// `model`: the offline model folder (`None`: the default one).
    pub fn new(model: Option<std::path::PathBuf>) -> Self {
        LiveBackend {
            dictation: None,
            offline: OfflineRecognizer::new(model),
        }
    }
}

impl Backend for LiveBackend {
    fn start(
        &mut self,
        request: StartRequest,
        events: Sink<DictationEvent>,
    ) -> Result<(), StartError> {
        self.stop();
        let settings = request.settings;
        let target = if request.offline {
            Target::Offline(self.offline.clone())
        } else {
            Target::Service {
                url: settings.url.clone(),
                api_key: request.api_key,
                fallback: Some(self.offline.clone()),
            }
        };
        let source = Source::microphone(settings.device.clone());
        let request = DictationRequest::new(source, settings.stream_params(), target);
        self.dictation = Some(Dictation::start(request, events)?);
        Ok(())
    }

    fn stop(&mut self) {
        // Stopping ends the audio; the dictation finishes on its own thread and reports `Ended`.
        if let Some(mut dictation) = self.dictation.take() {
            dictation.stop();
        }
    }

    fn prewarm_offline(&mut self, language: crate::protocol::Language) {
        self.offline.prepare(language);
    }
}
