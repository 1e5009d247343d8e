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
    /// What the global shortcut does.
    pub shortcut_mode: ShortcutMode,
    /// The global shortcut (`None`: ctrl+alt+space).
    pub shortcut: Option<String>,
    /// Where a dictation started from outside the window puts its text.
    pub insert_into: InsertInto,
}

/// Where a dictation started by the shortcut (or `lightning-dictate toggle`) puts its text,
/// besides the window's transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InsertInto {
    /// The focused app, typed key by key.
    #[default]
    Typing,
    /// The focused app, pasted through the clipboard (the previous content is put back).
    Pasting,
    /// This window only.
    WindowOnly,
}

/// What the global shortcut does: each press starts or stops a dictation, or a dictation lasts
/// while the keys are held (a short tap still toggles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ShortcutMode {
    #[default]
    Toggle,
    HoldToTalk,
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
            shortcut_mode: ShortcutMode::Toggle,
            shortcut: None,
            insert_into: InsertInto::Typing,
        }
    }
}

impl Settings {
    /// The storage key.
    pub const KEY: &'static str = "lightning-dictate/settings";

    /// True when dictation runs on the offline recogniser: chosen, or one of Smallest AI's
    /// endpoints is chosen without a key (a fresh install works before it has one).
    /// A non-default URL (a self-hosted or local server) is used as is, key or not.
    pub fn offline(&self, has_key: bool) -> bool {
        match self.engine {
            EngineChoice::OnThisComputer => true,
            EngineChoice::Lightning => !has_key && Service::of_url(&self.url) != Service::Custom,
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

/// Which of the vendor's endpoints the server URL names (derived from it, never stored apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The API document's endpoint (the default).
    Lightning,
    /// `.../waves/v1/pulse/get_text`.
    Pulse,
    /// The unified live endpoint, `.../waves/v1/stt/live`.
    PulseLive,
    /// Any other URL (a self-hosted or local server).
    Custom,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Lightning,
        Service::Pulse,
        Service::PulseLive,
        Service::Custom,
    ];

    /// The service a URL names.
    pub fn of_url(url: &str) -> Service {
        let base = url.trim().split(['?', '#']).next().unwrap_or_default();
        [Service::Lightning, Service::Pulse, Service::PulseLive]
            .into_iter()
            .find(|s| s.url() == Some(base))
            .unwrap_or(Service::Custom)
    }

    /// Its URL (`None` for a custom one).
    pub fn url(self) -> Option<&'static str> {
        match self {
            Service::Lightning => Some(DEFAULT_URL),
            Service::Pulse => Some(crate::protocol::PULSE_URL),
            Service::PulseLive => Some(crate::protocol::PULSE_LIVE_URL),
            Service::Custom => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Service::Lightning => "Lightning (API document)",
            Service::Pulse => "Pulse",
            Service::PulseLive => "Pulse live",
            Service::Custom => "Custom URL",
        }
    }
}

/// Why the endpoint at `url` cannot stream `language`, if it cannot: the live endpoint does not
/// stream automatic detection (its server answers 400 "Language 'multi' has not been enabled").
pub fn language_refusal(url: &str, language: Language) -> Option<&'static str> {
    let path = url.trim().split(['?', '#']).next().unwrap_or_default();
    (language.is_multi() && path.trim_end_matches('/').ends_with("/stt/live")).then_some(
        "The live endpoint does not stream automatic detection: pick the language you speak",
    )
}
