//! Where a dictation's audio comes from: the microphone (a [`Capture`]) or a WAV file (read on a
//! thread of its own). Either way the chunks go into one bounded channel that the session reads.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::audio::capture::{Capture, CaptureError, CaptureOptions, CaptureStats};
use crate::audio::wav::{Pace, WavError, WavInfo, WavSource};
use crate::audio::{AudioChunk, ChunkFormat};
use crate::channel::{Sink, WokenReceiver, WokenSender, woken};
use crate::remedy::Remedy;

use super::DictationEvent;

/// Where the audio comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An input device (`None`: the system default), as the user speaks.
    Microphone {
        device: Option<String>,
        /// How much audio the device callback's hand-off holds, in milliseconds.
        handoff_ms: u32,
    },
    /// A WAV file.
    File {
        path: PathBuf,
        pace: Pace,
        /// Treat it as live audio (it cannot wait; an outage may go on offline): for tests.
        simulate_live: bool,
    },
}

impl Source {
    /// The default microphone.
    pub fn microphone(device: Option<String>) -> Self {
        Source::Microphone {
            device,
            handoff_ms: 2000,
        }
    }

    /// Whether the audio arrives live (it cannot be paused).
    pub fn is_live(&self) -> bool {
        match self {
            Source::Microphone { .. } => true,
            Source::File { simulate_live, .. } => *simulate_live,
        }
    }

    /// How many chunks may queue between the source and the session: a minute for a microphone
    /// (it queues while connecting, and a slow network never blocks the capture thread); ten
    /// seconds of 20 ms chunks for a file, which simply waits.
    fn queue(&self, chunk_ms: u32) -> usize {
        match self {
            Source::Microphone { .. } => (60_000 / chunk_ms.max(1)) as usize,
            Source::File { .. } => 500,
        }
    }
}

/// What was opened, reported first.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceInfo {
    /// The microphone (its own [`crate::audio::capture::CaptureEvent::Opened`] has the details).
    Microphone { device: String },
    /// A WAV file and what its header says.
    File {
        path: PathBuf,
        info: WavInfo,
        pace: Pace,
    },
}

/// Why the audio could not start or stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The WAV file cannot be read, or broke part-way (the message says how far it got).
    #[error("{0}")]
    File(String),
    /// The microphone cannot be opened.
    #[error("{message}")]
    Capture { message: String, remedy: Remedy },
    /// The microphone failed mid-dictation.
    #[error("the input device `{device}` failed ({detail}): the text so far is kept")]
    DeviceLost { device: String, detail: String },
    /// A thread could not start.
    #[error("cannot start the audio thread: {0}")]
    Thread(String),
}

impl SourceError {
    /// What the user can do about it.
    pub fn remedy(&self) -> Remedy {
        match self {
            SourceError::Capture { remedy, .. } => *remedy,
            SourceError::DeviceLost { .. } => Remedy::PickDevice,
            SourceError::File(_) | SourceError::Thread(_) => Remedy::None,
        }
    }
}

impl From<CaptureError> for SourceError {
    fn from(e: CaptureError) -> Self {
        SourceError::Capture {
            remedy: e.remedy(),
            message: e.to_string(),
        }
    }
}

impl From<WavError> for SourceError {
    fn from(e: WavError) -> Self {
        SourceError::File(e.to_string())
    }
}

/// The file reader's thread: it ends when the file does, or when stopped.
pub(super) type FileThread = JoinHandle<Result<(), SourceError>>;

/// A source that is running.
pub(super) enum Running {
    /// `None` once stopped.
    Microphone(Option<Capture>),
    File(Arc<AtomicBool>),
}

/// A started source: what controls it, the chunks it sends, and the file reader to join.
pub(super) struct Started {
    pub running: Running,
    pub audio: WokenReceiver<AudioChunk>,
    pub reader: Option<FileThread>,
}

impl Running {
    /// Opens `source` and starts it; reports [`DictationEvent::Started`] first.
    pub(super) fn start(
        source: &Source,
        format: ChunkFormat,
        events: &Sink<DictationEvent>,
    ) -> Result<Started, SourceError> {
        let (chunks, audio) = woken(source.queue(format.chunk_ms));
        match source {
            Source::Microphone { device, handoff_ms } => {
                let mut options = CaptureOptions::new(device.clone(), format);
                options.handoff_secs = (*handoff_ms).max(1) as f32 / 1000.0;
                let capture = Capture::start(options, chunks, events.map(DictationEvent::Capture))?;
                events.send(DictationEvent::Started(SourceInfo::Microphone {
                    device: capture.device().to_owned(),
                }));
                Ok(Started {
                    running: Running::Microphone(Some(capture)),
                    audio,
                    reader: None,
                })
            }
            Source::File { path, pace, .. } => {
                let wav = WavSource::open(path)?;
                events.send(DictationEvent::Started(SourceInfo::File {
                    path: path.clone(),
                    info: wav.info(),
                    pace: *pace,
                }));
                let stop = Arc::new(AtomicBool::new(false));
                let reader = spawn_file(wav, format, *pace, chunks, Arc::clone(&stop))?;
                Ok(Started {
                    running: Running::File(stop),
                    audio,
                    reader: Some(reader),
                })
            }
        }
    }

    /// The microphone's name.
    pub(super) fn device(&self) -> Option<String> {
        match self {
            Running::Microphone(capture) => capture.as_ref().map(|c| c.device().to_owned()),
            Running::File(_) => None,
        }
    }

    /// Stops the audio: the session sends what it has, then `end`. Returns the microphone's totals
    /// the first time.
    pub(super) fn stop(&mut self) -> Option<CaptureStats> {
        match self {
            // Flushes the last chunk and closes the channel.
            Running::Microphone(capture) => capture.take().map(Capture::stop),
            Running::File(stop) => {
                stop.store(true, Ordering::SeqCst);
                None
            }
        }
    }
}

fn spawn_file(
    wav: WavSource,
    format: ChunkFormat,
    pace: Pace,
    chunks: WokenSender<AudioChunk>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<Result<(), SourceError>>, SourceError> {
    std::thread::Builder::new()
        .name("wav-source".to_owned())
        .spawn(move || {
            wav.stream(format, pace, &chunks, &stop)
                .map(|_| ())
                .map_err(SourceError::from)
        })
        .map_err(|e| SourceError::Thread(e.to_string()))
}
