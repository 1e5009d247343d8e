//! The dictation window: one big Start/Stop button (or Ctrl+Space), the live transcript (finals in
//! the strong text colour, the open interim in the weak one), Copy (Ctrl+Shift+C), Clear, Export,
//! the language picker, a status line, the history and a settings panel.
//!
//! [`DictationApp`] owns the state and applies what arrives in its inbox (the dictation's events,
//! the I/O thread's results) in `eframe::App::logic`, which eframe runs whether or not the window
//! is visible: a minimised window keeps its transcript and history current. Each panel lives in
//! its own file and returns what it wants done; the app does it.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use egui::{Key, Modifiers, RichText};

pub use super::transcript_view::{interim_layout, segment_layout, transcript_layout, word_at};

use super::api_key_field::ApiKeyField;
use super::backend::{Backend, StartRequest};
use super::history_view::{HistoryAction, HistoryPanel};
pub(super) use super::inbox::{Inbox, waking};
use super::io::{self, Job, KeyringAccess};
use super::lifecycle::{Failure, Lifecycle};
use super::models_view::ModelsPanel;
use super::outside::Outside;
use super::overlay::Overlay;
use super::settings::{EngineChoice, Service, Settings, Theme};
use super::settings_view::{SettingsPanel, language_ui};
use super::status_line::{StatusAction, StatusLine};
use crate::desktop::tray::Tray;

use crate::history::History;
use crate::protocol::ApiKey;
use crate::transcript::Transcript;

/// How long "Copied" stays in the status line.
const NOTICE_SECS: f64 = 2.0;

pub struct DictationApp {
    pub settings: Settings,
    pub transcript: Transcript,
    pub lifecycle: Lifecycle,
    pub show_settings: bool,
    pub show_history: bool,
    /// The service answered that it moved (404/410 at the document's address): its new URL,
    /// offered as a button.
    pub moved_to: Option<String>,
    pub(super) key: ApiKeyField,
    pub(super) history: HistoryPanel,
    settings_panel: SettingsPanel,
    /// The offline models (Settings → Offline model, and the download offer).
    pub models: ModelsPanel,
    pub(super) status: StatusLine,
    pub(super) level_dbfs: f32,
    pub(super) backend: Box<dyn Backend>,
    pub(super) inbox_tx: Sender<Inbox>,
    pub(super) inbox: Receiver<Inbox>,
    /// Disk and keyring jobs, done on the I/O thread.
    io: Sender<Job>,
    /// Set on the first pass: what wakes the window when something arrives.
    pub(super) ctx: Arc<OnceLock<egui::Context>>,
    /// Dictation started from outside the window, typed into the focused app.
    pub outside: Outside,
    /// Things that must live as long as the window (the control socket).
    kept: Vec<Box<dyn std::any::Any>>,
    /// When the running dictation started (egui time), for the elapsed time shown.
    started_at: Option<f64>,
    /// The tray icon, when a tray host could be reached: closing the window then hides it.
    pub(super) tray: Option<Tray>,
    /// Quit was chosen in the tray: let the window close.
    pub(super) quitting: bool,
    /// What the tray icon shows.
    pub(super) tray_listening: bool,
    /// The overlay, while a dictation started from outside runs.
    pub(super) overlay: Option<Overlay>,
    /// The finals of that dictation, for the overlay.
    pub(super) overlay_text: String,
    /// The overlay's feed, shared with the dictation's event sender: while the window is hidden,
    /// levels and interims go straight to the overlay without a pass of the window.
    pub(super) overlay_feed: Arc<std::sync::Mutex<Option<super::overlay::OverlayFeed>>>,
    /// Keep the window hidden through start-up (`--background`): eframe shows a new window after
    /// its first frame whatever the viewport said, at a moment the app does not see.
    pub start_hidden: bool,
    /// When the first pass with `start_hidden` ran (egui time).
    pub(super) start_hidden_since: Option<f64>,
    /// The app hid the window (`--background`, or closed to the tray) and has not shown it
    /// since. On X11 egui cannot tell a hidden window from a shown one (no minimised or occluded
    /// state), so eframe keeps painting it; the app knows, and draws nothing then. Shared with
    /// the dictation's event sender, which wakes a hidden window less often.
    pub(super) hidden: Arc<AtomicBool>,
}

