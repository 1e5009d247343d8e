//! The desktop window (eframe/egui).

pub mod api_key_field;
pub mod app;
pub mod backend;
mod companions;
pub mod history_view;
mod inbox;
pub mod io;
pub mod lifecycle;
pub mod models_view;
pub mod outside;
pub mod overlay;
pub mod settings;
pub mod settings_view;
pub mod status_line;
pub mod transcript_view;
mod visibility;

pub use app::DictationApp;
pub use backend::{Backend, LiveBackend, StartRequest};
pub use io::KeyringAccess;
pub use lifecycle::{Failure, Lifecycle};
pub use settings::{Settings, Theme};

use eframe::egui;

use crate::protocol::{ApiKey, Encoding, Language, SampleRate};

/// Startup flags that override the persisted settings for this run.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub url: Option<String>,
    pub language: Option<Language>,
    pub device: Option<String>,
    pub encoding: Option<Encoding>,
    pub sample_rate: Option<SampleRate>,
    pub theme: Option<Theme>,
    /// Recognise on this computer.
    pub offline: bool,
    /// The offline model folder.
    pub model: Option<std::path::PathBuf>,
    /// Start with no window shown (the shortcut and `lightning-dictate toggle` still work).
    pub background: bool,
    /// The global shortcut for this run (default: ctrl+alt+space).
    pub shortcut: Option<String>,
    /// What the shortcut does, for this run.
    pub shortcut_mode: Option<settings::ShortcutMode>,
    /// Where a dictation by the shortcut puts its text, for this run.
    pub insert: Option<settings::InsertInto>,
}

impl Overrides {
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(url) = &self.url {
            settings.url.clone_from(url);
        }
        if let Some(language) = self.language {
            settings.language = language;
        }
        if let Some(device) = &self.device {
            settings.device = Some(device.clone());
        }
        if let Some(encoding) = self.encoding {
            settings.encoding = encoding;
        }
        if let Some(rate) = self.sample_rate {
            settings.sample_rate = rate;
        }
        if let Some(theme) = self.theme {
            settings.theme = theme;
        }
        if self.offline {
            settings.engine = settings::EngineChoice::OnThisComputer;
        }
        if let Some(mode) = self.shortcut_mode {
            settings.shortcut_mode = mode;
        }
        if let Some(insert) = self.insert {
            settings.insert_into = insert;
        }
        if let Some(keys) = &self.shortcut {
            settings.shortcut = Some(keys.clone());
        }
    }
}

/// How a launch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// The window ran until it was closed.
    Closed,
    /// Another instance runs: it was asked to show its window, and this one did nothing.
    ShownRunning,
}

/// Why the window could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// eframe could not open the window (no display, no GL).
    #[error("cannot open the window: {0}")]
    Open(String),
}

/// Opens the window (or, with another instance running, shows that one's) and runs until it is
/// closed.
pub fn run_window(overrides: Overrides, api_key: Option<ApiKey>) -> Result<Launch, WindowError> {
    let control_path = crate::control::socket_path()
        .map_err(|e| tracing::warn!("no control socket: {e}"))
        .ok();
    if let Some(path) = &control_path
        && crate::control::send(path, crate::control::Command::Show).is_ok()
    {
        return Ok(Launch::ShownRunning);
    }
    let icon = eframe::icon_data::from_png_bytes(include_bytes!("../../assets/icon.png")).ok();
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("Lightning Dictate")
        // On Wayland the app id names the .desktop file (the launcher's icon, the portals'
        // permissions); on X11 it is the window class the entry's StartupWMClass names.
        .with_app_id(if crate::desktop::on_wayland() {
            crate::desktop::portal::APP_ID
        } else {
            "lightning-dictate"
        })
        .with_inner_size([820.0, 520.0])
        .with_min_inner_size([480.0, 300.0])
        .with_visible(!overrides.background);
    if let Some(icon) = icon {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "lightning-dictate",
        options,
        Box::new(move |cc| {
            let mut settings: Settings = cc
                .storage
                .and_then(|s| eframe::get_value(s, Settings::KEY))
                .unwrap_or_default();
            overrides.apply(&mut settings);
            let backend = LiveBackend::new(overrides.model.clone());
            let mut app = DictationApp::new(settings, Box::new(backend), api_key)
                .with_keyring(KeyringAccess::system());
            app.start_hidden = overrides.background;
            app.set_hidden(overrides.background && !crate::desktop::on_wayland());
            // A model named with --model serves every language: nothing to offer.
            app.models.named_model = overrides.model.is_some();
            app.with_tray();
            app.outside.start_at_login = crate::desktop::entry::starts_at_login();
            // Load the offline model now if it will be used, so the first dictation is quick
            // (and what is said before it is ready waits in the queue anyway).
            app.prewarm();
            match crate::history::History::default_dir()
                .map(|dir| crate::history::History::open(&dir))
            {
                Some(Ok(history)) => app = app.with_history(history),
                Some(Err(e)) => tracing::error!("no history: {e}"),
                None => tracing::error!("no data directory: transcripts are not saved"),
            }
            if let Some(path) = &control_path {
                match crate::control::ControlServer::start(path, app.control_sink()) {
                    Ok(server) => app.keep_alive(Box::new(server)),
                    Err(e) => tracing::warn!("no control socket: {e}"),
                }
            }
            app.grab_shortcut();
            if crate::desktop::on_wayland() {
                app.outside.prepare(app.settings.insert_into);
            }
            Ok(Box::new(app))
        }),
    )
    .map(|()| Launch::Closed)
    .map_err(|e| WindowError::Open(e.to_string()))
}
