//! The recogniser interface behind the local server. An engine session runs on its own thread
//! (never on the tokio reactor), receives decoded mono f32 audio at the stream's rate, and answers
//! with transcript updates.

use crate::protocol::{StreamParams, WordTimestamp};

/// One transcript update from an engine.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineOutput {
    /// The open segment's text (interim) or the closed segment's text (final).
    pub text: String,
    pub is_final: bool,
    /// Set by the server on the terminal message after `end`.
    pub is_last: bool,
    /// On finals: the language code used or detected.
    pub language: Option<String>,
    /// On finals: words with times in seconds from the start of the stream.
    pub words: Vec<WordTimestamp>,
}

/// What an engine runs on the audio as the server receives it (see
/// [`EngineSession::audio_watch`]).
pub type AudioWatch = Box<dyn FnMut(&[f32]) + Send>;

/// A recogniser the local server can put behind the protocol.
pub trait Engine: Send + Sync {
    /// Short name for logs and `--engine`.
    fn name(&self) -> &'static str;

    /// Refuses parameters the engine cannot serve (answered with HTTP 400 before the upgrade).
    fn check_params(&self, params: &StreamParams) -> Result<(), String>;

    /// Starts recognising one stream.
    fn start(&self, params: &StreamParams) -> Box<dyn EngineSession>;
}

/// One stream being recognised.
pub trait EngineSession: Send {
    /// More audio. Returns the updates it caused (interims, finals at pauses).
    fn push(&mut self, samples: &[f32]) -> Vec<EngineOutput>;

    /// Closes the open segment now (the protocol's `finalize`); the stream goes on.
    fn finalize(&mut self) -> Vec<EngineOutput>;

    /// The stream ended (`end`): flush everything.
    fn finish(&mut self) -> Vec<EngineOutput>;

    /// Told before each `push` whether more audio is already waiting behind it: a slow engine
    /// can skip optional work (interims) until it has caught up.
    fn set_behind(&mut self, _behind: bool) {}

    /// Given once, before the first `push`: a flag the server raises from its own thread the
    /// moment the client asks for the text now (`finalize`, `end`). A slow engine can give up
    /// optional work in progress (an interim) so the final does not wait behind it; the engine
    /// lowers the flag once it has answered.
    fn set_hurry(&mut self, _hurry: std::sync::Arc<std::sync::atomic::AtomicBool>) {}

    /// Asked once, before the first `push`: what to run on each piece of audio on the server's
    /// own thread as it arrives, before it queues for this session (which may be busy). An
    /// engine can watch there for what makes its work in progress pointless (a pause in the
    /// speech, for an interim). It must be cheap: it runs on the network task.
    fn audio_watch(&mut self) -> Option<AudioWatch> {
        None
    }
}
