//! The tray icon and the overlay, as the window drives them: both follow the dictation.

use super::app::{DictationApp, Inbox, waking};
use super::lifecycle::Lifecycle;
use super::overlay::{Overlay, tail};
use crate::desktop::tray::Tray;

impl DictationApp {
    /// Shows the tray icon (its actions arrive in the inbox).
    pub fn with_tray(&mut self) {
        match Tray::start(waking(&self.inbox_tx, &self.ctx).map(Inbox::Tray)) {
            Ok(tray) => self.tray = Some(tray),
            // No session bus (a bare X server, a container): no icon, nothing else changes.
            Err(e) => tracing::info!("{e}"),
        }
    }

    /// The tray's red dot follows the dictation (updated on changes only: each is a D-Bus signal).
    pub(super) fn sync_tray(&mut self) {
        let listening = self.is_dictating();
        if let Some(tray) = &self.tray
            && self.tray_listening != listening
        {
            tray.set_listening(listening);
            self.tray_listening = listening;
        }
    }

    /// Shows the overlay for a dictation started from outside the window. Not on Wayland: there
    /// it would be an ordinary window, which the compositor places among the others and focuses
    /// (sway did, and the words went to it instead of the terminal); the tray shows the state.
    pub(super) fn open_overlay(&mut self) {
        if crate::desktop::on_wayland() {
            return;
        }
        let Some(ctx) = self.ctx.get() else {
            return;
        };
        let clicked = waking(&self.inbox_tx, &self.ctx).map(|()| Inbox::OverlayClicked);
        let overlay = Overlay::new(ctx, clicked);
        if let Ok(mut feed) = self.overlay_feed.lock() {
            *feed = Some(overlay.feed());
        }
        self.overlay = Some(overlay);
        self.overlay_text.clear();
        self.refresh_overlay();
    }

    /// The overlay goes (the dictation ended or failed).
    pub(super) fn close_overlay(&mut self) {
        if let Ok(mut feed) = self.overlay_feed.lock() {
            *feed = None;
        }
        self.overlay = None;
    }

    /// Puts the dictation's state and words on the overlay.
    pub(super) fn refresh_overlay(&self) {
        let Some(overlay) = &self.overlay else {
            return;
        };
        let state = match &self.lifecycle {
            Lifecycle::Connecting => "Connecting…".to_owned(),
            Lifecycle::Listening | Lifecycle::Offline => "Listening".to_owned(),
            Lifecycle::Reconnecting { .. } => "Reconnecting…".to_owned(),
            Lifecycle::Stopping => "Finishing…".to_owned(),
            Lifecycle::Idle | Lifecycle::Failed(_) => String::new(),
        };
        let finals_tail = tail(&self.overlay_text);
        let interim = self.transcript.interim.clone();
        let level_dbfs = self.level_dbfs;
        overlay.update(move |view| {
            view.state = state;
            view.finals_tail = finals_tail;
            view.interim = interim;
            view.level_dbfs = level_dbfs;
        });
    }
}
