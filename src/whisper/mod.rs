//! The offline recogniser: Whisper from a faster-whisper (CTranslate2) model directory, run with
//! candle on the CPU, behind the local server's engine interface.

pub mod align;
mod beam;
pub mod ct2;
pub mod decode;
mod decoder;
mod decoder_state;
pub mod engine;
pub mod fallback;
mod greedy;
pub mod language;
mod loader;
mod matmul;
pub mod mel;
pub mod model;
mod repeat;
mod settled;
pub mod tokenizer;
pub mod vad;
pub mod wer;

use std::path::{Path, PathBuf};

pub use decode::{Context, Recognition, Recognizer, Word};
pub use engine::WhisperEngine;

/// The default model's folder name under the data directory.
pub const DEFAULT_MODEL: &str = crate::models::ENGLISH;

/// Why a model could not be used. Every message names the path; [`ModelError::remedy`] says
/// what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The folder has no model files.
    #[error("no Whisper model at {path}")]
    Missing { path: PathBuf },
    /// A model file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The files are there but do not hold a usable model (truncated, another format).
    #[error("{path} is not a usable Whisper model ({detail})")]
    Corrupt { path: PathBuf, detail: String },
    /// Running the model failed.
    #[error("the recogniser failed: {0}")]
    Inference(String),
}

impl ModelError {
    /// What the user can do about it.
    pub fn remedy(&self) -> crate::remedy::Remedy {
        match self {
            ModelError::Missing { .. } | ModelError::Corrupt { .. } => {
                crate::remedy::Remedy::FetchModel
            }
            ModelError::Io { .. } | ModelError::Inference(_) => crate::remedy::Remedy::None,
        }
    }
}

/// Where models live: `$XDG_DATA_HOME/lightning-dictate/models`, else
/// `~/.local/share/lightning-dictate/models`.
pub fn models_dir() -> Option<PathBuf> {
    crate::models::models_dir()
}

/// The default model's folder (it may not exist yet).
pub fn default_model_dir() -> Option<PathBuf> {
    models_dir().map(|d| d.join(DEFAULT_MODEL))
}

/// True when `dir` has the files of a faster-whisper model.
pub fn looks_like_model(dir: &Path) -> bool {
    crate::models::looks_like_model(dir)
}
