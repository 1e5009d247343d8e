//! The API key: where it came from (environment, keyring, typed), the Settings field that edits
//! it, and what happened when it was last stored. The keyring itself is reached on the I/O thread.

use std::sync::Arc;

use eframe::egui;
use egui::RichText;

use super::io::{Done, Job, KeyringAccess};
use crate::protocol::ApiKey;

/// The key and its field.
#[derive(Default)]
pub struct ApiKeyField {
    /// The key in use: from SMALLEST_API_KEY / --api-key, the keyring, or typed (this run).
    pub key: Option<ApiKey>,
    from_env: bool,
    input: String,
    /// The field changed since it was last stored.
    dirty: bool,
    /// Where typed keys are kept: the OS keyring, when the window uses one (tests use a fake).
    keyring: Option<Arc<KeyringAccess>>,
    /// What happened to the key last (saved, or why it is kept for this run only).
    note: Option<String>,
    /// The keyring answered at start (and at the last save).
    keyring_available: bool,
    /// Give the field the keyboard focus next frame (a refused key was reported).
    focus: bool,
}

impl ApiKeyField {
    /// With the key from the environment or the command line, if any.
    pub fn new(key: Option<ApiKey>) -> Self {
        ApiKeyField {
            from_env: key.is_some(),
            key,
            keyring_available: true,
            ..ApiKeyField::default()
        }
    }

    /// Keeps typed keys in `access`; returns the job that reads the stored key.
    pub fn use_keyring(&mut self, access: KeyringAccess) -> Job {
        let access = Arc::new(access);
        self.keyring = Some(Arc::clone(&access));
        Job::LoadKey(access)
    }

    /// Applies what the I/O thread reports about the key.
    pub fn on_done(&mut self, done: Done) {
        match done {
            Done::KeyLoaded(Ok(Some(key))) if self.key.is_none() => {
                self.key = Some(key);
                self.note = Some("Using the key stored in the system keyring.".into());
            }
            Done::KeyLoaded(Err(e)) => {
                self.note = Some(e);
                self.keyring_available = false;
            }
            Done::KeyStored(result) => {
                self.keyring_available = result.is_ok();
                self.note = Some(match result {
                    Ok(done) => done.to_owned(),
                    Err(e) => e,
                });
            }
            _ => {}
        }
    }

    /// Puts the keyboard focus in the field (when it is shown).
    pub fn request_focus(&mut self) {
        self.focus = true;
    }

    /// The job that stores the current key (or removes it), if there is a keyring.
    fn store(&mut self) -> Option<Job> {
        if let Some(access) = &self.keyring {
            Some(Job::StoreKey(Arc::clone(access), self.key.clone()))
        } else {
            self.note = Some("Kept for this run only.".into());
            None
        }
    }

    /// The field, Save key and Forget; returns a keyring job to queue.
    pub fn ui(&mut self, ui: &mut egui::Ui, label: egui::Id) -> Option<Job> {
        if self.from_env {
            ui.label("from SMALLEST_API_KEY");
            return None;
        }
        let mut job = None;
        ui.vertical(|ui| {
            ui.horizontal(|ui| {
                let hint = if self.keyring.is_some() && self.keyring_available {
                    "stored in the system keyring"
                } else {
                    "kept for this run only"
                };
                let response = ui
                    .add(
                        egui::TextEdit::singleline(&mut self.input)
                            .password(true)
                            .hint_text(hint)
                            .desired_width(340.0),
                    )
                    .labelled_by(label);
                if std::mem::take(&mut self.focus) {
                    response.request_focus();
                }
                if response.changed() {
                    self.key = ApiKey::new(&self.input);
                    self.dirty = true;
                }
                // Always drawn (no short-circuit), so the buttons never shift under the pointer in
                // the frame the field loses focus.
                let save_clicked = ui.button("Save key").clicked();
                let commit = response.lost_focus() || save_clicked;
                if commit && self.dirty {
                    self.dirty = false;
                    job = self.store();
                }
                if self.key.is_some()
                    && ui
                        .small_button("Forget")
                        .on_hover_text("Remove the key from this app and the keyring")
                        .clicked()
                {
                    self.input.clear();
                    self.key = None;
                    self.dirty = false;
                    job = self.store();
                }
            });
            if let Some(note) = &self.note {
                ui.label(RichText::new(note).small());
            }
        });
        job
    }
}
