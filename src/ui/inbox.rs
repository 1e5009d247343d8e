//! The window's inbox: everything that reaches the window from other threads (the dictation,
//! the I/O thread, the control socket, the shortcut, the tray, the overlay), and how each wakes
//! it. The window drains it in `eframe::App::logic`, shown or not.

use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;
use eframe::egui;

use super::app::DictationApp;
use super::io::Done;
use crate::audio::capture::CaptureEvent;
use crate::channel::Sink;
use crate::control;
use crate::desktop::ShortcutEvent;
use crate::desktop::tray::TrayAction;
use crate::dictation::DictationEvent;

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
