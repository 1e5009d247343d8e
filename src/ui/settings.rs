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
    /// Where speech is recognised.
    pub engine: EngineChoice,
}

/// Where speech is recognised: Smallest AI's Lightning service (the server URL), or the offline
/// Whisper recogniser in this app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EngineChoice {
    #[default]
    Lightning,
    OnThisComputer,
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
            engine: EngineChoice::Lightning,
        }
    }
}

impl Settings {
    /// The storage key.
    pub const KEY: &'static str = "lightning-dictate/settings";

    /// True when dictation runs on the offline recogniser: chosen, or the Lightning service is
    /// chosen at its default address without a key (a fresh install works before it has one).
    /// A non-default URL (a self-hosted or local server) is used as is, key or not.
    pub fn offline(&self, has_key: bool) -> bool {
        match self.engine {
            EngineChoice::OnThisComputer => true,
            EngineChoice::Lightning => !has_key && self.url == DEFAULT_URL,
        }
    }

    pub fn stream_params(&self) -> StreamParams {
        StreamParams {
            language: self.language,
            encoding: self.encoding,
            sample_rate: self.sample_rate,
            word_timestamps: self.word_timestamps,
        }
    }
}