impl DictationApp {
    /// A window with `settings`, driving `backend`; the key comes from the environment if set.
    pub fn new(settings: Settings, backend: Box<dyn Backend>, api_key: Option<ApiKey>) -> Self {
        let (inbox_tx, inbox) = crossbeam_channel::unbounded();
        let ctx = Arc::new(OnceLock::new());
        let io = io::spawn(waking(&inbox_tx, &ctx).map(Inbox::Io));
        DictationApp {
            settings,
            transcript: Transcript::default(),
            lifecycle: Lifecycle::Idle,
            show_settings: false,
            show_history: false,
            moved_to: None,
            key: ApiKeyField::new(api_key),
            history: HistoryPanel::default(),
            settings_panel: SettingsPanel::default(),
            models: ModelsPanel::default(),
            status: StatusLine::default(),
            level_dbfs: -120.0,
            backend,
            inbox_tx,
            inbox,
            io,
            ctx,
            outside: Outside::default(),
            kept: Vec::new(),
            start_hidden: false,
            start_hidden_since: None,
            hidden: Arc::new(AtomicBool::new(false)),
            tray: None,
            quitting: false,
            tray_listening: false,
            overlay: None,
            overlay_text: String::new(),
            overlay_feed: Arc::default(),
            started_at: None,
        }
    }

    /// Keeps `thing` alive as long as the window.
    pub fn keep_alive(&mut self, thing: Box<dyn std::any::Any>) {
        self.kept.push(thing);
    }

    /// Keeps typed keys in the OS keyring through `access`, and takes the stored key (read on the
    /// I/O thread) when none came from the environment or the command line.
    pub fn with_keyring(mut self, access: KeyringAccess) -> Self {
        let job = self.key.use_keyring(access);
        self.queue(job);
        self
    }

    /// Offline models from `store` (tests: a folder and registry of their own).
    pub fn with_model_store(mut self, store: crate::models::Store) -> Self {
        self.models = ModelsPanel::new(Ok(store));
        self
    }

    /// Autosaves every transcript into `history`.
    pub fn with_history(mut self, history: History) -> Self {
        self.history = HistoryPanel::new(history);
        self
    }

    /// Whether a dictation runs (between Start and its end).
    pub fn is_dictating(&self) -> bool {
        self.lifecycle.is_dictating()
    }

    pub(super) fn queue(&self, job: Job) {
        // The I/O thread lives as long as the window.
        let _ = self.io.send(job);
    }

    /// Waits until every disk and keyring job queued so far is done, and applies the results
    /// (tests and benchmarks check the disk after this).
    pub fn wait_for_io(&mut self) {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        self.queue(Job::Barrier(done_tx));
        let _ = done_rx.recv();
        self.apply_pending();
    }

    /// A new transcript; the old one stays in the history.
    pub fn clear(&mut self) {
        self.transcript = Transcript::default();
        self.history.start_new();
    }

    /// Writes the current transcript next to the history, as `ext` (txt, srt, vtt, json), here
    /// and now (the Export menu does it on the I/O thread).
    pub fn export(&mut self, ext: &str) -> Result<std::path::PathBuf, String> {
        let (path, body) = self.history.export_file(&self.transcript, ext)?;
        super::io::write_export(&path, &body)?;
        Ok(path)
    }

    /// Gets the offline recogniser ready in the background when the next dictation will use it.
    pub fn prewarm(&mut self) {
        if self.offline() {
            self.backend.prewarm_offline(self.settings.language);
        }
    }

    /// True when the next dictation runs on this computer (see [`Settings::offline`]).
    pub fn offline(&self) -> bool {
        self.settings.offline(self.key.key.is_some())
    }

