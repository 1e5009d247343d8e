//! The window's inbox: everything that reaches the window from other threads (the dictation,
//! the I/O thread, the control socket, the shortcut, the tray, the overlay), how each wakes it,
//! and how each is applied. The window drains it in `eframe::App::logic`, shown or not.

use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;
use eframe::egui;

use super::app::DictationApp;
use super::io::Done;
use super::lifecycle::Failure;
use crate::audio::capture::CaptureEvent;
use crate::channel::Sink;
use crate::control;
use crate::desktop::ShortcutEvent;
use crate::desktop::tray::TrayAction;
use crate::dictation::DictationEvent;
use crate::session::SessionEvent;

/// What arrives in the window's inbox.
pub(crate) enum Inbox {
    Dictation(DictationEvent),
    Io(Done),
    /// A command from the control socket (`lightning-dictate toggle`, a second launch).
    Control(control::Request),
    /// The global shortcut.
    Shortcut(ShortcutEvent),
    /// The desktop's portal answered the request for the global shortcut (Wayland): the trigger
    /// as the desktop describes it, or why there is none.
    ShortcutBound(Result<String, String>),
    /// The tray icon's menu.
    Tray(TrayAction),
    /// A click on the overlay.
    OverlayClicked,
}

/// At most this often does an input level wake the window.
const LEVEL_WAKE: std::time::Duration = std::time::Duration::from_millis(100);

/// At most this often does an input level or an interim wake a hidden window (which runs only to
/// keep the overlay current; the overlay redraws its meter no more often than this either).
const HIDDEN_WAKE: std::time::Duration = std::time::Duration::from_millis(250);

/// A sink into the inbox that wakes the window (once it has been shown).
pub(crate) fn waking(inbox: &Sender<Inbox>, ctx: &Arc<OnceLock<egui::Context>>) -> Sink<Inbox> {
    let ctx = Arc::clone(ctx);
    Sink::waking(inbox.clone(), move || {
        if let Some(ctx) = ctx.get() {
            ctx.request_repaint();
        }
    })
}

impl DictationApp {
    /// Where dictation events go, as the backend sends them (tests feed the window with it).
    ///
    /// Every event wakes the window, except input levels (20 a second): those wake it at most
    /// ten times a second, and the rest wait for the next pass. A meter needs no more, and each
    /// wake is a pass of the window (and of the overlay): this halves what dictating costs.
    /// While the app keeps the window hidden (dictating in the background), levels and interims
    /// wake it at most four times a second: such a pass only feeds the overlay, and on X11 each
    /// costs a dozen round trips to the X server.
    pub fn event_sender(&self) -> Sink<DictationEvent> {
        let inbox = self.inbox_tx.clone();
        let ctx = Arc::clone(&self.ctx);
        let hidden = Arc::clone(&self.hidden);
        let overlay = Arc::clone(&self.overlay_feed);
        let last_wake = std::sync::Mutex::new(None::<std::time::Instant>);
        Sink::from_fn(move |event: DictationEvent| {
            let level = match &event {
                DictationEvent::Capture(CaptureEvent::Level { peak_dbfs, .. }) => Some(*peak_dbfs),
                _ => None,
            };
            let in_background = hidden.load(std::sync::atomic::Ordering::Relaxed);
            // The text is copied for the overlay only while the window is hidden.
            let interim = match &event {
                DictationEvent::Session(crate::session::SessionEvent::Interim { text }) => {
                    Some(if in_background {
                        text.clone()
                    } else {
                        String::new()
                    })
                }
                _ => None,
            };
            if inbox.send(Inbox::Dictation(event)).is_err() {
                return;
            }
            if in_background && (level.is_some() || interim.is_some()) {
                let feed = overlay.lock().ok().and_then(|f| f.clone());
                if let Some(feed) = feed {
                    // The overlay shows it with no pass of the hidden window, which applies the
                    // event with the next final or state change.
                    feed.update(|view| {
                        if let Some(dbfs) = level {
                            view.level_dbfs = dbfs;
                        }
                        if let Some(text) = interim {
                            view.interim = text;
                        }
                    });
                    return;
                }
            }
            if level.is_some() || (interim.is_some() && in_background) {
                let Ok(mut last) = last_wake.lock() else {
                    return;
                };
                let now = std::time::Instant::now();
                let every = if in_background {
                    HIDDEN_WAKE
                } else {
                    LEVEL_WAKE
                };
                if last.is_some_and(|at| now.duration_since(at) < every) {
                    return;
                }
                *last = Some(now);
            }
            if let Some(ctx) = ctx.get() {
                ctx.request_repaint();
            }
        })
    }
}

