//! A dictation, from start to stop, with no window needed: the one place that turns a
//! [`DictationRequest`] (where the audio comes from, the stream parameters, where it is
//! recognised) into running machinery: the source, the chunk channel, the session on its own
//! thread and runtime, and the offline recogniser when one is needed.
//!
//! The command line, the window, the tests and the benches all start dictations here; everything
//! a dictation reports arrives on one [`Sink`] of [`DictationEvent`]s, in order per producer.
//!
//! ```text
//! Source (mic | file) ──chunks──► session thread (tokio) ──► service | offline recogniser
//!        │                                 │
//!        └── CaptureEvent ──┐              └── SessionEvent
//!                           ▼                      ▼
//!                        Sink<DictationEvent> (window, CLI printer, test)
//! ```

pub mod offline;
mod source;

use std::thread::JoinHandle;

pub use offline::{ModelChoice, ModelLoaded, OfflineError, OfflineReady, OfflineRecognizer};
pub use source::{Source, SourceError, SourceInfo};

use crate::audio::ChunkFormat;
use crate::audio::capture::{CaptureEvent, CaptureStats};
use crate::channel::Sink;
use crate::protocol::{ApiKey, StreamParams, UrlError};
use crate::remedy::Remedy;
use crate::session::{
    Fallback, FallbackTarget, SessionConfig, SessionError, SessionEvent, SessionSummary,
    run_session_woken,
};
use source::{FileThread, Running, Started};

/// Where speech is recognised.
#[derive(Debug, Clone)]
pub enum Target {
    /// The service (or any server speaking its protocol) at `url`.
    Service {
        url: String,
        api_key: Option<ApiKey>,
        /// For a live source: the recogniser on this computer takes over when the service stays
        /// away (see [`SessionConfig::fallback`]).
        fallback: Option<OfflineRecognizer>,
    },
    /// The recogniser on this computer.
    Offline(OfflineRecognizer),
}

type Configure = Box<dyn FnOnce(&mut SessionConfig) + Send>;

/// Everything a dictation needs to start.
pub struct DictationRequest {
    pub source: Source,
    pub params: StreamParams,
    /// Length of each audio chunk sent.
    pub chunk_ms: u32,
    pub target: Target,
    /// Adjusts the session's policies (timeouts, replay window, raw frames) after the dictation
    /// has set them from the source and target.
    configure: Option<Configure>,
}

impl std::fmt::Debug for DictationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DictationRequest")
            .field("source", &self.source)
            .field("params", &self.params)
            .field("chunk_ms", &self.chunk_ms)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl DictationRequest {
    /// A request with 20 ms chunks.
    pub fn new(source: Source, params: StreamParams, target: Target) -> Self {
        DictationRequest {
            source,
            params,
            chunk_ms: 20,
            target,
            configure: None,
        }
    }

    /// Sets the chunk length.
    #[must_use]
    pub fn chunk_ms(mut self, chunk_ms: u32) -> Self {
        self.chunk_ms = chunk_ms;
        self
    }

    /// Adjusts the session's settings before it starts (last word over the defaults).
    #[must_use]
    pub fn configure(mut self, f: impl FnOnce(&mut SessionConfig) + Send + 'static) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// The chunks this dictation sends (the one place they are made from the stream parameters).
    pub fn chunk_format(&self) -> ChunkFormat {
        ChunkFormat::for_stream(&self.params, self.chunk_ms)
    }
}

/// What a dictation reports.
#[derive(Debug, Clone, PartialEq)]
pub enum DictationEvent {
    /// The source is open (first event).
    Started(SourceInfo),
    /// From the microphone: levels, silence, device trouble.
    Capture(CaptureEvent),
    /// From the session: text, connection state, and at the end [`SessionEvent::Ended`].
    Session(SessionEvent),
    /// The dictation could not go on before its session started (the offline recogniser failed to
    /// load): it is over.
    Failed(StartError),
}

/// Why a dictation could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The service URL cannot be used.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The audio source cannot be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The offline recogniser cannot run.
    #[error(transparent)]
    Offline(#[from] OfflineError),
    /// A thread or the network runtime could not start.
    #[error("cannot start the dictation: {0}")]
    Thread(String),
}

impl StartError {
    /// What the user can do about it.
    pub fn remedy(&self) -> Remedy {
        match self {
            StartError::Url(_) => Remedy::CheckUrl,
            StartError::Source(e) => e.remedy(),
            StartError::Offline(e) => e.remedy(),
            StartError::Thread(_) => Remedy::None,
        }
    }
}

/// Why a dictation ended without its last confirmation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DictationError {
    /// The session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The dictation could not get going (the offline recogniser did not load).
    #[error(transparent)]
    Start(#[from] StartError),
}

impl DictationError {
    /// What the user can do about it.
    pub fn remedy(&self) -> Remedy {
        match self {
            DictationError::Session(e) => e.remedy(),
            DictationError::Start(e) => e.remedy(),
        }
    }
}

/// How a dictation went, once it is over.
#[derive(Debug)]
pub struct DictationOutcome {
    /// The session's totals, or why it failed.
    pub session: Result<SessionSummary, DictationError>,
    /// Whether the audio source ran to its end (a damaged file, a lost device: the text before
    /// it is kept).
    pub source: Result<(), SourceError>,
    /// The microphone's totals (`None` for a file).
    pub capture: Option<CaptureStats>,
}

/// A running dictation. [`Dictation::stop`] ends the audio (the session then sends `end` and
/// reports its last finals); dropping it stops it too, and lets it finish on its own.
pub struct Dictation {
    running: Running,
    worker: Option<JoinHandle<WorkerOutcome>>,
    capture: Option<CaptureStats>,
    /// The microphone's name, for a device-lost report.
    device: Option<String>,
}

type WorkerOutcome = (
    Result<SessionSummary, DictationError>,
    Result<(), SourceError>,
);

impl Dictation {
    /// Opens the source and starts the session on its own thread. Returns at once (audio queues
    /// while the connection is made or the offline model loads); errors here are the ones that
    /// can be known before any audio flows.
    pub fn start(
        request: DictationRequest,
        events: impl Into<Sink<DictationEvent>>,
    ) -> Result<Dictation, StartError> {
        let events = events.into();
        let format = request.chunk_format();
        if let Target::Service { url, api_key, .. } = &request.target {
            crate::protocol::build_endpoint(url, &request.params, api_key.is_some())?;
        }
        let Started {
            mut running,
            audio,
            reader,
        } = Running::start(&request.source, format, &events)?;
        let live = request.source.is_live();
        let device = running.device();
        let worker = std::thread::Builder::new()
            .name("dictation".to_owned())
            .spawn(move || run(request, live, audio, reader, &events));
        match worker {
            Ok(worker) => Ok(Dictation {
                running,
                worker: Some(worker),
                capture: None,
                device,
            }),
            Err(e) => {
                running.stop();
                Err(StartError::Thread(e.to_string()))
            }
        }
    }

    /// Ends the audio. The session sends what it has, then `end`, and reports the last finals.
    pub fn stop(&mut self) {
        if let Some(stats) = self.running.stop() {
            self.capture = Some(stats);
        }
    }

    /// Whether the session is over (its `Ended` event was sent).
    pub fn is_finished(&self) -> bool {
        self.worker.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the session to end (stopping the audio only if it ended first) and reports.
    pub fn wait(mut self) -> DictationOutcome {
        let (session, source) = match self.worker.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) | None => (
                Err(StartError::Thread("the dictation thread failed".to_owned()).into()),
                Ok(()),
            ),
        };
        self.stop();
        let capture = self.capture.take();
        // A lost device explains an early end better than the session does.
        let source = match (source, &capture) {
            (Ok(()), Some(stats)) => match &stats.device_lost {
                Some(detail) => Err(SourceError::DeviceLost {
                    device: self.device.clone().unwrap_or_default(),
                    detail: detail.clone(),
                }),
                None => Ok(()),
            },
            (other, _) => other,
        };
        DictationOutcome {
            session,
            source,
            capture,
        }
    }
}