    /// What the status line says when nothing runs: where speech will be recognised.
    pub fn ready_text(&self) -> String {
        match (self.offline(), self.settings.engine) {
            (true, EngineChoice::OnThisComputer) => "Ready · on this computer".to_owned(),
            (true, EngineChoice::Lightning) => {
                "Ready · on this computer (no API key: add one in Settings to use Lightning)"
                    .to_owned()
            }
            (false, _) => match Service::of_url(&self.settings.url) {
                Service::Custom | Service::Lightning => "Ready · Lightning".to_owned(),
                service => format!("Ready · {}", service.label()),
            },
        }
    }

    /// Start ↔ Stop, from the window: the text stays in the window.
    pub fn toggle(&mut self) {
        if !self.is_dictating() {
            self.outside.begin_in_window();
        }
        self.toggle_dictation();
    }

    pub(super) fn toggle_dictation(&mut self) {
        if self.is_dictating() {
            if self.lifecycle != Lifecycle::Stopping {
                self.lifecycle = Lifecycle::Stopping;
                self.backend.stop();
            }
            return;
        }
        let request = StartRequest {
            settings: self.settings.clone(),
            api_key: self.key.key.clone(),
            offline: self.offline(),
        };
        self.started_at = self.ctx.get().map(|ctx| ctx.input(|i| i.time));
        self.lifecycle = match self.backend.start(request, self.event_sender()) {
            Ok(()) => Lifecycle::Connecting,
            Err(e) => self.failed(Failure::start(&e)),
        };
        self.sync_tray();
    }

    /// A failure to show; a refused key opens Settings with the key field focused.
    pub(super) fn failed(&mut self, failure: Failure) -> Lifecycle {
        if failure.wants_key() {
            self.show_settings = true;
            self.key.request_focus();
        }
        Lifecycle::Failed(failure)
    }

    /// The whole transcript on the clipboard.
    pub fn copy(&mut self, ctx: &egui::Context) {
        let text = self.transcript.final_text();
        let words = text.split_whitespace().count();
        ctx.copy_text(text);
        let now = ctx.input(|i| i.time);
        self.status
            .notify(format!("Copied {words} words"), now, NOTICE_SECS);
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            let label = if self.is_dictating() {
                "Stop dictation"
            } else {
                "Start dictation"
            };
            let button = egui::Button::new(RichText::new(label).size(20.0))
                .min_size(egui::vec2(200.0, 44.0));
            if ui
                .add_enabled(self.lifecycle != Lifecycle::Stopping, button)
                .on_hover_text("Ctrl+Space")
                .clicked()
            {
                self.toggle();
            }
            if ui.button("Copy").on_hover_text("Ctrl+Shift+C").clicked() {
                self.copy(ui.ctx());
            }
            if ui.button("Clear").clicked() {
                self.clear();
            }
            ui.menu_button("Export", |ui| {
                for ext in ["txt", "srt", "vtt", "json"] {
                    if ui.button(ext.to_uppercase()).clicked() {
                        self.export_in_background(ui.ctx(), ext);
                        ui.close();
                    }
                }
            });
            ui.toggle_value(&mut self.show_history, "History");
            // Offline, every language streams; online, the chosen endpoint decides.
            let url = (!self.offline()).then(|| self.settings.url.clone());
            language_ui(ui, &mut self.settings.language, |language| {
                url.as_deref()
                    .and_then(|url| super::settings::language_refusal(url, language))
            });
            ui.toggle_value(&mut self.show_settings, "Settings");
        });
    }

    /// Queues an export on the I/O thread; the status line says where it went.
    fn export_in_background(&mut self, ctx: &egui::Context, ext: &str) {
        match self.history.export_file(&self.transcript, ext) {
            Ok((path, body)) => self.queue(Job::Export(path, body)),
            Err(e) => {
                let now = ctx.input(|i| i.time);
                self.status.notify(format!("Export failed: {e}"), now, 6.0);
            }
        }
    }
}

impl eframe::App for DictationApp {
    /// eframe runs this every pass, and also while the window is minimised or hidden (when it
    /// runs no `ui` at all): the dictation's events are applied here, so the transcript and the
    /// history stay current with no window on screen.
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.first_pass(ctx);
        if let Some(overlay) = &self.overlay {
            overlay.show(ctx);
        }
        self.keep_hidden(ctx);
        self.apply_pending();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        // eframe runs a full pass of a hidden window while one of its viewports (the overlay) is
        // shown: laying out a window nobody sees cost a dictation in the background several
        // percent of a core. Nothing is drawn then; `logic` already applied the events.
        if self.is_hidden() || ui.ctx().input(|i| i.viewport().visible()) == Some(false) {
            return;
        }
        self.window_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, Settings::KEY, &self.settings);
    }
}

