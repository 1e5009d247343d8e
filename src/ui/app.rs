//! The dictation window: one big Start/Stop button (or Ctrl+Space), the live transcript (finals in
//! the strong text colour, the open interim in the weak one), Copy (Ctrl+Shift+C), Clear, the
//! language picker, a status line, and a settings panel.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use egui::text::LayoutJob;
use egui::{Color32, FontId, Key, Modifiers, RichText, TextFormat};

use super::backend::{Backend, StartRequest, UiEvent};
use super::settings::{Settings, Theme};
use crate::audio::capture::CaptureEvent;
use crate::history::{History, SavedTranscript};
use crate::protocol::{ApiKey, Encoding, Language, SampleRate};
use crate::session::SessionEvent;
use crate::transcript::Transcript;

/// What the status line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Ready,
    Connecting,
    Listening,
    Finishing,
    Reconnecting {
        attempt: u32,
        kept_secs: f64,
    },
    /// The service stayed away: recognising on this computer.
    Offline,
    Error(String),
}

impl Status {
    pub fn text(&self) -> String {
        match self {
            Status::Ready => "Ready".to_owned(),
            Status::Connecting => "Connecting…".to_owned(),
            Status::Listening => "Listening".to_owned(),
            Status::Finishing => "Finishing…".to_owned(),
            Status::Reconnecting { attempt, kept_secs } => {
                format!("Reconnecting… attempt {attempt}, {kept_secs:.0} s kept")
            }
            Status::Offline => "The service is unreachable: listening on this computer".to_owned(),
            Status::Error(message) => message.clone(),
        }
    }
}

type LoadKey = Box<dyn Fn() -> Result<Option<ApiKey>, String>>;
type SaveKey = Box<dyn Fn(&ApiKey) -> Result<(), String>>;
type DeleteKey = Box<dyn Fn() -> Result<(), String>>;

/// How the window reaches the keyring (functions, so tests can stand in for the OS one).
pub struct KeyringAccess {
    pub load: LoadKey,
    pub save: SaveKey,
    pub delete: DeleteKey,
}

impl KeyringAccess {
    /// The OS keyring (Secret Service on Linux).
    pub fn system() -> Self {
        KeyringAccess {
            load: Box::new(|| {
                crate::keystore::load()
                    .map_err(|e| format!("{e}; a key typed here is kept for this session only"))
            }),
            save: Box::new(|key| {
                crate::keystore::save(key)
                    .map_err(|e| format!("{e}; the key is kept for this session only"))
            }),
            delete: Box::new(|| crate::keystore::delete().map_err(|e| e.to_string())),
        }
    }
}

/// How long "Copied" stays in the status line.
const NOTICE_SECS: f64 = 2.0;

pub struct DictationApp {
    pub settings: Settings,
    pub transcript: Transcript,
    pub status: Status,
    /// A dictation is running (between Start and the session's end).
    pub dictating: bool,
    /// Stop was pressed; waiting for the last finals.
    pub stopping: bool,
    pub show_settings: bool,
    pub show_history: bool,
    /// Where transcripts are autosaved; `None` when no data directory could be opened.
    history: Option<History>,
    /// The current transcript's identity in the history.
    current: SavedTranscript,
    /// The history as last read from disk; `None` until the panel needs it or after a change.
    history_entries: Option<Vec<SavedTranscript>>,
    /// Input devices as last listed (probing ALSA takes tens of milliseconds: not every frame).
    devices: Option<Vec<String>>,
    /// The key typed in the settings (kept for this run only) or from SMALLEST_API_KEY.
    api_key: Option<ApiKey>,
    key_from_env: bool,
    key_input: String,
    /// The key field changed since it was last stored.
    key_dirty: bool,
    /// Where typed keys are kept: the OS keyring, when the window uses one (tests do not).
    keyring: Option<KeyringAccess>,
    /// What happened to the key last (saved, or why it is kept for this run only).
    key_note: Option<String>,
    /// The keyring did not answer at start (or at the last save).
    keyring_down: bool,
    notice: Option<(String, f64)>,
    /// The service answered that it moved (404/410 at the document's address): its new URL,
    /// offered as a button.
    pub moved_to: Option<String>,
    level_dbfs: f32,
    backend: Box<dyn Backend>,
    events_tx: Sender<UiEvent>,
    events_rx: Receiver<UiEvent>,
}

