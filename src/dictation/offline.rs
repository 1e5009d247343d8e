//! The recogniser on this computer: the Whisper engine behind a local server on loopback, which
//! speaks the service's protocol, so a dictation reaches it exactly as it reaches the service.
//!
//! One thread owns it ([`OfflineRecognizer`] is a handle that sends that thread requests): it is
//! started on the first request (loading the model takes a second or more) and kept until the last
//! handle is dropped, so a window loads the model once for all its dictations, and a dictation
//! that falls back to it mid-way shares it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::models;
use crate::protocol::Language;
use crate::remedy::Remedy;
use crate::server::{BackgroundServer, ServerConfig};
use crate::whisper::{ModelError, Recognizer, WhisperEngine};

/// Why the offline recogniser cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OfflineError {
    /// The model is missing, damaged or cannot be read (the message names the path).
    #[error("{0}")]
    Model(String, Remedy),
    /// Neither `XDG_DATA_HOME` nor `HOME` is set, so there is no default model folder.
    #[error("cannot find the data folder (neither XDG_DATA_HOME nor HOME is set)")]
    NoDataDir,
    /// A language other than English needs the multilingual model, which is not installed.
    #[error(
        "offline recognition in {language} needs the multilingual model \"base\", which is not installed"
    )]
    NeedsMultilingual { language: String },
    /// The loopback server or the owner thread could not start.
    #[error("cannot start the offline recogniser on loopback: {0}")]
    Start(String),
}

impl OfflineError {
    /// What the user can do about it.
    pub fn remedy(&self) -> Remedy {
        match self {
            OfflineError::Model(_, remedy) => *remedy,
            OfflineError::NoDataDir => Remedy::FetchModel,
            OfflineError::NeedsMultilingual { .. } => Remedy::MultilingualModel,
            OfflineError::Start(_) => Remedy::None,
        }
    }
}

impl From<ModelError> for OfflineError {
    fn from(e: ModelError) -> Self {
        let remedy = e.remedy();
        OfflineError::Model(e.to_string(), remedy)
    }
}

/// The recogniser is up.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineReady {
    /// Its WebSocket URL (loopback; no key is ever sent to it).
    pub url: String,
    /// Set when this request loaded the model.
    pub loaded: Option<ModelLoaded>,
}

/// A model that was just loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelLoaded {
    pub dir: PathBuf,
    pub secs: f64,
    pub multilingual: bool,
}

type Reply = Sender<Result<OfflineReady, OfflineError>>;

/// A request to the owner thread: the model folder to run, and where to answer.
type Request = (PathBuf, Reply);

/// Which model a language gets, when no model was named.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChoice {
    pub dir: PathBuf,
    /// `Automatic` is served by the English-only model because the multilingual one is not
    /// installed (the front end says how to install it).
    pub english_only_automatic: bool,
}

/// A handle to the recogniser on this computer. Cheap to clone; the recogniser lives while any
/// handle does.
#[derive(Clone, Debug)]
pub struct OfflineRecognizer {
    requests: Option<Sender<Request>>,
    model: Option<PathBuf>,
}

impl OfflineRecognizer {
    /// A recogniser for the model in `model` (`None`: the installed model that suits each
    /// dictation's language). Nothing is loaded until [`OfflineRecognizer::ready`] (or
    /// [`OfflineRecognizer::prepare`]).
    pub fn new(model: Option<PathBuf>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Request>();
        let spawned = std::thread::Builder::new()
            .name("offline-recognizer".to_owned())
            .spawn(move || own(&rx));
        OfflineRecognizer {
            requests: spawned.ok().map(|_| tx),
            model,
        }
    }

    /// The model folder a dictation in `language` runs on.
    pub fn model_dir(&self, language: Language) -> Result<PathBuf, OfflineError> {
        self.choose(language).map(|c| c.dir)
    }

    /// The model a dictation in `language` runs on, and whether `Automatic` falls back to English.
    /// English: tiny.en (base when only base is installed); any other language: base;
    /// `Automatic`: base, else tiny.en (English only). A model named with `--model` is always used.
    pub fn choose(&self, language: Language) -> Result<ModelChoice, OfflineError> {
        if let Some(dir) = &self.model {
            return Ok(ModelChoice {
                dir: dir.clone(),
                english_only_automatic: false,
            });
        }
        let dir = models::models_dir().ok_or(OfflineError::NoDataDir)?;
        let choice =
            models::choose(&dir, language).ok_or_else(|| OfflineError::NeedsMultilingual {
                language: language.code().to_owned(),
            })?;
        Ok(ModelChoice {
            dir: dir.join(choice.name),
            english_only_automatic: choice.english_only_automatic,
        })
    }

