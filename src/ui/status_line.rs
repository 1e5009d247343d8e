//! The status line: where the dictation is (from its [`Lifecycle`]), the "Switch to Pulse live"
//! offer when the service moved, and a passing notice ("Copied 12 words") or a lasting one
//! (silence, a failed save).

use std::time::Duration;

use eframe::egui;
use egui::{Color32, RichText};

use super::lifecycle::Lifecycle;

/// A notice and until when it shows (`f64::INFINITY`: until replaced).
#[derive(Debug, Clone, Default)]
pub struct StatusLine {
    notice: Option<(String, f64)>,
}

/// What the status line asks of the window.
pub enum StatusAction {
    /// Use this URL (the service's current endpoint).
    SwitchTo(String),
}

impl StatusLine {
    /// Shows `text` for `secs` seconds from `now` (`f64::INFINITY`: until replaced).
    pub fn notify(&mut self, text: impl Into<String>, now: f64, secs: f64) {
        self.notice = Some((text.into(), now + secs));
    }

    pub fn clear(&mut self) {
        self.notice = None;
    }

    /// The line: `ready` is what to say when nothing runs.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        lifecycle: &Lifecycle,
        ready: &str,
        offline: bool,
        moved_to: Option<&str>,
        live: Option<(f32, f64)>,
    ) -> Option<StatusAction> {
        let now = ui.input(|i| i.time);
        if self.notice.as_ref().is_some_and(|(_, until)| now > *until) {
            self.notice = None;
        }
        let mut action = None;
        // Wrapped: a long error (a device list) keeps its advice on screen.
        ui.horizontal_wrapped(|ui| {
            let status = match lifecycle {
                Lifecycle::Idle => ready.to_owned(),
                Lifecycle::Connecting => "Connecting…".to_owned(),
                Lifecycle::Listening if offline => "Listening · on this computer".to_owned(),
                Lifecycle::Listening => "Listening".to_owned(),
                Lifecycle::Stopping => "Finishing…".to_owned(),
                Lifecycle::Reconnecting { attempt, kept_secs } => {
                    format!("Reconnecting… attempt {attempt}, {kept_secs:.0} s kept")
                }
                Lifecycle::Offline => {
                    "The service is unreachable: listening on this computer".to_owned()
                }
                Lifecycle::Failed(_) if moved_to.is_some() => {
                    "Smallest AI no longer serves this address: switch to Pulse live, or pick another service in Settings".to_owned()
                }
                Lifecycle::Failed(failure) => failure.text(),
            };
            let colour = match lifecycle {
                Lifecycle::Failed(_) => ui.visuals().error_fg_color,
                Lifecycle::Listening => Color32::from_rgb(0, 140, 60),
                _ => ui.visuals().text_color(),
            };
            ui.label(RichText::new(status).color(colour));
            // While dictating: the input level and the time so far.
            if let Some((level_dbfs, secs)) = live {
                super::settings_view::level_meter_ui(ui, level_dbfs);
                let secs = secs as u64;
                ui.label(format!("{}:{:02}", secs / 60, secs % 60));
                // Once a second while dictating; an idle window asks for nothing.
                ui.ctx().request_repaint_after(Duration::from_secs(1));
            }
            if let Some(url) = moved_to
                && ui
                    .button("Switch to Pulse live")
                    .on_hover_text(format!("Use {url}"))
                    .clicked()
            {
                action = Some(StatusAction::SwitchTo(url.to_owned()));
            }
            if let Some((notice, until)) = &self.notice {
                ui.label(RichText::new(notice).italics());
                if until.is_finite() {
                    ui.ctx()
                        .request_repaint_after(Duration::from_secs_f64((until - now).max(0.0)));
                }
            }
        });
        action
    }
}
