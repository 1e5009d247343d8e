//! X11: typing text into the focused app with XTest, and the global shortcut as a passive key
//! grab on the root window. Pure Rust over the X protocol (x11rb), no libxdo.
//!
//! Typing works whatever the keyboard layout: a character the layout has (on its first or shifted
//! level) is typed with its own key; any other (é under a US layout, ß, emoji) is typed by mapping
//! a spare keycode to its keysym for one key press, as xdotool does, then mapping it back.

use std::time::Duration;

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    self, ConnectionExt as _, GrabMode, Keycode, Keysym, ModMask, Window,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::DesktopError;

const KEY_PRESS: u8 = 2;
const KEY_RELEASE: u8 = 3;
const SHIFT_L: Keysym = 0xffe1;
/// After a key whose mapping was changed, how long the focused client gets to read the event
/// before the spare keycode means something else (xdotool waits 12 ms between keys).
const REMAP_SETTLE: Duration = Duration::from_millis(25);

fn x11(e: impl std::fmt::Display) -> DesktopError {
    DesktopError::X11(e.to_string())
}

/// The server's keyboard mapping: keysyms per keycode.
struct Keymap {
    min_keycode: Keycode,
    per_keycode: usize,
    keysyms: Vec<Keysym>,
}

impl Keymap {
    fn read(conn: &RustConnection) -> Result<Keymap, DesktopError> {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let reply = conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        Ok(Keymap {
            min_keycode: min,
            per_keycode: usize::from(reply.keysyms_per_keycode).max(1),
            keysyms: reply.keysyms,
        })
    }

    /// The keycode and level (0 plain, 1 shifted) that produce `keysym`.
    fn find(&self, keysym: Keysym) -> Option<(Keycode, usize)> {
        self.keysyms
            .chunks(self.per_keycode)
            .enumerate()
            .find_map(|(i, syms)| {
                syms.iter()
                    .take(2)
                    .position(|&s| s == keysym)
                    .map(|level| (self.min_keycode + i as u8, level))
            })
    }

    /// A keycode with no keysyms at all (the highest).
    fn spare(&self) -> Option<Keycode> {
        self.keysyms
            .chunks(self.per_keycode)
            .enumerate()
            .rev()
            .find(|(_, syms)| syms.iter().all(|&s| s == 0))
            .map(|(i, _)| self.min_keycode + i as u8)
    }
}

/// Types text into whatever has the keyboard focus.
pub struct Typist {
    conn: RustConnection,
    root: Window,
    keymap: Keymap,
    /// A keycode with no keysyms, borrowed for characters the layout lacks.
    spare: Option<Keycode>,
    shift: Option<Keycode>,
}

impl Typist {
    /// Connects to `display` (`None`: `$DISPLAY`) and checks that XTest is there.
    pub fn connect(display: Option<&str>) -> Result<Typist, DesktopError> {
        let (conn, screen) = connect(display)?;
        conn.xtest_get_version(2, 2)
            .map_err(x11)?
            .reply()
            .map_err(|_| DesktopError::X11("the X server has no XTest extension".to_owned()))?;
        let root = conn.setup().roots[screen].root;
        let keymap = Keymap::read(&conn)?;
        Ok(Typist {
            root,
            spare: keymap.spare(),
            shift: keymap.find(SHIFT_L).map(|(code, _)| code),
            keymap,
            conn,
        })
    }

    fn key(&self, keycode: Keycode, press: bool) -> Result<(), DesktopError> {
        let kind = if press { KEY_PRESS } else { KEY_RELEASE };
        self.conn
            .xtest_fake_input(kind, keycode, x11rb::CURRENT_TIME, self.root, 0, 0, 0)
            .map_err(x11)?;
        Ok(())
    }

    /// Whether any key is physically down.
    fn key_held(&self) -> Result<bool, DesktopError> {
        let keys = self
            .conn
            .query_keymap()
            .map_err(x11)?
            .reply()
            .map_err(x11)?
            .keys;
        Ok(keys.iter().any(|&bits| bits != 0))
    }