    /// Whether the model a dictation in `language` needs is installed (it may still be damaged).
    pub fn installed(&self, language: Language) -> bool {
        self.model_dir(language)
            .is_ok_and(|dir| crate::whisper::looks_like_model(&dir))
    }

    /// Starts the recogniser for `language` if it is not running (loading its model: this
    /// blocks), and returns its address.
    pub fn ready(&self, language: Language) -> Result<OfflineReady, OfflineError> {
        let dir = self.model_dir(language)?;
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        self.requests
            .as_ref()
            .ok_or_else(|| OfflineError::Start("cannot start its thread".to_owned()))?
            .send((dir, reply_tx))
            .map_err(|_| OfflineError::Start("its thread has stopped".to_owned()))?;
        reply_rx
            .recv()
            .map_err(|_| OfflineError::Start("its thread has stopped".to_owned()))?
    }

    /// Gets the recogniser for `language` ready in the background (an error shows when a
    /// dictation needs it).
    pub fn prepare(&self, language: Language) {
        if let (Some(requests), Ok(dir)) = (&self.requests, self.model_dir(language)) {
            // The reply is not waited for; the owner thread logs a failure.
            let (reply_tx, _) = crossbeam_channel::bounded(1);
            let _ = requests.send((dir, reply_tx));
        }
    }
}

/// The owner thread: starts a server for a model on the first request for it and answers every
/// request with its address (or why it cannot start; the next request tries again). A model
/// once loaded stays loaded (English and multilingual dictations may alternate). Ends when every
/// handle is gone, stopping the servers.
fn own(requests: &Receiver<Request>) {
    let mut servers: HashMap<PathBuf, BackgroundServer> = HashMap::new();
    for (dir, reply) in requests {
        let answer = match servers.get(&dir) {
            Some(running) => Ok(OfflineReady {
                url: running.url().to_owned(),
                loaded: None,
            }),
            None => start(&dir).map(|(running, loaded)| {
                let ready = OfflineReady {
                    url: running.url().to_owned(),
                    loaded: Some(loaded),
                };
                servers.insert(dir.clone(), running);
                ready
            }),
        };
        if let Err(e) = &answer {
            tracing::warn!("offline recogniser: {e}");
        }
        // A `prepare` does not wait for the answer.
        let _ = reply.send(answer);
    }
}

fn start(dir: &Path) -> Result<(BackgroundServer, ModelLoaded), OfflineError> {
    let dir = dir.to_path_buf();
    let started = Instant::now();
    let engine = load_engine(&dir)?;
    let loaded = ModelLoaded {
        dir,
        secs: started.elapsed().as_secs_f64(),
        multilingual: engine.recognizer().multilingual(),
    };
    let mut config = ServerConfig::loopback(0);
    config.engine = engine;
    let server = BackgroundServer::start(config).map_err(|e| OfflineError::Start(e.to_string()))?;
    Ok((server, loaded))
}

/// Loads the Whisper model in `dir` as a server engine (also what `serve --engine whisper` runs).
pub fn load_engine(dir: &Path) -> Result<Arc<WhisperEngine>, ModelError> {
    let recognizer = Recognizer::load(dir)?;
    Ok(Arc::new(WhisperEngine::new(Arc::new(recognizer))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_model_is_reported_with_its_path_and_the_next_request_tries_again() {
        let dir = std::env::temp_dir().join("lightning-dictate-no-such-model");
        let recognizer = OfflineRecognizer::new(Some(dir.clone()));
        assert!(!recognizer.installed(Language::ENGLISH));
        for _ in 0..2 {
            let error = recognizer.ready(Language::ENGLISH).err();
            let Some(error) = error else {
                panic!("a missing model loaded");
            };
            assert!(
                error.to_string().contains(&dir.display().to_string()),
                "{error}"
            );
            assert_eq!(error.remedy(), Remedy::FetchModel);
        }
    }
}