/// Applying what arrived: each message to the part of the window that owns it.
impl DictationApp {
    /// Applies everything that arrived since the last call.
    pub fn apply_pending(&mut self) {
        let pending: Vec<Inbox> = self.inbox.try_iter().collect();
        for item in pending {
            match item {
                Inbox::Dictation(event) => self.apply(event),
                Inbox::Io(done) => self.on_io(done),
                Inbox::Control(request) => self.on_control(request),
                // Toggle on the press; a release is for hold-to-talk (not yet).
                Inbox::Shortcut(ShortcutEvent::Pressed) => self.shortcut_pressed(),
                Inbox::Shortcut(ShortcutEvent::Released) => self.shortcut_released(),
                Inbox::ShortcutBound(answer) => self.shortcut_bound(answer),
                Inbox::Tray(TrayAction::Toggle) => self.toggle_from_outside(),
                Inbox::OverlayClicked if self.is_dictating() => self.toggle_from_outside(),
                Inbox::OverlayClicked => {}
                Inbox::Tray(TrayAction::Show) => self.show(),
                Inbox::Tray(TrayAction::Quit) => {
                    self.quitting = true;
                    if let Some(ctx) = self.ctx.get() {
                        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    }
                }
            }
        }
    }

    fn on_io(&mut self, done: Done) {
        match done {
            Done::Saved(result) | Done::Deleted(result) => {
                self.history.invalidate();
                if let Err(message) = result {
                    self.status.notify(message, 0.0, f64::INFINITY);
                }
            }
            Done::Exported(result) => {
                let message = match result {
                    Ok(path) => format!("Saved to {}", path.display()),
                    Err(e) => format!("Export failed: {e}"),
                };
                let now = self.ctx.get().map_or(0.0, |ctx| ctx.input(|i| i.time));
                self.status.notify(message, now, 6.0);
            }
            Done::StartAtLogin(Ok(on)) => self.outside.start_at_login = on,
            Done::StartAtLogin(Err(e)) => {
                self.status.notify(
                    format!("Could not change Start at login: {e}"),
                    0.0,
                    f64::INFINITY,
                );
            }
            other => self.key.on_done(other),
        }
    }

    fn apply(&mut self, event: DictationEvent) {
        match event {
            DictationEvent::Session(event) => {
                self.transcript.apply(&event);
                if matches!(event, SessionEvent::Final(_) | SessionEvent::Gap { .. })
                    && let Some(job) = self.history.autosave(&self.transcript)
                {
                    self.queue(job);
                }
                if let SessionEvent::Final(segment) = &event {
                    self.outside.on_final(segment);
                    self.report_typing_failure();
                    if self.overlay.is_some() && !segment.text.trim().is_empty() {
                        if !self.overlay_text.is_empty() {
                            self.overlay_text.push(' ');
                        }
                        self.overlay_text.push_str(segment.text.trim());
                    }
                }
                if let SessionEvent::ServiceMoved { suggested_url } = &event {
                    self.moved_to = Some(suggested_url.clone());
                }
                self.lifecycle.on_session(&event);
                self.sync_tray();
                self.refresh_overlay();
                if let SessionEvent::Ended(outcome) = &event {
                    // The last final is in: the overlay goes.
                    self.close_overlay();
                    self.outside.end();
                    self.report_typing_failure();
                    self.backend.stop();
                    if let Err(e) = outcome {
                        self.lifecycle = self.failed(Failure::session(e));
                    }
                    self.sync_tray();
                }
            }
            DictationEvent::Failed(e) => {
                self.close_overlay();
                self.outside.end();
                self.backend.stop();
                self.lifecycle = self.failed(Failure::start(&e));
                self.sync_tray();
            }
            DictationEvent::Capture(event) => {
                self.lifecycle.on_capture(&event);
                self.on_capture(event);
                self.refresh_overlay();
            }
            DictationEvent::Started(_) => {}
        }
    }

    fn on_capture(&mut self, event: CaptureEvent) {
        match event {
            CaptureEvent::Level { peak_dbfs, .. } => self.level_dbfs = peak_dbfs,
            CaptureEvent::Silent { .. } => self.status.notify(
                "Only silence so far: is the microphone muted, or the wrong one?",
                0.0,
                f64::INFINITY,
            ),
            CaptureEvent::SoundBack => self.status.clear(),
            CaptureEvent::Missed { secs } => self.status.notify(
                format!(
                    "{secs:.1} s of audio never came from the microphone (the app was paused or the computer too busy): say it again"
                ),
                0.0,
                f64::INFINITY,
            ),
            CaptureEvent::Overflow { .. } | CaptureEvent::Backlog { .. } => self.status.notify(
                "The computer fell behind the microphone and some audio was dropped: say the last words again",
                0.0,
                f64::INFINITY,
            ),
            CaptureEvent::DeviceLost { device, detail } => self.status.notify(
                format!(
                    "The microphone {device} failed ({detail}): reconnect it or pick another in Settings"
                ),
                0.0,
                f64::INFINITY,
            ),
            _ => {}
        }
    }
}