    /// Waits (up to `limit`) until no key is held. Typed while Ctrl+Alt are down (the
    /// hold-to-talk shortcut) every character would be a key chord, and while the shortcut's own
    /// key is down its passive grab is active, so every key event would come back to us instead
    /// of reaching the focused app.
    fn wait_for_keys_released(&self, limit: Duration) -> Result<(), DesktopError> {
        let deadline = std::time::Instant::now() + limit;
        while self.key_held()? && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Types `text` (every character, spaces included) into the focused window, once no key is
    /// held.
    pub fn type_text(&mut self, text: &str) -> Result<(), DesktopError> {
        self.wait_for_keys_released(Duration::from_mins(2))?;
        for c in text.chars() {
            let keysym = keysym_of(c);
            let direct = self
                .keymap
                .find(keysym)
                .filter(|(_, level)| *level == 0 || self.shift.is_some());
            if let Some((keycode, level)) = direct {
                let shift = self.shift.filter(|_| level == 1);
                if let Some(shift) = shift {
                    self.key(shift, true)?;
                }
                self.key(keycode, true)?;
                self.key(keycode, false)?;
                if let Some(shift) = shift {
                    self.key(shift, false)?;
                }
            } else {
                let spare = self.spare.ok_or_else(|| {
                    DesktopError::X11(
                        "no spare keycode to type characters the layout lacks".to_owned(),
                    )
                })?;
                let per = self.keymap.per_keycode;
                let syms = vec![keysym; per];
                self.conn
                    .change_keyboard_mapping(1, spare, per as u8, &syms)
                    .map_err(x11)?;
                self.sync()?;
                self.key(spare, true)?;
                self.key(spare, false)?;
                self.sync()?;
                std::thread::sleep(REMAP_SETTLE);
                let empty = vec![0; per];
                self.conn
                    .change_keyboard_mapping(1, spare, per as u8, &empty)
                    .map_err(x11)?;
            }
        }
        self.sync()
    }

    /// Presses the keys of `keysyms` in order and releases them in reverse (Ctrl+V is
    /// `[Control_L, v]`), once no key is held.
    pub fn press_combo(&mut self, keysyms: &[Keysym]) -> Result<(), DesktopError> {
        self.wait_for_keys_released(Duration::from_mins(2))?;
        let codes = keysyms
            .iter()
            .map(|&sym| {
                self.keymap
                    .find(sym)
                    .map(|(code, _)| code)
                    .ok_or_else(|| DesktopError::X11(format!("no key for keysym {sym:#x}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for &code in &codes {
            self.key(code, true)?;
        }
        for &code in codes.iter().rev() {
            self.key(code, false)?;
        }
        self.sync()
    }

    /// Waits until the server has processed everything sent.
    fn sync(&self) -> Result<(), DesktopError> {
        self.conn
            .get_input_focus()
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        Ok(())
    }
}

/// Asks XKB to report a held key's repeats as presses only (best effort: without XKB, a held
/// key's repeats look like taps and hold-to-talk acts like toggle).
fn detectable_auto_repeat(conn: &RustConnection) {
    use x11rb::protocol::xkb::{self, ConnectionExt as _};
    let supported = conn
        .xkb_use_extension(1, 0)
        .ok()
        .and_then(|c| c.reply().ok())
        .is_some_and(|r| r.supported);
    if supported {
        let flag = xkb::PerClientFlag::DETECTABLE_AUTO_REPEAT;
        let none = xkb::BoolCtrl::from(0u32);
        let _ = conn
            .xkb_per_client_flags(xkb::ID::USE_CORE_KBD.into(), flag, flag, none, none, none)
            .map(x11rb::cookie::Cookie::reply);
    }
}

/// The size of the default screen, in pixels.
pub fn screen_size() -> Result<(u16, u16), DesktopError> {
    let (conn, screen) = connect(None)?;
    let root = &conn.setup().roots[screen];
    Ok((root.width_in_pixels, root.height_in_pixels))
}

/// The window with the keyboard focus and the process that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Focus {
    pub window: Window,
    /// Its `_NET_WM_PID` (or its nearest ancestor's), when it names one.
    pub pid: Option<u32>,
}

/// Who has the keyboard focus, asked over one connection.
pub fn focus() -> Result<Focus, DesktopError> {
    let (conn, _) = connect(None)?;
    let window = input_focus(&conn)?;
    let atom = conn
        .intern_atom(true, b"_NET_WM_PID")
        .map_err(x11)?
        .reply()
        .map_err(x11)?
        .atom;
    let pid = property_up(&conn, window, atom, xproto::AtomEnum::CARDINAL)?
        .and_then(|p| p.value32().and_then(|mut v| v.next()));
    Ok(Focus { window, pid })
}

/// The class (`WM_CLASS`, both parts, lower case) of the focused window: `xterm xterm`,
/// `gnome-terminal-server gnome-terminal-server`, ...
pub fn focused_class() -> Result<String, DesktopError> {
    let (conn, _) = connect(None)?;
    let window = input_focus(&conn)?;
    let property = property_up(
        &conn,
        window,
        xproto::AtomEnum::WM_CLASS.into(),
        xproto::AtomEnum::STRING,
    )?;
    Ok(property.map_or_else(String::new, |p| {
        String::from_utf8_lossy(&p.value)
            .replace('\0', " ")
            .trim()
            .to_lowercase()
    }))
}

fn input_focus(conn: &RustConnection) -> Result<Window, DesktopError> {
    Ok(conn
        .get_input_focus()
        .map_err(x11)?
        .reply()
        .map_err(x11)?
        .focus)
}

/// A property of `window` or, when it has none, of its nearest ancestor that has it (toolkits
/// often focus a child window).
fn property_up(
    conn: &RustConnection,
    mut window: Window,
    atom: xproto::Atom,
    kind: xproto::AtomEnum,
) -> Result<Option<xproto::GetPropertyReply>, DesktopError> {
    for _ in 0..8 {
        if window == x11rb::NONE || window == 1 {
            break;
        }
        let property = conn
            .get_property(false, window, atom, kind, 0, 256)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        if !property.value.is_empty() {
            return Ok(Some(property));
        }
        let tree = conn.query_tree(window).map_err(x11)?.reply().map_err(x11)?;
        if tree.parent == tree.root {
            break;
        }
        window = tree.parent;
    }
    Ok(None)
}

/// A connection to `display` (`None`: `$DISPLAY`) and its default screen.
fn connect(display: Option<&str>) -> Result<(RustConnection, usize), DesktopError> {
    x11rb::connect(display).map_err(|e| DesktopError::NoDisplay(e.to_string()))
}

/// The X keysym for a character: Latin-1 as itself, control keys by name, the rest as Unicode
/// keysyms (0x0100_0000 + code point), which X servers type since X11R6.
pub fn keysym_of(c: char) -> Keysym {
    match c {
        '\n' => 0xff0d,
        '\t' => 0xff09,
        ' '..='~' | '\u{a0}'..='\u{ff}' => c as u32,
        other => 0x0100_0000 + other as u32,
    }
}

/// A shortcut: modifiers and one key, e.g. `ctrl+alt+space`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortcut {
    pub modifiers: u16,
    pub keysym: Keysym,
    pub text: String,
}

impl Shortcut {
    /// Parses `ctrl+alt+space`, `super+d`, `ctrl+shift+f9`, ...
    pub fn parse(text: &str) -> Result<Shortcut, DesktopError> {
        let mut modifiers = 0u16;
        let mut keysym = None;
        for part in text.split('+').map(|p| p.trim().to_ascii_lowercase()) {
            let modifier = match part.as_str() {
                "ctrl" | "control" => Some(u16::from(ModMask::CONTROL)),
                "alt" => Some(u16::from(ModMask::M1)),
                "shift" => Some(u16::from(ModMask::SHIFT)),
                "super" | "win" | "meta" => Some(u16::from(ModMask::M4)),
                _ => None,
            };
            if let Some(m) = modifier {
                modifiers |= m;
                continue;
            }
            let sym = match part.as_str() {
                "space" => 0x20,
                "enter" | "return" => 0xff0d,
                "tab" => 0xff09,
                "escape" | "esc" => 0xff1b,
                f if f.starts_with('f')
                    && f[1..].parse::<u32>().is_ok_and(|n| (1..=24).contains(&n)) =>
                {
                    0xffbe + f[1..].parse::<u32>().unwrap_or(1) - 1
                }
                single if single.chars().count() == 1 => single.chars().next().map_or(0, keysym_of),
                _ => 0,
            };
            if sym == 0 || keysym.is_some() {
                return Err(DesktopError::BadShortcut(text.to_owned()));
            }
            keysym = Some(sym);
        }
        match keysym {
            Some(keysym) if modifiers != 0 => Ok(Shortcut {
                modifiers,
                keysym,
                text: text.to_owned(),
            }),
            _ => Err(DesktopError::BadShortcut(text.to_owned())),
        }
    }
}

/// A shortcut press or release, as the grab reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortcutEvent {
    Pressed,
    Released,
}

/// An active global shortcut; dropping it releases the keys and ends its thread.
pub struct ShortcutGrab {
    conn: std::sync::Arc<RustConnection>,
    root: Window,
    /// A window of our own, only to wake the event thread when the grab is dropped.
    waker: Window,
    keycode: Keycode,
    modifiers: u16,
}

/// The lock modifiers a passive grab must also cover: none, Caps Lock, Num Lock, both.
fn lock_variants() -> [u16; 4] {
    let (caps, num) = (u16::from(ModMask::LOCK), u16::from(ModMask::M2));
    [0, caps, num, caps | num]
}

impl Drop for ShortcutGrab {
    fn drop(&mut self) {
        for extra in lock_variants() {
            let _ = self.conn.ungrab_key(
                self.keycode,
                self.root,
                ModMask::from(self.modifiers | extra),
            );
        }
        // Wake the thread: it sees its waker's message and ends.
        let message =
            xproto::ClientMessageEvent::new(32, self.waker, xproto::AtomEnum::NONE, [0u32; 5]);
        let _ = self
            .conn
            .send_event(false, self.waker, xproto::EventMask::NO_EVENT, message);
        let _ = self.conn.flush();
    }
}

/// Grabs `shortcut` on the root window (with and without Caps Lock and Num Lock) and reports it on
/// `events` from a thread of its own, until the returned grab is dropped.
pub fn grab(
    shortcut: &Shortcut,
    events: crate::channel::Sink<ShortcutEvent>,
) -> Result<ShortcutGrab, DesktopError> {
    let (conn, screen) = connect(None)?;
    let root = conn.setup().roots[screen].root;
    let (keycode, _) = Keymap::read(&conn)?
        .find(shortcut.keysym)
        .ok_or_else(|| DesktopError::BadShortcut(shortcut.text.clone()))?;
    for extra in lock_variants() {
        conn.grab_key(
            false,
            root,
            ModMask::from(shortcut.modifiers | extra),
            keycode,
            GrabMode::ASYNC,
            GrabMode::ASYNC,
        )
        .map_err(x11)?
        .check()
        .map_err(|_| DesktopError::ShortcutTaken(shortcut.text.clone()))?;
    }
    let waker = conn.generate_id().map_err(x11)?;
    conn.create_window(
        0,
        waker,
        root,
        0,
        0,
        1,
        1,
        0,
        xproto::WindowClass::INPUT_ONLY,
        0,
        &xproto::CreateWindowAux::new(),
    )
    .map_err(x11)?;
    // A held key repeats as press/release pairs; with XKB's detectable auto-repeat it repeats as
    // presses only, and the one release is the real one (what hold-to-talk needs).
    detectable_auto_repeat(&conn);
    conn.flush().map_err(x11)?;
    let conn = std::sync::Arc::new(conn);
    let thread_conn = std::sync::Arc::clone(&conn);
    std::thread::Builder::new()
        .name("shortcut".to_owned())
        .spawn(move || watch(&thread_conn, keycode, waker, &events))
        .map_err(x11)?;
    Ok(ShortcutGrab {
        conn,
        root,
        waker,
        keycode,
        modifiers: shortcut.modifiers,
    })
}

/// The shortcut's event loop: presses and (real) releases, until the waker's message.
fn watch(
    conn: &RustConnection,
    keycode: Keycode,
    waker: Window,
    events: &crate::channel::Sink<ShortcutEvent>,
) {
    use x11rb::protocol::Event;
    let mut held = false;
    let mut next = None;
    loop {
        let event = match next.take() {
            Some(event) => event,
            None => match conn.wait_for_event() {
                Ok(event) => event,
                Err(_) => break,
            },
        };
        match event {
            Event::ClientMessage(m) if m.window == waker => break,
            Event::KeyPress(e) if e.detail == keycode => {
                tracing::debug!(time = e.time, held, "shortcut press");
                if !held {
                    held = true;
                    events.send(ShortcutEvent::Pressed);
                }
            }
            Event::KeyRelease(e) if e.detail == keycode => {
                tracing::debug!(time = e.time, "shortcut release");
                // Without detectable auto-repeat, a repeat is a release followed at once by a
                // press with the same time: not a real release.
                std::thread::sleep(Duration::from_millis(2));
                next = conn.poll_for_event().ok().flatten();
                let repeat = matches!(
                    &next,
                    Some(Event::KeyPress(p)) if p.detail == keycode && p.time == e.time
                );
                if repeat {
                    next = None;
                } else {
                    held = false;
                    events.send(ShortcutEvent::Released);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keysyms_and_shortcuts() {
        assert_eq!(keysym_of('a'), 0x61);
        assert_eq!(keysym_of('é'), 0xe9);
        assert_eq!(keysym_of('ß'), 0xdf);
        assert_eq!(keysym_of('€'), 0x0100_20ac);
        let s = Shortcut::parse("Ctrl+Alt+Space").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.keysym, 0x20);
        assert_eq!(s.modifiers, u16::from(ModMask::CONTROL | ModMask::M1));
        assert_eq!(
            Shortcut::parse("ctrl+f9").map(|s| s.keysym).ok(),
            Some(0xffc6)
        );
        assert!(
            Shortcut::parse("space").is_err(),
            "a shortcut needs a modifier"
        );
        assert!(Shortcut::parse("ctrl+alt+nothing").is_err());
    }
}
