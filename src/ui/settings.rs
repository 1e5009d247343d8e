//! What the user chooses, persisted with eframe's storage. The API key is never part of it.

use serde::{Deserialize, Serialize};

use crate::protocol::{DEFAULT_URL, Encoding, Language, SampleRate, StreamParams};

/// Persisted choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub language: Language,
    pub encoding: Encoding,
    pub sample_rate: SampleRate,
    pub word_timestamps: bool,
    pub url: String,
    /// `None`: the system's default input.
    pub device: Option<String>,
    pub theme: Theme,
}

/// Light, dark, or whatever the desktop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            language: Language::ENGLISH,
            encoding: Encoding::Linear16,
            sample_rate: SampleRate::Hz16000,
            word_timestamps: true,
            url: DEFAULT_URL.to_owned(),
            device: None,
            theme: Theme::System,
        }
    }
}

impl Settings {
    /// The storage key.
    pub const KEY: &'static str = "lightning-dictate/settings";

    pub fn stream_params(&self) -> StreamParams {
        StreamParams {
            language: self.language,
            encoding: self.encoding,
            sample_rate: self.sample_rate,
            word_timestamps: self.word_timestamps,
        }
    }
}