impl DictationApp {
    /// A window with `settings`, driving `backend`; the key comes from the environment if set.
    pub fn new(settings: Settings, backend: Box<dyn Backend>, api_key: Option<ApiKey>) -> Self {
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        DictationApp {
            settings,
            transcript: Transcript::default(),
            status: Status::Ready,
            dictating: false,
            stopping: false,
            show_settings: false,
            show_history: false,
            history: None,
            current: SavedTranscript::start_now(),
            history_entries: None,
            devices: None,
            key_from_env: api_key.is_some(),
            api_key,
            key_input: String::new(),
            key_dirty: false,
            keyring: None,
            key_note: None,
            keyring_down: false,
            notice: None,
            moved_to: None,
            level_dbfs: -120.0,
            backend,
            events_tx,
            events_rx,
        }
    }

    /// Keeps typed keys in the OS keyring through `access`, and takes the stored key when none
    /// came from the environment or the command line.
    pub fn with_keyring(mut self, access: KeyringAccess) -> Self {
        if self.api_key.is_none() {
            match (access.load)() {
                Ok(Some(key)) => {
                    self.api_key = Some(key);
                    self.key_note = Some("Using the key stored in the system keyring.".into());
                }
                Ok(None) => {}
                Err(e) => {
                    self.key_note = Some(e);
                    self.keyring_down = true;
                }
            }
        }
        self.keyring = Some(access);
        self
    }

    /// Stores (or, with no key, forgets) the typed key in the keyring.
    fn store_key(&mut self) {
        let Some(access) = &self.keyring else {
            self.key_note = Some("Kept for this run only.".into());
            return;
        };
        let result = match &self.api_key {
            Some(key) => (access.save)(key).map(|()| "Saved in the system keyring."),
            None => (access.delete)().map(|()| "Removed from the system keyring."),
        };
        self.keyring_down = result.is_err();
        self.key_note = Some(match result {
            Ok(done) => done.to_owned(),
            Err(e) => e,
        });
    }

    /// Autosaves every transcript into `history`.
    pub fn with_history(mut self, history: History) -> Self {
        self.history = Some(history);
        self
    }

    /// Saves the current transcript (after each final): a crash loses at most the open interim.
    fn autosave(&mut self) {
        let Some(history) = &self.history else {
            return;
        };
        if self.transcript.segments.is_empty() {
            return;
        }
        self.current
            .transcript
            .segments
            .clone_from(&self.transcript.segments);
        if let Err(e) = history.save(&self.current) {
            tracing::error!("autosave failed: {e}");
            self.notice = Some((
                format!(
                    "Could not save the transcript to {}: {e}",
                    history.dir().display()
                ),
                f64::INFINITY,
            ));
        }
    }

    /// A new transcript; the old one stays in the history.
    pub fn clear(&mut self) {
        self.transcript = Transcript::default();
        self.current = SavedTranscript::start_now();
    }