impl DictationApp {
    /// Once, on the first pass (from `logic` or `window_ui`, whichever runs first).
    fn first_pass(&mut self, ctx: &egui::Context) {
        if self.ctx.set(ctx.clone()).is_ok() {
            // "System" follows the desktop's dark preference when it is known (winit knows it
            // on Wayland, not on X11); else light, as the design asks: black finals on white.
            ctx.options_mut(|o| o.fallback_theme = egui::Theme::Light);
        }
    }

    /// One frame of the whole window (what `eframe::App::ui` runs; benchmarks run it directly).
    pub fn window_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.first_pass(&ctx);
        // Events first (eframe applied them in `logic` already; tests and benches call this
        // alone): the frame shows the newest state. No event, no repaint: an idle window does no
        // work.
        self.apply_pending();
        self.models.poll();
        ctx.set_theme(match self.settings.theme {
            Theme::System => egui::ThemePreference::System,
            Theme::Light => egui::ThemePreference::Light,
            Theme::Dark => egui::ThemePreference::Dark,
        });
        // Recording a new shortcut takes the keys first.
        let recording = self.outside.recording;
        self.record_shortcut(&ctx);
        if recording {
            ctx.input_mut(|i| i.events.retain(|e| !matches!(e, egui::Event::Key { .. })));
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::CTRL, Key::Space)) {
            self.toggle();
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::CTRL | Modifiers::SHIFT, Key::C)) {
            self.copy(&ctx);
        }
        egui::Panel::top("controls").show(ui, |ui| {
            ui.add_space(6.0);
            self.controls_ui(ui);
            ui.add_space(4.0);
            let ready = self.ready_text();
            let offline = self.offline();
            let live = self
                .started_at
                .filter(|_| self.is_dictating())
                .map(|started| (self.level_dbfs, (ui.input(|i| i.time) - started).max(0.0)));
            let action = self.status.ui(
                ui,
                &self.lifecycle,
                &ready,
                offline,
                self.moved_to.as_deref(),
                live,
            );
            if let Some(StatusAction::SwitchTo(url)) = action {
                self.settings.url = url;
                self.moved_to = None;
                self.lifecycle = Lifecycle::Idle;
            }
            self.models
                .offer_ui(ui, self.settings.language, offline, self.show_settings);
            ui.add_space(4.0);
        });
        if self.show_history {
            let dictating = self.is_dictating();
            let action = egui::Panel::right("history_panel")
                .default_size(280.0)
                .show(ui, |ui| self.history.ui(ui, dictating))
                .inner;
            match action {
                Some(HistoryAction::Open(entry)) => self.transcript = entry.transcript,
                Some(HistoryAction::Io(job)) => self.queue(job),
                None => {}
            }
        }
        if self.show_settings {
            self.models.dictating = self.is_dictating();
            let job = egui::Panel::bottom("settings_panel")
                .show(ui, |ui| {
                    ui.add_space(4.0);
                    let job = self.settings_panel.ui(
                        ui,
                        &mut self.settings,
                        self.level_dbfs,
                        &mut self.key,
                        &mut self.outside,
                        &mut self.models,
                    );
                    ui.add_space(4.0);
                    job
                })
                .inner;
            if let Some(job) = job {
                self.queue(job);
            }
        }
        let badges = self.settings.language.is_multi();
        let hint = (self.transcript.segments.is_empty() && self.transcript.interim.is_empty())
            .then(|| self.empty_hint());
        egui::CentralPanel::default().show(ui, |ui| match hint {
            Some(hint) => {
                ui.add_space(24.0);
                ui.vertical_centered(|ui| ui.label(RichText::new(hint).size(16.0).weak()));
            }
            None => super::transcript_view::transcript_ui(ui, &self.transcript, badges),
        });
    }
}
