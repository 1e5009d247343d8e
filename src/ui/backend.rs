//! What the window drives: a dictation backend started and stopped by the user. The live one
//! captures the microphone and runs a session on a background runtime; tests use their own.

use crossbeam_channel::Sender;

use crate::audio::capture::{Capture, CaptureEvent, CaptureOptions};
use crate::audio::{AudioChunk, ChunkFormat};
use crate::protocol::ApiKey;
use crate::session::{SessionConfig, SessionEvent, run_session};

use super::settings::Settings;

/// Everything the backend reports to the window.
#[derive(Debug, Clone, PartialEq)]
pub enum UiEvent {
    Session(SessionEvent),
    Capture(CaptureEvent),
}

/// What a dictation needs to start.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub settings: Settings,
    pub api_key: Option<ApiKey>,
    /// Recognise on this computer (the offline recogniser on loopback) instead of `settings.url`.
    pub offline: bool,
}

/// Starts and stops dictations. `start` must return at once; everything after goes through
/// `events` (and each event asks the window to repaint).
pub trait Backend {
    /// Starts capturing and connecting. An error is shown in the status line.
    fn start(
        &mut self,
        request: StartRequest,
        events: Sender<UiEvent>,
        repaint: Box<dyn Fn() + Send + Sync>,
    ) -> Result<(), String>;

    /// Stops capturing: the session sends `end` and reports the last finals, then `Ended`.
    fn stop(&mut self);

    /// The next dictation will be offline: get ready (load the model) in the background.
    fn prewarm_offline(&mut self) {}
}

/// The real thing: microphone → pipeline → session.
#[derive(Default)]
pub struct LiveBackend {
    capture: Option<Capture>,
    /// The offline recogniser, started on the first offline dictation and kept (the model is
    /// loaded once).
    offline: std::sync::Arc<std::sync::Mutex<Option<crate::server::BackgroundServer>>>,
    /// The offline model folder (`None`: the default one).
    model: Option<std::path::PathBuf>,
}

impl LiveBackend {
    pub fn new(model: Option<std::path::PathBuf>) -> Self {
        LiveBackend {
            model,
            ..LiveBackend::default()
        }
    }
}

impl Backend for LiveBackend {
    fn start(
        &mut self,
        request: StartRequest,
        events: Sender<UiEvent>,
        repaint: Box<dyn Fn() + Send + Sync>,
    ) -> Result<(), String> {
        self.stop();
        let settings = request.settings;
        let format = ChunkFormat {
            encoding: settings.encoding,
            sample_rate: settings.sample_rate,
            chunk_ms: 20,
        };
        let params = settings.stream_params();
        let offline = request.offline;
        if !offline {
            crate::protocol::build_endpoint(&settings.url, &params, request.api_key.is_some())
                .map_err(|e| e.to_string())?;
        }
        // A minute of audio can queue while connecting or reconnecting.
        let (audio_tx, audio_rx) = crossbeam_channel::bounded::<AudioChunk>(3000);
        let options = CaptureOptions::new(settings.device.clone(), format);
        let capture = Capture::start(options, audio_tx).map_err(|e| e.to_string())?;
        let repaint: std::sync::Arc<dyn Fn() + Send + Sync> = std::sync::Arc::from(repaint);

        let capture_events = capture.events().clone();
        let tx = events.clone();
        let wake = std::sync::Arc::clone(&repaint);
        std::thread::Builder::new()
            .name("ui-capture-events".to_owned())
            .spawn(move || {
                for event in capture_events.iter() {
                    if tx.send(UiEvent::Capture(event)).is_err() {
                        break;
                    }
                    wake();
                }
            })
            .map_err(|e| e.to_string())?;

        let api_key = request.api_key;
        let url = settings.url.clone();
        let offline_server = std::sync::Arc::clone(&self.offline);
        let model = self.model.clone();
        let (session_tx, session_rx) = crossbeam_channel::unbounded();
        let tx = events;
        let wake = repaint;
        std::thread::Builder::new()
            .name("ui-session-events".to_owned())
            .spawn(move || {
                for event in session_rx.iter() {
                    let _ = tx.send(UiEvent::Session(event));
                    wake();
                }
            })
            .map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("session".to_owned())
            .spawn(move || {
                // Capture already runs: what is said while the model loads queues up.
                let config = if offline {
                    match offline_url(&offline_server, model.as_deref()) {
                        Ok(url) => SessionConfig::new(url, params, None).live(),
                        Err(e) => {
                            let _ = session_tx.send(SessionEvent::Ended(Err(e)));
                            return;
                        }
                    }
                } else {
                    let mut config = SessionConfig::new(url, params, api_key).live();
                    // When the service stays away, the dictation goes on offline (if a model
                    // is installed), on the recogniser this window shares.
                    let installed = model
                        .clone()
                        .or_else(crate::whisper::default_model_dir)
                        .is_some_and(|dir| crate::whisper::looks_like_model(&dir));
                    if installed {
                        let server = std::sync::Arc::clone(&offline_server);
                        let model = model.clone();
                        config.fallback = Some(crate::session::Fallback {
                            start: std::sync::Arc::new(move || {
                                let url = offline_url(&server, model.as_deref())?;
                                Ok(crate::session::FallbackTarget {
                                    url,
                                    guard: Box::new(()),
                                })
                            }),
                        });
                    }
                    config
                };
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => {
                        let _ = runtime.block_on(run_session(config, audio_rx, session_tx));
                    }
                    Err(e) => {
                        let _ = session_tx.send(SessionEvent::Ended(Err(format!(
                            "cannot start the network runtime: {e}"
                        ))));
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        self.capture = Some(capture);
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(capture) = self.capture.take() {
            // Flushes the last chunk and closes the channel: the session sends `end`.
            let _ = capture.stop();
        }
    }

    fn prewarm_offline(&mut self) {
        let server = std::sync::Arc::clone(&self.offline);
        let model = self.model.clone();
        let _ = std::thread::Builder::new()
            .name("offline-prewarm".to_owned())
            .spawn(move || {
                // An error here shows when dictation starts (it tries again then).
                if let Err(e) = offline_url(&server, model.as_deref()) {
                    tracing::warn!("offline recogniser: {e}");
                }
            });
    }
}

/// The offline recogniser's address, starting it (loading the model) the first time.
fn offline_url(
    server: &std::sync::Mutex<Option<crate::server::BackgroundServer>>,
    model: Option<&std::path::Path>,
) -> Result<String, String> {
    let mut server = server
        .lock()
        .map_err(|_| "the offline recogniser failed earlier; restart the app".to_owned())?;
    if server.is_none() {
        *server = Some(crate::cli::start_offline_server(model, true)?);
    }
    server
        .as_ref()
        .map(|s| s.url().to_owned())
        .ok_or_else(|| "the offline recogniser did not start".to_owned())
}