    /// Writes the current transcript next to the history, as `ext` (txt, srt, vtt, json).
    pub fn export(&mut self, ext: &str) -> Result<std::path::PathBuf, String> {
        let dir = self
            .history
            .as_ref()
            .and_then(|h| h.dir().parent().map(|p| p.join("exports")))
            .ok_or_else(|| "no data directory to export into".to_owned())?;
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let body = match ext {
            "srt" => self.transcript.to_srt(),
            "vtt" => self.transcript.to_vtt(),
            "json" => self.transcript.to_json(),
            _ => self.transcript.final_text() + "\n",
        };
        let path = dir.join(format!("transcript-{}.{ext}", self.current.id));
        std::fs::write(&path, body).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Gets the offline recogniser ready in the background when the next dictation will use it.
    pub fn prewarm(&mut self) {
        if self.offline() {
            self.backend.prewarm_offline();
        }
    }

    /// True when the next dictation runs on this computer (see [`Settings::offline`]).
    pub fn offline(&self) -> bool {
        self.settings.offline(self.api_key.is_some())
    }

    /// What the status line says when nothing runs: where speech will be recognised.
    pub fn ready_text(&self) -> String {
        use super::settings::EngineChoice;
        match (self.offline(), self.settings.engine) {
            (true, EngineChoice::OnThisComputer) => "Ready · on this computer".to_owned(),
            (true, EngineChoice::Lightning) => {
                "Ready · on this computer (no API key: add one in Settings to use Lightning)"
                    .to_owned()
            }
            (false, _) => match super::settings::Service::of_url(&self.settings.url) {
                super::settings::Service::Custom | super::settings::Service::Lightning => {
                    "Ready · Lightning".to_owned()
                }
                service => format!("Ready · {}", service.label()),
            },
        }
    }

    /// A sender for events, as the backend would send them (tests feed the window with it).
    pub fn event_sender(&self) -> Sender<UiEvent> {
        self.events_tx.clone()
    }

    /// Start ↔ Stop.
    pub fn toggle(&mut self, ctx: &egui::Context) {
        if self.dictating {
            if !self.stopping {
                self.stopping = true;
                self.status = Status::Finishing;
                self.backend.stop();
            }
            return;
        }
        let request = StartRequest {
            settings: self.settings.clone(),
            api_key: self.api_key.clone(),
            offline: self.offline(),
        };
        let repaint_ctx = ctx.clone();
        match self.backend.start(
            request,
            self.events_tx.clone(),
            Box::new(move || repaint_ctx.request_repaint()),
        ) {
            Ok(()) => {
                self.dictating = true;
                self.stopping = false;
                self.status = Status::Connecting;
            }
            Err(message) => self.status = Status::Error(message),
        }
    }

    /// The whole transcript on the clipboard.
    pub fn copy(&mut self, ctx: &egui::Context) {
        let text = self.transcript.final_text();
        let words = text.split_whitespace().count();
        ctx.copy_text(text);
        let now = ctx.input(|i| i.time);
        self.notice = Some((format!("Copied {words} words"), now + NOTICE_SECS));
    }

    fn apply(&mut self, event: UiEvent) {
        match event {
            UiEvent::Session(event) => {
                self.transcript.apply(&event);
                if matches!(event, SessionEvent::Final(_) | SessionEvent::Gap { .. }) {
                    self.autosave();
                }
                match event {
                    SessionEvent::Connected
                        if !self.stopping && self.status != Status::Listening =>
                    {
                        self.status = Status::Connecting;
                    }
                    SessionEvent::Reconnecting {
                        attempt, kept_secs, ..
                    } => self.status = Status::Reconnecting { attempt, kept_secs },
                    SessionEvent::WentOffline { .. } => self.status = Status::Offline,
                    SessionEvent::ServiceMoved { suggested_url } => {
                        self.moved_to = Some(suggested_url);
                    }
                    SessionEvent::Reconnected { .. }
                        if !self.stopping && self.status != Status::Offline =>
                    {
                        self.status = Status::Listening
                    }
                    SessionEvent::Finishing => self.status = Status::Finishing,
                    SessionEvent::Interim { .. } | SessionEvent::Final(_)
                        if !self.stopping && matches!(self.status, Status::Connecting) =>
                    {
                        self.status = Status::Listening
                    }
                    SessionEvent::Ended(outcome) => {
                        self.dictating = false;
                        self.stopping = false;
                        self.backend.stop();
                        self.status = match outcome {
                            Ok(_) => Status::Ready,
                            Err(_) if self.moved_to.is_some() => Status::Error(
                                "Smallest AI no longer serves this address: switch to Pulse live, or pick another service in Settings"
                                    .to_owned(),
                            ),
                            Err(message) => Status::Error(message),
                        };
                    }
                    _ => {}
                }
            }
            UiEvent::Capture(event) => match event {
                CaptureEvent::Listening if !self.stopping => self.status = Status::Listening,
                CaptureEvent::Level { peak_dbfs, .. } => self.level_dbfs = peak_dbfs,
                CaptureEvent::Silent { .. } => {
                    self.notice = Some((
                        "Only silence so far: is the microphone muted, or the wrong one?"
                            .to_owned(),
                        f64::INFINITY,
                    ))
                }
                CaptureEvent::SoundBack => self.notice = None,
                CaptureEvent::DeviceLost { device, detail } => {
                    self.notice = Some((
                        format!(
                            "The microphone {device} failed ({detail}): reconnect it or pick another in Settings"
                        ),
                        f64::INFINITY,
                    ));
                }
                _ => {}
            },
        }
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = if self.dictating {
                "Stop dictation"
            } else {
                "Start dictation"
            };
            let button = egui::Button::new(RichText::new(label).size(20.0))
                .min_size(egui::vec2(200.0, 44.0));
            if ui
                .add_enabled(!self.stopping, button)
                .on_hover_text("Ctrl+Space")
                .clicked()
            {
                self.toggle(ui.ctx());
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
                        let now = ui.input(|i| i.time);
                        self.notice = Some(match self.export(ext) {
                            Ok(path) => (format!("Saved to {}", path.display()), now + 6.0),
                            Err(e) => (format!("Export failed: {e}"), now + 6.0),
                        });
                        ui.close();
                    }
                }
            });
            ui.toggle_value(&mut self.show_history, "History");
            // Offline, every language streams; online, the chosen endpoint decides.
            let url = (!self.offline()).then(|| self.settings.url.clone());
            language_picker(ui, &mut self.settings.language, |language| {
                url.as_deref()
                    .and_then(|url| super::settings::language_refusal(url, language))
            });
            ui.toggle_value(&mut self.show_settings, "Settings");
        });
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        let now = ui.input(|i| i.time);
        if self.notice.as_ref().is_some_and(|(_, until)| now > *until) {
            self.notice = None;
        }
        ui.horizontal(|ui| {
            let status = match &self.status {
                Status::Ready => self.ready_text(),
                Status::Listening if self.offline() => "Listening · on this computer".to_owned(),
                other => other.text(),
            };
            let colour = match self.status {
                Status::Error(_) => ui.visuals().error_fg_color,
                Status::Listening => Color32::from_rgb(0, 140, 60),
                _ => ui.visuals().text_color(),
            };
            ui.label(RichText::new(status).color(colour));
            if let Some(url) = self.moved_to.clone()
                && ui
                    .button("Switch to Pulse live")
                    .on_hover_text(format!("Use {url}"))
                    .clicked()
            {
                self.settings.url = url;
                self.moved_to = None;
                self.status = Status::Ready;
            }
            if let Some((notice, until)) = &self.notice {
                ui.label(RichText::new(notice).italics());
                if until.is_finite() {
                    ui.ctx()
                        .request_repaint_after(Duration::from_secs_f64((until - now).max(0.0)));
                }
            }
        });
    }

    fn settings_ui(&mut self, ui: &mut egui::Ui) {
        egui::Grid::new("settings").num_columns(2).show(ui, |ui| {
            let mic_label = ui.label("Microphone");
            let current = self
                .settings
                .device
                .clone()
                .unwrap_or_else(|| "System default".to_owned());
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("device")
                    .selected_text(current)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.settings.device, None, "System default");
                        let devices = self.devices.get_or_insert_with(|| {
                            crate::audio::devices::list_input_devices()
                                .0
                                .iter()
                                .map(|d| d.full_name())
                                .collect()
                        });
                        for name in devices.iter() {
                            ui.selectable_value(
                                &mut self.settings.device,
                                Some(name.clone()),
                                name,
                            );
                        }
                    })
                    .response
                    .labelled_by(mic_label.id);
                if ui
                    .small_button("Refresh")
                    .on_hover_text("List the devices again")
                    .clicked()
                {
                    self.devices = None;
                }
                level_meter(ui, self.level_dbfs);
            });
            ui.end_row();

            let encoding_label = ui.label("Encoding");
            let before = self.settings.encoding;
            egui::ComboBox::from_id_salt("encoding")
                .selected_text(self.settings.encoding.as_str())
                .show_ui(ui, |ui| {
                    for encoding in Encoding::ALL {
                        ui.selectable_value(
                            &mut self.settings.encoding,
                            encoding,
                            encoding.as_str(),
                        );
                    }
                })
                .response
                .labelled_by(encoding_label.id);
            // A-law and µ-law are telephone audio: suggest their rate.
            if self.settings.encoding != before
                && let Some(rate) = self.settings.encoding.suggested_rate()
            {
                self.settings.sample_rate = rate;
            }
            ui.end_row();

            let rate_label = ui.label("Sample rate");
            egui::ComboBox::from_id_salt("sample_rate")
                .selected_text(format!("{} Hz", self.settings.sample_rate.hz()))
                .show_ui(ui, |ui| {
                    for rate in SampleRate::ALL {
                        ui.selectable_value(
                            &mut self.settings.sample_rate,
                            rate,
                            format!("{} Hz", rate.hz()),
                        );
                    }
                })
                .response
                .labelled_by(rate_label.id);
            ui.end_row();

            let timestamps_label = ui.label("Word timestamps");
            ui.checkbox(&mut self.settings.word_timestamps, "")
                .labelled_by(timestamps_label.id);
            ui.end_row();

            ui.label("Theme");
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.settings.theme, Theme::System, "System");
                ui.selectable_value(&mut self.settings.theme, Theme::Light, "Light");
                ui.selectable_value(&mut self.settings.theme, Theme::Dark, "Dark");
            });
            ui.end_row();

            ui.label("Recognition");
            ui.horizontal(|ui| {
                use super::settings::EngineChoice;
                ui.selectable_value(
                    &mut self.settings.engine,
                    EngineChoice::Lightning,
                    "Lightning (server URL)",
                )
                .on_hover_text("Smallest AI's Lightning service, or the server at the URL below");
                ui.selectable_value(
                    &mut self.settings.engine,
                    EngineChoice::OnThisComputer,
                    "On this computer",
                )
                .on_hover_text("The offline Whisper recogniser: no key, no network");
            });
            ui.end_row();

            ui.label("Service");
            ui.horizontal(|ui| {
                use super::settings::Service;
                let current = Service::of_url(&self.settings.url);
                for service in Service::ALL {
                    let response = ui.selectable_label(current == service, service.label());
                    if response.clicked()
                        && let Some(url) = service.url()
                    {
                        self.settings.url = url.to_owned();
                    }
                }
            });
            ui.end_row();

            let url_label = ui.label("Server URL");
            ui.add(egui::TextEdit::singleline(&mut self.settings.url).desired_width(420.0))
                .labelled_by(url_label.id);
            ui.end_row();

            let key_label = ui.label("API key");
            if self.key_from_env {
                ui.label("from SMALLEST_API_KEY");
            } else {
                ui.vertical(|ui| {
                    ui.horizontal(|ui| {
                        let hint = if self.keyring.is_some() && !self.keyring_down {
                            "stored in the system keyring"
                        } else {
                            "kept for this run only"
                        };
                        let response = ui
                            .add(
                                egui::TextEdit::singleline(&mut self.key_input)
                                    .password(true)
                                    .hint_text(hint)
                                    .desired_width(340.0),
                            )
                            .labelled_by(key_label.id);
                        if response.changed() {
                            self.api_key = ApiKey::new(&self.key_input);
                            self.key_dirty = true;
                        }
                        // Always drawn (no short-circuit), so the buttons never shift under
                        // the pointer in the frame the field loses focus.
                        let save_clicked = ui.button("Save key").clicked();
                        let commit = response.lost_focus() || save_clicked;
                        if commit && self.key_dirty {
                            self.key_dirty = false;
                            self.store_key();
                        }
                        if self.api_key.is_some()
                            && ui
                                .small_button("Forget")
                                .on_hover_text("Remove the key from this app and the keyring")
                                .clicked()
                        {
                            self.key_input.clear();
                            self.api_key = None;
                            self.key_dirty = false;
                            self.store_key();
                        }
                    });
                    if let Some(note) = &self.key_note {
                        ui.label(RichText::new(note).small());
                    }
                });
            }
            ui.end_row();
        });
    }

    fn history_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("History");
        let Some(history) = self.history.clone() else {
            ui.label("No data directory: transcripts are not being saved.");
            return;
        };
        let entries = self
            .history_entries
            .take()
            .unwrap_or_else(|| history.list());
        let mut changed = false;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for entry in &entries {
                ui.separator();
                let current = entry.id == self.current.id;
                ui.label(RichText::new(entry.preview(12)).strong());
                ui.horizontal(|ui| {
                    if !current && ui.button("Open").clicked() && !self.dictating {
                        self.transcript = entry.transcript.clone();
                        self.current = entry.clone();
                    }
                    if ui.button("Copy").clicked() {
                        ui.ctx().copy_text(entry.transcript.final_text());
                    }
                    if !current && ui.button("Delete").clicked() {
                        let _ = history.delete(&entry.id);
                        changed = true;
                    }
                    if current {
                        ui.label("(open)");
                    }
                });
            }
        });
        // Read again from disk only after something changed there.
        if !changed {
            self.history_entries = Some(entries);
        }
    }

    fn transcript_ui(&mut self, ui: &mut egui::Ui) {
        let badges = self.settings.language.is_multi();
        egui::ScrollArea::vertical()
            .stick_to_bottom(true)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.spacing_mut().item_spacing.x = 0.0;
                    // One label per segment: each keeps its laid-out text in egui's cache, so
                    // a new interim re-lays out only itself, not an hour of finals.
                    for segment in &self.transcript.segments {
                        segment_label(ui, segment, badges);
                    }
                    let interim = interim_layout(&self.transcript.interim, ui.visuals());
                    ui.add(egui::Label::new(interim).selectable(true).wrap());
                });
            });
    }
}