impl Drop for Dictation {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The dictation thread: resolves the target, runs the session to its end, joins the file reader.
fn run(
    request: DictationRequest,
    live: bool,
    audio: crate::channel::WokenReceiver<crate::audio::AudioChunk>,
    reader: Option<FileThread>,
    events: &Sink<DictationEvent>,
) -> WorkerOutcome {
    let session = session_config(request, live).and_then(|(config, _recognizer)| {
        // `_recognizer` keeps the offline recogniser running until the session is over.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StartError::Thread(format!("cannot start the network runtime: {e}")))?;
        Ok(runtime.block_on(run_session_woken(
            config,
            audio,
            events.map(DictationEvent::Session),
        )))
    });
    let session = match session {
        Ok(outcome) => outcome.map_err(DictationError::from),
        Err(e) => {
            events.send(DictationEvent::Failed(e.clone()));
            Err(e.into())
        }
    };
    // The session has dropped the chunk receiver: a reader still sending has stopped.
    let source = reader.map_or(Ok(()), |thread| {
        thread
            .join()
            .unwrap_or_else(|_| Err(SourceError::Thread("the file reader failed".to_owned())))
    });
    (session, source)
}

/// How long a dictation on this computer waits for its last final after `end`.
const OFFLINE_FINISH_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(1);

/// The session's settings for this request: the target's URL (loading the offline model first
/// when the target is the recogniser on this computer), the source's kind, then the request's own
/// adjustments.
fn session_config(
    request: DictationRequest,
    live: bool,
) -> Result<(SessionConfig, Option<OfflineRecognizer>), StartError> {
    let mut recognizer_in_use = None;
    let language = request.params.language;
    let mut config = match request.target {
        Target::Service {
            url,
            api_key,
            fallback,
        } => {
            let mut config = SessionConfig::new(url, request.params, api_key);
            if live && let Some(recognizer) = fallback.filter(|r| r.installed(language)) {
                config.fallback = Some(fallback_to(recognizer, language));
            }
            config
        }
        Target::Offline(recognizer) => {
            let ready = recognizer.ready(language)?;
            recognizer_in_use = Some(recognizer);
            let mut config = SessionConfig::new(ready.url, request.params, None);
            // The recogniser on this computer is known to be alive; on a slow machine its last
            // final (a long utterance, a retried doubtful one) can take longer than the
            // service's. The request's own adjustments below may still change it.
            config.finish_timeout = config.finish_timeout.max(OFFLINE_FINISH_TIMEOUT);
            config
        }
    };
    if live {
        config = config.live();
    }
    if let Some(configure) = request.configure {
        configure(&mut config);
    }
    Ok((config, recognizer_in_use))
}

/// A session fallback onto `recognizer`; the handle it returns keeps the recogniser running.
fn fallback_to(recognizer: OfflineRecognizer, language: crate::protocol::Language) -> Fallback {
    Fallback {
        start: std::sync::Arc::new(move || {
            let ready = recognizer.ready(language).map_err(|e| e.to_string())?;
            Ok(FallbackTarget {
                url: ready.url,
                guard: Box::new(recognizer.clone()),
            })
        }),
    }
}
