//! The desktop around the app: typing dictated text into the app that has the keyboard focus, and
//! the global shortcut. On X11: XTest and a passive key grab (`x11.rs`). On Wayland, where
//! ordinary clients have neither: the desktop portals (`portal.rs`: GNOME, KDE), else `wtype` or
//! `ydotool` for typing; and the control socket (`lightning-dictate toggle`, bound to a key in the
//! compositor) is always a way in.

pub mod entry;
pub mod portal;
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
    /// Nothing can type into other apps here (Wayland without `wtype` or `ydotool`).
    #[error("no X display, and neither wtype nor ydotool is installed ({0})")]
    NoTyping(String),
    /// The tray icon could not be published (no session bus).
    #[error("no tray icon: {0}")]
    Tray(String),
    /// On Wayland: the portal cannot type (why: the first field), no typing program is
    /// installed, and there is no X display either.
    #[error("{0}, neither wtype nor ydotool is installed, and there is no X display")]
    NothingTypes(String),
    /// A typing program (wtype, ydotool) ran and failed.
    #[error("{0}")]
    Program(String),
    /// The desktop has no portal with this interface (or no session bus to ask on).
    #[error("the desktop offers no {0} portal")]
    NoPortal(String),
    /// The user (or the desktop) said no to the portal's request.
    #[error("the desktop did not allow it ({0} portal)")]
    PortalRefused(String),
    /// The portal failed otherwise.
    #[error("the desktop portal: {0}")]
    Portal(String),
}

/// How text reaches the focused app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMethod {
    /// Typed key by key (XTest).
    Type,
    /// Put on the clipboard and pasted (Ctrl+V, or Ctrl+Shift+V in a terminal); the previous
    /// clipboard comes back afterwards if nobody replaced ours meanwhile.
    Paste,
}

/// Inserts text into the focused app from a thread of its own, in order.
pub struct Inserter {
    texts: Sender<String>,
    /// What went wrong on the typing thread (each failure once).
    errors: crossbeam_channel::Receiver<DesktopError>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long the app that pastes gets to read the clipboard before the previous content is put
/// back.
const PASTE_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

impl Inserter {
    /// Connects to `display` (`None`: `$DISPLAY`), inserting by `method`. On Wayland: the
    /// desktop's RemoteDesktop portal (asked on the typing thread: the desktop may show a
    /// dialog), else `wtype` or `ydotool`, else XTest into the X11 apps of Xwayland.
    pub fn start_on(display: Option<&str>, method: InsertMethod) -> Result<Inserter, DesktopError> {
        let x11 = || x11::Typist::connect(display);
        if on_wayland() {
            let program = wayland_typer();
            let fallback = match program {
                Some(program) => Fallback::Program(program),
                None => match x11() {
                    Ok(typist) => Fallback::X11(Box::new(typist)),
                    Err(_) => Fallback::Nothing,
                },
            };
            return Inserter::spawn(method, move || match portal::Keyboard::connect() {
                Ok(keyboard) => Ok(Typer::Portal(keyboard)),
                Err(e) => {
                    tracing::info!("{e}; typing another way");
                    match fallback {
                        Fallback::Program(program) => Ok(Typer::Program(program)),
                        Fallback::X11(typist) => Ok(Typer::X11(typist)),
                        Fallback::Nothing => {
                            Err(DesktopError::NothingTypes(portal::with_install_hint(&e)))
                        }
                    }
                }
            });
        }
        let typist = match x11() {
            Ok(typist) => typist,
            Err(DesktopError::NoDisplay(why)) => return Err(DesktopError::NoTyping(why)),
            Err(e) => return Err(e),
        };
        Inserter::spawn(method, move || Ok(Typer::X11(Box::new(typist))))
    }

    /// The typing thread: makes its typer with `typer`, then inserts every text queued, in
    /// order.
    fn spawn(
        method: InsertMethod,
        typer: impl FnOnce() -> Result<Typer, DesktopError> + Send + 'static,
    ) -> Result<Inserter, DesktopError> {
        let (texts, queue) = crossbeam_channel::unbounded::<String>();
        let (failed, errors) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("type".to_owned())
            .spawn(move || {
                let mut typer = match typer() {
                    Ok(typer) => typer,
                    Err(e) => {
                        // The texts are in the window's transcript and the history; the owner
                        // of the inserter says what failed (the window, or `type`'s exit).
                        tracing::debug!("cannot type into the focused app: {e}");
                        let _ = failed.send(e);
                        return;
                    }
                };
                // The clipboard lives on this thread: X11 serves the selection from its owner.
                let mut clipboard = match (method, &typer) {
                    (InsertMethod::Paste, Typer::X11(_) | Typer::Portal(_)) => {
                        arboard::Clipboard::new()
                            .map_err(|e| tracing::error!("no clipboard: {e}"))
                            .ok()
                    }
                    _ => None,
                };
                for text in &queue {
                    let done = match clipboard.as_mut() {
                        Some(clipboard) => paste(&mut typer, clipboard, &text),
                        None => typer.type_text(&text),
                    };
                    if let Err(e) = done {
                        tracing::debug!("inserting into the focused app failed: {e}");
                        let _ = failed.send(e);
                    }
                }
            })
            .map_err(|e| DesktopError::X11(e.to_string()))?;
        Ok(Inserter {
            texts,
            errors,
            thread: Some(thread),
        })
    }

