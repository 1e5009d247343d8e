//! Flag groups shared by the window and `transcribe`, with value lists taken from the types
//! themselves (a new encoding or rate shows up in `--help` with no change here).

use std::path::PathBuf;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use lightning_dictate::protocol::{DEFAULT_URL, Encoding, Language, SampleRate, StreamParams};
use lightning_dictate::ui::settings::{InsertInto, ShortcutMode};
use lightning_dictate::ui::{Overrides, Theme};

fn language_parser() -> impl TypedValueParser<Value = Language> {
    PossibleValuesParser::new(Language::all().map(lightning_dictate::protocol::Language::code))
        .try_map(|s| s.parse::<Language>())
}

fn encoding_parser() -> impl TypedValueParser<Value = Encoding> {
    PossibleValuesParser::new(Encoding::ALL.map(lightning_dictate::protocol::Encoding::as_str))
        .try_map(|s| s.parse::<Encoding>())
}

fn rate_parser() -> impl TypedValueParser<Value = SampleRate> {
    PossibleValuesParser::new(SampleRate::ALL.map(SampleRate::as_str))
        .try_map(|s| s.parse::<SampleRate>())
}

fn shortcut_mode_parser() -> impl TypedValueParser<Value = ShortcutMode> {
    PossibleValuesParser::new(["toggle", "hold"]).map(|s| match s.as_str() {
        "hold" => ShortcutMode::HoldToTalk,
        _ => ShortcutMode::Toggle,
    })
}

fn insert_parser() -> impl TypedValueParser<Value = InsertInto> {
    PossibleValuesParser::new(["type", "paste", "window"]).map(|s| match s.as_str() {
        "paste" => InsertInto::Pasting,
        "window" => InsertInto::WindowOnly,
        _ => InsertInto::Typing,
    })
}

fn theme_parser() -> impl TypedValueParser<Value = Theme> {
    PossibleValuesParser::new(["system", "light", "dark"]).map(|s| match s.as_str() {
        "light" => Theme::Light,
        "dark" => Theme::Dark,
        _ => Theme::System,
    })
}

/// Where to stream and what to ask for: the same flags for the window and `transcribe`.
#[derive(Debug, Clone, Args)]
pub struct StreamArgs {
    /// WebSocket URL of the service [default: the saved setting in the window, else
    /// wss://waves-api.smallest.ai/api/v1/lightning/get_text]
    #[arg(long, env = "LIGHTNING_URL")]
    pub url: Option<String>,
    /// Smallest AI API key (the window also finds one in the keyring, or typed in Settings).
    #[arg(long, env = "SMALLEST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Language code, or `multi` for automatic detection [default: en, or the saved setting]
    #[arg(long, value_parser = language_parser())]
    pub language: Option<Language>,
    /// Encoding on the wire [default: linear16, or the saved setting]
    #[arg(long, value_parser = encoding_parser())]
    pub encoding: Option<Encoding>,
    /// Sample rate on the wire, in Hz [default: 16000, or the saved setting]
    #[arg(long, value_parser = rate_parser())]
    pub sample_rate: Option<SampleRate>,
}

impl StreamArgs {
    /// The URL, or the service's default.
    pub fn url(&self) -> String {
        self.url.clone().unwrap_or_else(|| DEFAULT_URL.to_owned())
    }

    /// The stream parameters, defaults filled in.
    pub fn params(&self, word_timestamps: bool) -> StreamParams {
        let defaults = StreamParams::default();
        StreamParams {
            language: self.language.unwrap_or(defaults.language),
            encoding: self.encoding.unwrap_or(defaults.encoding),
            sample_rate: self.sample_rate.unwrap_or(defaults.sample_rate),
            word_timestamps,
        }
    }
}

/// The window's flags (no subcommand): each overrides a saved setting for this run.
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Input device for this run.
    #[arg(long)]
    pub device: Option<String>,
    /// Theme for this run.
    #[arg(long, value_parser = theme_parser())]
    pub theme: Option<Theme>,
    /// Recognise on this computer for this run.
    #[arg(long)]
    pub offline: bool,
    /// The offline model: an installed model's name (tiny.en, base: `lightning-dictate model list`)
    /// or a faster-whisper model folder (default: tiny.en for English, base for other languages).
    #[arg(long, value_name = "NAME|DIR", value_parser = model_arg)]
    pub model: Option<PathBuf>,
    /// Start with no window shown: dictate with the shortcut or `lightning-dictate toggle`.
    #[arg(long)]
    pub background: bool,
    /// The global shortcut for this run, e.g. ctrl+alt+space (the default) or super+d.
    #[arg(long, value_name = "KEYS")]
    pub shortcut: Option<String>,
    /// What the shortcut does for this run: toggle (press to start, press to stop) or hold
    /// (dictate while held; a short tap still toggles).
    #[arg(long, value_name = "MODE", value_parser = shortcut_mode_parser())]
    pub shortcut_mode: Option<ShortcutMode>,
    /// Where a dictation by the shortcut puts its text, for this run: type (into the focused
    /// app), paste (through the clipboard) or window (this window only).
    #[arg(long, value_name = "HOW", value_parser = insert_parser())]
    pub insert: Option<InsertInto>,
}

impl WindowArgs {
    /// What these flags change in the saved settings.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            url: self.stream.url.clone(),
            language: self.stream.language,
            device: self.device.clone(),
            encoding: self.stream.encoding,
            sample_rate: self.stream.sample_rate,
            theme: self.theme,
            offline: self.offline,
            model: self.model.clone(),
            background: self.background,
            shortcut: self.shortcut.clone(),
            shortcut_mode: self.shortcut_mode,
            insert: self.insert,
        }
    }
}

/// `--model NAME|DIR`: an installed model's name becomes its folder; anything else is a folder.
pub fn model_arg(value: &str) -> Result<PathBuf, String> {
    if value.trim().is_empty() {
        return Err("give a model name (`lightning-dictate model list`) or a folder".to_owned());
    }
    Ok(lightning_dictate::models::resolve(value))
}