/// A final segment as a selectable label; hovering a word shows its start and end time when the
/// server sent word timestamps.
fn segment_label(ui: &mut egui::Ui, segment: &crate::transcript::Segment, badge: bool) {
    let job = segment_layout(segment, ui.visuals(), badge);
    let text_starts_at = job.text.chars().count() - segment.text.chars().count() - 1;
    let (pos, galley, response) = egui::Label::new(job)
        .selectable(true)
        .wrap()
        .layout_in_ui(ui);
    response.widget_info(|| {
        egui::WidgetInfo::labeled(egui::Role::Label, ui.is_enabled(), galley.text())
    });
    if ui.is_rect_visible(response.rect) {
        egui::text_selection::LabelSelectionState::label_text_selection(
            ui,
            &response,
            pos,
            galley.clone(),
            ui.visuals().text_color(),
            egui::Stroke::NONE,
        );
    }
    if segment.words.is_empty() {
        return;
    }
    let Some(pointer) = response.hover_pos() else {
        return;
    };
    let index = galley.cursor_from_pos(pointer - pos).index;
    let Some(char_index) = index.0.checked_sub(text_starts_at) else {
        return;
    };
    if let Some(word) = word_at(segment, char_index) {
        response.on_hover_text(format!(
            "{}: {:.2} s – {:.2} s",
            word.word, word.start, word.end
        ));
    }
}

