//! The desktop around the app: typing dictated text into the app that has the keyboard focus, and
//! the global shortcut. X11 today (XTest and a passive key grab, `x11.rs`); on Wayland neither
//! exists for ordinary clients, and the control socket (`lightning-dictate toggle`, bound to a key
//! in the compositor) is the way in.

pub mod entry;
pub mod tray;
pub mod x11;

use crossbeam_channel::Sender;

pub use x11::{Shortcut, ShortcutEvent};

/// The default global shortcut.
pub const DEFAULT_SHORTCUT: &str = "ctrl+alt+space";

/// Why the desktop cannot do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DesktopError {
    /// No X display to talk to (`DISPLAY` unset, or a Wayland session without Xwayland).
    #[error("no X display ({0})")]
    NoDisplay(String),
    /// The X server refused or lacks something (XTest, a keycode).
    #[error("the X server: {0}")]
    X11(String),
    /// The shortcut does not parse, or its key is not on this keyboard.
    #[error("`{0}` is not a shortcut this keyboard can press (e.g. ctrl+alt+space)")]
    BadShortcut(String),
    /// Another program holds the same key combination.
    #[error("another program already uses {0}")]
    ShortcutTaken(String),
    /// The tray icon could not be published (no session bus).
    #[error("no tray icon: {0}")]
    Tray(String),
}

/// Types text into the focused app from a thread of its own, in order.
pub struct Inserter {
    texts: Sender<String>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Inserter {
    /// Connects to the display (checking XTest) and starts the typing thread.
    pub fn start() -> Result<Inserter, DesktopError> {
        Inserter::start_on(None)
    }

    /// The same on `display` (`None`: `$DISPLAY`).
    pub fn start_on(display: Option<&str>) -> Result<Inserter, DesktopError> {
        let mut typist = x11::Typist::connect(display)?;
        let (texts, queue) = crossbeam_channel::unbounded::<String>();
        let thread = std::thread::Builder::new()
            .name("type".to_owned())
            .spawn(move || {
                for text in &queue {
                    if let Err(e) = typist.type_text(&text) {
                        tracing::error!("typing into the focused app failed: {e}");
                    }
                }
            })
            .map_err(|e| DesktopError::X11(e.to_string()))?;
        Ok(Inserter {
            texts,
            thread: Some(thread),
        })
    }

    /// Types `text` after everything queued before it.
    pub fn insert(&self, text: &str) {
        // The typing thread lives as long as this handle.
        let _ = self.texts.send(text.to_owned());
    }

    /// Waits until everything queued is typed (the typing thread ends with this handle).
    pub fn finish(self) {
        drop(self.texts);
        if let Some(thread) = self.thread {
            let _ = thread.join();
        }
    }
}

/// The window with the keyboard focus, if the display says.
pub fn focused_window() -> Option<u32> {
    x11::focused_window().ok()
}

/// Whether the window with the keyboard focus belongs to this process (dictation is never typed
/// into our own window: its text is there already).
pub fn focus_is_ours() -> bool {
    x11::focused_pid().is_ok_and(|pid| pid == std::process::id())
}