    /// Types `text` after everything queued before it.
    pub fn insert(&self, text: &str) {
        // The typing thread lives as long as this handle.
        let _ = self.texts.send(text.to_owned());
    }

    /// A failure on the typing thread since the last asked, if any.
    pub fn failure(&self) -> Option<DesktopError> {
        self.errors.try_recv().ok()
    }

    /// Waits until everything queued is typed (the typing thread ends with this handle); the
    /// first failure, if any.
    pub fn finish(self) -> Result<(), DesktopError> {
        drop(self.texts);
        if let Some(thread) = self.thread {
            let _ = thread.join();
        }
        match self.errors.try_recv() {
            Ok(e) => Err(e),
            Err(_) => Ok(()),
        }
    }
}

const CONTROL_L: u32 = 0xffe3;
const SHIFT_L: u32 = 0xffe1;
const V: u32 = 0x76;

/// What types: XTest, the portal's keyboard, or a typing program.
enum Typer {
    X11(Box<x11::Typist>),
    Portal(portal::Keyboard),
    Program(TypingProgram),
}

/// What types on Wayland when the portal does not.
enum Fallback {
    Program(TypingProgram),
    X11(Box<x11::Typist>),
    Nothing,
}

impl Typer {
    fn type_text(&mut self, text: &str) -> Result<(), DesktopError> {
        match self {
            Typer::X11(typist) => typist.type_text(text),
            Typer::Portal(keyboard) => keyboard.type_text(text),
            Typer::Program(program) => program.type_text(text),
        }
    }

    fn press_combo(&mut self, keysyms: &[u32]) -> Result<(), DesktopError> {
        match self {
            Typer::X11(typist) => typist.press_combo(keysyms),
            Typer::Portal(keyboard) => keyboard.press_combo(keysyms),
            Typer::Program(program) => Err(DesktopError::Program(format!(
                "{} does not paste",
                program.program
            ))),
        }
    }
}

/// Pastes `text` through the clipboard, then puts the previous content back if the clipboard
/// still holds ours.
fn paste(
    typist: &mut Typer,
    clipboard: &mut arboard::Clipboard,
    text: &str,
) -> Result<(), DesktopError> {
    let clip = |e: arboard::Error| DesktopError::X11(format!("clipboard: {e}"));
    let previous = clipboard.get_text().ok();
    clipboard.set_text(text).map_err(clip)?;
    let terminal = x11::focused_class().is_ok_and(|class| {
        [
            "term",
            "konsole",
            "kitty",
            "alacritty",
            "wezterm",
            "foot",
            "tilix",
            "terminator",
        ]
        .iter()
        .any(|name| class.contains(name))
    });
    if terminal {
        typist.press_combo(&[CONTROL_L, SHIFT_L, V])?;
    } else {
        typist.press_combo(&[CONTROL_L, V])?;
    }
    std::thread::sleep(PASTE_SETTLE);
    if let Some(previous) = previous
        && clipboard.get_text().is_ok_and(|now| now == text)
    {
        clipboard.set_text(previous).map_err(clip)?;
    }
    Ok(())
}

/// A command-line typing tool.
#[derive(Debug, Clone, Copy)]
struct TypingProgram {
    program: &'static str,
    args: &'static [&'static str],
}

impl TypingProgram {
    fn type_text(self, text: &str) -> Result<(), DesktopError> {
        let out = std::process::Command::new(self.program)
            .args(self.args)
            .arg(text)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| DesktopError::Program(format!("{} did not run: {e}", self.program)))?;
        if out.status.success() {
            return Ok(());
        }
        // What the program said (its last line: e.g. "Wayland connection failed"), never the
        // text it was given.
        let said = String::from_utf8_lossy(&out.stderr);
        let why = said
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(DesktopError::Program(format!(
            "{} could not type into the focused app ({}{}{})",
            self.program,
            out.status,
            if why.is_empty() { "" } else { ": " },
            why.trim()
        )))
    }
}

/// Whether the app's windows are Wayland windows (winit takes Wayland whenever a Wayland display
/// is named, even with an X display beside it). Wayland gives a client no way to hide a window,
/// keep one from taking the focus or place one above the others.
pub fn on_wayland() -> bool {
    std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

/// On Wayland: `wtype` (wlroots compositors' virtual keyboard), else `ydotool` (uinput, any
/// compositor, needs its daemon), if either is on `PATH`.
fn wayland_typer() -> Option<TypingProgram> {
    if !on_wayland() {
        return None;
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    };
    [
        // `-s 30`: wait 30 ms after creating the virtual keyboard before the first key. Without
        // it the first character was lost in most runs (sway 1.7 + foot: `[one]` typed as
        // `one]`; a known wtype issue); 5 ms was enough there. `--`: a text starting with `-`
        // is text, not an option.
        TypingProgram {
            program: "wtype",
            args: &["-s", "30", "--"],
        },
        TypingProgram {
            program: "ydotool",
            args: &["type"],
        },
    ]
    .into_iter()
    .find(|p| on_path(p.program))
}

/// Who has the keyboard focus, if the display says.
pub fn focus() -> Option<x11::Focus> {
    x11::focus().ok()
}