/// The timed word under a character of the segment's text: the n-th token is the n-th timed word
/// when the counts agree, else the first timed word with the same letters.
pub fn word_at(
    segment: &crate::transcript::Segment,
    char_index: usize,
) -> Option<&crate::protocol::WordTimestamp> {
    let mut start = 0;
    let tokens: Vec<(usize, usize, &str)> = segment
        .text
        .split(' ')
        .map(|token| {
            let span = (start, start + token.chars().count(), token);
            start = span.1 + 1;
            span
        })
        .collect();
    let (n, (_, _, token)) = tokens
        .iter()
        .enumerate()
        .find(|(_, (from, to, _))| (*from..=*to).contains(&char_index))?;
    let letters = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    };
    if tokens.len() == segment.words.len() {
        return segment.words.get(n);
    }
    segment
        .words
        .iter()
        .find(|w| letters(&w.word) == letters(token))
}

/// One final segment: strong text colour, a trailing space, and with automatic language
/// detection a small badge of its language first.
pub fn segment_layout(
    segment: &crate::transcript::Segment,
    visuals: &egui::Visuals,
    language_badge: bool,
) -> LayoutJob {
    let strong = visuals.strong_text_color();
    let font = FontId::proportional(18.0);
    let mut job = LayoutJob::default();
    if language_badge && let Some(language) = &segment.language {
        job.append(
            &format!(" {language} "),
            0.0,
            TextFormat {
                font_id: FontId::monospace(11.0),
                color: visuals.weak_text_color(),
                background: visuals.faint_bg_color,
                ..TextFormat::default()
            },
        );
        job.append(" ", 0.0, TextFormat::simple(font.clone(), strong));
    }
    // A gap marker is not speech: the warning colour, in italics, so it is never read as words.
    let text_format = if segment.gap {
        TextFormat {
            italics: true,
            ..TextFormat::simple(font.clone(), visuals.warn_fg_color)
        }
    } else {
        TextFormat::simple(font.clone(), strong)
    };
    job.append(&segment.text, 0.0, text_format);
    job.append(" ", 0.0, TextFormat::simple(font, strong));
    job
}

