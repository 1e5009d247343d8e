//! The history: every transcript autosaved after each final (on the I/O thread), the panel that
//! lists, opens, copies and deletes them, and exports of the current one.

use eframe::egui;
use egui::RichText;

use super::io::Job;
use crate::history::{History, SavedTranscript};
use crate::transcript::Transcript;

/// The history and the current transcript's place in it.
pub struct HistoryPanel {
    /// Where transcripts are saved; `None` when no data directory could be opened.
    history: Option<History>,
    /// The current transcript's identity in the history.
    pub current: SavedTranscript,
    /// The history as last read from disk; `None` until the panel needs it or after a change.
    entries: Option<Vec<SavedTranscript>>,
}

/// What the panel asks of the window.
pub enum HistoryAction {
    /// Show this saved transcript (only when no dictation runs).
    Open(SavedTranscript),
    /// Queue this job (a delete).
    Io(Job),
}

impl Default for HistoryPanel {
    fn default() -> Self {
        HistoryPanel {
            history: None,
            current: SavedTranscript::start_now(),
            entries: None,
        }
    }
}

impl HistoryPanel {
    pub fn new(history: History) -> Self {
        HistoryPanel {
            history: Some(history),
            ..HistoryPanel::default()
        }
    }

    /// The job that saves `transcript` as the current entry (a crash loses at most the open
    /// interim: only finals are saved).
    pub fn autosave(&mut self, transcript: &Transcript) -> Option<Job> {
        let history = self.history.as_ref()?;
        if transcript.segments.is_empty() {
            return None;
        }
        self.current
            .transcript
            .segments
            .clone_from(&transcript.segments);
        Some(Job::Save(history.clone(), self.current.clone()))
    }

    /// The disk changed (a save or delete is done): read it again when the panel shows.
    pub fn invalidate(&mut self) {
        self.entries = None;
    }

    /// A new transcript; the old one stays in the history.
    pub fn start_new(&mut self) {
        self.current = SavedTranscript::start_now();
    }

    /// Where exports go: `exports` next to the history.
    fn exports_dir(&self) -> Result<std::path::PathBuf, String> {
        self.history
            .as_ref()
            .and_then(|h| h.dir().parent().map(|p| p.join("exports")))
            .ok_or_else(|| "no data directory to export into".to_owned())
    }

    /// The file an export of `transcript` as `ext` (txt, srt, vtt, json) writes, and its body.
    pub fn export_file(
        &self,
        transcript: &Transcript,
        ext: &str,
    ) -> Result<(std::path::PathBuf, String), String> {
        let dir = self.exports_dir()?;
        let body = match ext {
            "srt" => transcript.to_srt(),
            "vtt" => transcript.to_vtt(),
            "json" => transcript.to_json(),
            _ => transcript.final_text() + "\n",
        };
        Ok((
            dir.join(format!("transcript-{}.{ext}", self.current.id)),
            body,
        ))
    }

    /// The panel.
    pub fn ui(&mut self, ui: &mut egui::Ui, dictating: bool) -> Option<HistoryAction> {
        ui.heading("History");
        let Some(history) = self.history.clone() else {
            ui.label("No data directory: transcripts are not being saved.");
            return None;
        };
        let entries = self.entries.take().unwrap_or_else(|| history.list());
        let mut action = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for entry in &entries {
                ui.separator();
                let current = entry.id == self.current.id;
                ui.label(RichText::new(entry.preview(12)).strong());
                ui.horizontal(|ui| {
                    if !current && ui.button("Open").clicked() && !dictating {
                        self.current = entry.clone();
                        action = Some(HistoryAction::Open(entry.clone()));
                    }
                    if ui.button("Copy").clicked() {
                        ui.ctx().copy_text(entry.transcript.final_text());
                    }
                    if !current && ui.button("Delete").clicked() {
                        action = Some(HistoryAction::Io(Job::Delete(
                            history.clone(),
                            entry.id.clone(),
                        )));
                    }
                    if current {
                        ui.label("(open)");
                    }
                });
            }
        });
        // Read again from disk only after something changed there.
        if !matches!(action, Some(HistoryAction::Io(_))) {
            self.entries = Some(entries);
        }
        action
    }
}