/// The open interim: the weak text colour.
pub fn interim_layout(text: &str, visuals: &egui::Visuals) -> LayoutJob {
    let mut job = LayoutJob::default();
    job.append(
        text,
        0.0,
        TextFormat::simple(FontId::proportional(18.0), visuals.weak_text_color()),
    );
    job
}

/// The whole transcript as one rich text (what the window shows, segment by segment): finals in
/// the strong text colour (black on the light theme), the open interim after them in the weak one
/// (grey).
pub fn transcript_layout(
    transcript: &Transcript,
    visuals: &egui::Visuals,
    language_badges: bool,
) -> LayoutJob {
    let mut job = LayoutJob::default();
    let mut add = |part: LayoutJob| {
        for section in &part.sections {
            let range = section.byte_range.start.0..section.byte_range.end.0;
            job.append(&part.text[range], 0.0, section.format.clone());
        }
    };
    for segment in &transcript.segments {
        add(segment_layout(segment, visuals, language_badges));
    }
    add(interim_layout(&transcript.interim, visuals));
    job
}

/// The language menu; a language the service cannot stream is greyed, with the reason on hover
/// (and beside the menu when it is the one chosen).
fn language_picker(
    ui: &mut egui::Ui,
    language: &mut Language,
    refusal: impl Fn(Language) -> Option<&'static str>,
) {
    let label = ui.label("Language");
    egui::ComboBox::from_id_salt("language")
        .selected_text(format!("{} ({})", language.name(), language.code()))
        .show_ui(ui, |ui| {
            for choice in Language::all() {
                let reason = refusal(choice);
                ui.add_enabled_ui(reason.is_none(), |ui| {
                    ui.selectable_value(
                        language,
                        choice,
                        format!("{} ({})", choice.name(), choice.code()),
                    )
                })
                .response
                .on_disabled_hover_text(reason.unwrap_or_default());
            }
        })
        .response
        .labelled_by(label.id);
    if let Some(reason) = refusal(*language) {
        ui.label(RichText::new("⚠").color(ui.visuals().warn_fg_color))
            .on_hover_text(reason);
    }
}

fn level_meter(ui: &mut egui::Ui, dbfs: f32) {
    let fraction = ((dbfs + 60.0) / 60.0).clamp(0.0, 1.0);
    ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(120.0)
            .text(format!("{dbfs:.0} dB")),
    );
}

impl eframe::App for DictationApp {
    /// eframe runs this every pass, and also while the window is minimised or hidden (when it
    /// runs no `ui` at all): the dictation's events are applied here, so the transcript and the
    /// history stay current with no window on screen.
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.apply_pending();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.window_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, Settings::KEY, &self.settings);
    }
}

impl DictationApp {
    /// Applies every event the dictation sent since the last call.
    pub fn apply_pending(&mut self) {
        let pending: Vec<UiEvent> = self.events_rx.try_iter().collect();
        for event in pending {
            self.apply(event);
        }
    }

    /// One frame of the whole window (what `eframe::App::ui` runs; benchmarks run it directly).
    pub fn window_ui(&mut self, ui: &mut egui::Ui) {
        // Events first (eframe applied them in `logic` already; tests and benches call this
        // alone): the frame shows the newest state. No event, no repaint: an idle window does no
        // work.
        self.apply_pending();
        let ctx = ui.ctx().clone();
        ctx.set_theme(match self.settings.theme {
            Theme::System => egui::ThemePreference::System,
            Theme::Light => egui::ThemePreference::Light,
            Theme::Dark => egui::ThemePreference::Dark,
        });
        if ctx.input_mut(|i| i.consume_key(Modifiers::CTRL, Key::Space)) {
            self.toggle(&ctx);
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::CTRL | Modifiers::SHIFT, Key::C)) {
            self.copy(&ctx);
        }
        egui::Panel::top("controls").show(ui, |ui| {
            ui.add_space(6.0);
            self.controls_ui(ui);
            ui.add_space(4.0);
            self.status_ui(ui);
            ui.add_space(4.0);
        });
        if self.show_history {
            egui::Panel::right("history_panel")
                .default_size(280.0)
                .show(ui, |ui| self.history_ui(ui));
        }
        if self.show_settings {
            egui::Panel::bottom("settings_panel").show(ui, |ui| {
                ui.add_space(4.0);
                self.settings_ui(ui);
                ui.add_space(4.0);
            });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            self.transcript_ui(ui);
        });
    }
}
