//! Dictation from outside the window: the control socket (`lightning-dictate toggle`), the global
//! shortcut, and typing the finals into the app that had the keyboard focus when it started.

use eframe::egui;

use super::app::{DictationApp, Inbox, waking};
use super::lifecycle::Lifecycle;
use crate::channel::Sink;
use crate::control::{self, Command};
use crate::desktop::ShortcutEvent;
use crate::desktop::{DesktopError, InsertMethod, Inserter};
use crate::session::FinalSegment;

/// Where a dictation's text goes besides the window's transcript.
#[derive(Default)]
pub struct Outside {
    /// The typing thread (and how it inserts), started on the first dictation that needs it and
    /// kept.
    inserter: Option<(InsertMethod, Inserter)>,
    /// The running dictation types into the focused app.
    inserting: bool,
    /// Segments typed so far in this dictation (the next one gets a space first).
    typed: usize,
    /// A dictation has typed into another app before.
    typed_before: bool,
    /// The window the last dictation typed into (`None`: a window nobody names, as on Wayland,
    /// taken for the same one): a new dictation into the same one starts with a space, so
    /// sentences do not run together.
    last_target: Option<u32>,
    /// The window this dictation types into.
    target: Option<u32>,
    /// Why text cannot be typed into other apps, if it cannot (shown in Settings).
    pub typing_error: Option<String>,
    /// Why the global shortcut is not active, if it is not (shown in Settings).
    pub shortcut_error: Option<String>,
    /// The shortcut in use: our keys (`ctrl+alt+space`), or on Wayland the desktop's own
    /// description of the keys it gave.
    pub shortcut: Option<String>,
    /// `shortcut` is the desktop's description (shown as it is).
    pub shortcut_described: bool,
    /// An autostart entry runs the app (in the background) at login.
    pub start_at_login: bool,
    /// When the shortcut press that started the running dictation happened.
    pressed_at: Option<std::time::Instant>,
    /// The active global shortcut (dropping it releases the keys).
    grab: Option<crate::desktop::x11::ShortcutGrab>,
    /// On Wayland: the global shortcut held by the desktop's portal (dropping it gives it back).
    portal: Option<crate::desktop::portal::PortalShortcut>,
    /// Settings is waiting for the keys of a new shortcut.
    pub recording: bool,
}

/// A press held at least this long is "hold to talk": its release stops the dictation. Shorter
/// is a tap, which toggles.
const HOLD: std::time::Duration = std::time::Duration::from_millis(400);

impl Outside {
    /// A dictation started from outside: its finals go to the focused app (unless that is this
    /// window, which shows them anyway). Returns a notice when typing is not possible.
    pub fn begin(
        &mut self,
        focus_is_ours: bool,
        focused: Option<u32>,
        into: super::settings::InsertInto,
    ) -> Option<String> {
        use super::settings::InsertInto;
        self.typed = 0;
        self.inserting = false;
        self.target = focused;
        let method = match into {
            InsertInto::WindowOnly => return None,
            InsertInto::Typing => InsertMethod::Type,
            InsertInto::Pasting => InsertMethod::Paste,
        };
        if focus_is_ours {
            return None;
        }
        if self.inserter.as_ref().is_none_or(|(m, _)| *m != method) {
            match Inserter::start_on(None, method) {
                Ok(inserter) => self.inserter = Some((method, inserter)),
                Err(e) => {
                    let message = typing_unavailable(&e);
                    self.typing_error = Some(message.clone());
                    return Some(message);
                }
            }
        }
        self.inserting = true;
        None
    }

    /// On Wayland: asks the desktop for its keyboard now, so that its dialog (the first time)
    /// comes at start rather than over the app the first dictation goes to.
    pub fn prepare(&mut self, into: super::settings::InsertInto) {
        use super::settings::InsertInto;
        let method = match into {
            InsertInto::WindowOnly => return,
            InsertInto::Typing => InsertMethod::Type,
            InsertInto::Pasting => InsertMethod::Paste,
        };
        match Inserter::start_on(None, method) {
            Ok(inserter) => self.inserter = Some((method, inserter)),
            Err(e) => self.typing_error = Some(typing_unavailable(&e)),
        }
    }

    /// The shortcut as the window shows it.
    pub fn shortcut_text(&self) -> Option<String> {
        let keys = self.shortcut.as_deref()?;
        Some(if self.shortcut_described {
            keys.to_owned()
        } else {
            shortcut_label(keys)
        })
    }

    /// A dictation started in the window: its text stays in the window.
    pub fn begin_in_window(&mut self) {
        self.inserting = false;
        self.typed = 0;
    }

    /// Why typing failed since the last asked (the typing thread reports it), as the window
    /// says it. A typer that could not start is dropped: the next dictation asks again.
    pub fn typing_failure(&mut self) -> Option<String> {
        let (_, inserter) = self.inserter.as_ref()?;
        let e = inserter.failure()?;
        let message = typing_unavailable(&e);
        if matches!(
            e,
            DesktopError::NoTyping(_)
                | DesktopError::NothingTypes(_)
                | DesktopError::NoPortal(_)
                | DesktopError::PortalRefused(_)
                | DesktopError::Portal(_)
        ) {
            self.inserter = None;
            self.inserting = false;
        }
        self.typing_error = Some(message.clone());
        Some(message)
    }

    /// Types a final into the focused app: single spaces between segments, each once.
    pub fn on_final(&mut self, segment: &FinalSegment) {
        let text = segment.text.trim();
        if !self.inserting || text.is_empty() {
            return;
        }
        if let Some((_, inserter)) = &self.inserter {
            let continues =
                self.typed > 0 || (self.typed_before && self.target == self.last_target);
            let spaced = if continues {
                format!(" {text}")
            } else {
                text.to_owned()
            };
            inserter.insert(&spaced);
            self.typed += 1;
        }
    }

    /// The dictation is over.
    pub fn end(&mut self) {
        if self.inserting && self.typed > 0 {
            self.last_target = self.target;
            self.typed_before = true;
        }
        self.inserting = false;
    }
}

/// Why there is no global shortcut, and what to do instead.
fn bind_instead(why: &dyn std::fmt::Display) -> String {
    format!(
        "{why}: bind `lightning-dictate toggle` to a key in your desktop's keyboard settings instead"
    )
}

fn typing_unavailable(e: &DesktopError) -> String {
    format!("Cannot type into other apps: {e}: the text is in this window; use Copy")
}

impl DictationApp {
    /// Where control-socket requests go (answered from `logic`, also with no window shown).
    pub fn control_sink(&self) -> Sink<control::Request> {
        waking(&self.inbox_tx, &self.ctx).map(Inbox::Control)
    }

    /// Where the global shortcut's presses go.
    pub fn shortcut_sink(&self) -> Sink<ShortcutEvent> {
        waking(&self.inbox_tx, &self.ctx).map(Inbox::Shortcut)
    }
    /// Starts a dictation into the app with the keyboard focus, or stops the running one.
    pub fn toggle_from_outside(&mut self) {
        let starting = !self.is_dictating();
        if starting {
            // Never typed into our own window: its text is there already.
            let focus = crate::desktop::focus();
            // On Wayland nobody is told who has the focus, but a window knows whether it has.
            let ours = focus.is_some_and(|f| f.pid == Some(std::process::id()))
                || (crate::desktop::on_wayland() && self.window_focused());
            let focused = focus.map(|f| f.window);
            if let Some(notice) = self.outside.begin(ours, focused, self.settings.insert_into) {
                self.status.notify(notice, 0.0, f64::INFINITY);
            }
        }
        self.toggle_dictation();
        if starting && self.is_dictating() {
            self.open_overlay();
        }
    }

    /// Says in the status line why typing into the focused app failed, if it did.
    pub(super) fn report_typing_failure(&mut self) {
        if let Some(notice) = self.outside.typing_failure() {
            self.status.notify(notice, 0.0, f64::INFINITY);
        }
    }

    /// Whether our window has the keyboard focus.
    fn window_focused(&self) -> bool {
        self.ctx
            .get()
            .is_some_and(|ctx| ctx.input(|i| i.viewport().focused.unwrap_or(false)))
    }

    /// Grabs the shortcut of the settings (default ctrl+alt+space); on failure, Settings says why
    /// and what to bind instead. Returns whether it is active (on Wayland: asked for; the
    /// desktop's answer comes later, to `shortcut_bound`).
    pub fn grab_shortcut(&mut self) -> bool {
        self.outside.grab = None;
        self.outside.portal = None;
        let keys = self
            .settings
            .shortcut
            .clone()
            .unwrap_or_else(|| crate::desktop::DEFAULT_SHORTCUT.to_owned());
        let sink = self.shortcut_sink();
        if crate::desktop::on_wayland() {
            let bound = waking(&self.inbox_tx, &self.ctx).map(Inbox::ShortcutBound);
            self.outside.shortcut = None;
            return match crate::desktop::portal::bind_shortcut(&keys, sink, bound) {
                Ok(portal) => {
                    self.outside.portal = Some(portal);
                    self.outside.shortcut_error =
                        Some("asking the desktop for the shortcut…".to_owned());
                    true
                }
                Err(e) => {
                    self.outside.shortcut_error = Some(bind_instead(&e));
                    false
                }
            };
        }
        match crate::desktop::Shortcut::parse(&keys)
            .and_then(|shortcut| crate::desktop::x11::grab(&shortcut, sink))
        {
            Ok(grab) => {
                self.outside.grab = Some(grab);
                self.outside.shortcut = Some(keys);
                self.outside.shortcut_described = false;
                self.outside.shortcut_error = None;
                true
            }
            Err(e) => {
                self.outside.shortcut = None;
                self.outside.shortcut_error = Some(bind_instead(&e));
                false
            }
        }
    }

    /// The desktop's portal answered the request for the shortcut: the trigger as the desktop
    /// describes it, or why there is none.
    pub(super) fn shortcut_bound(&mut self, answer: Result<String, String>) {
        match answer {
            Ok(description) => {
                let keys = self
                    .settings
                    .shortcut
                    .clone()
                    .unwrap_or_else(|| crate::desktop::DEFAULT_SHORTCUT.to_owned());
                let described = !description.trim().is_empty();
                self.outside.shortcut = Some(if described { description } else { keys });
                self.outside.shortcut_described = described;
                self.outside.shortcut_error = None;
            }
            Err(why) => {
                tracing::warn!("no global shortcut: {why}");
                self.outside.portal = None;
                self.outside.shortcut = None;
                self.outside.shortcut_error = Some(bind_instead(&why));
            }
        }
    }

    /// While Settings records a new shortcut: the first key pressed with a modifier becomes it
    /// (Escape cancels). A combination that cannot be grabbed leaves the old one.
    pub(super) fn record_shortcut(&mut self, ctx: &egui::Context) {
        if !self.outside.recording {
            return;
        }
        let pressed = ctx.input(|i| {
            i.events.iter().find_map(|event| match event {
                egui::Event::Key {
                    key,
                    pressed: true,
                    modifiers,
                    ..
                } => Some((*key, *modifiers)),
                _ => None,
            })
        });
        let Some((key, modifiers)) = pressed else {
            return;
        };
        if key == egui::Key::Escape {
            self.outside.recording = false;
            return;
        }
        let mut parts = Vec::new();
        if modifiers.ctrl {
            parts.push("ctrl");
        }
        if modifiers.alt {
            parts.push("alt");
        }
        if modifiers.shift {
            parts.push("shift");
        }
        if parts.is_empty() {
            // A shortcut needs a modifier: keep listening.
            return;
        }
        let name = key.name().to_ascii_lowercase();
        let keys = format!("{}+{name}", parts.join("+"));
        self.outside.recording = false;
        let previous = self.settings.shortcut.replace(keys);
        if !self.grab_shortcut() {
            let why = self.outside.shortcut_error.clone();
            self.settings.shortcut = previous;
            self.grab_shortcut();
            if let Some(why) = why {
                self.status.notify(why, 0.0, f64::INFINITY);
            }
        }
    }

    /// The shortcut went down: stop a running dictation, or start one into the focused app.
    pub(super) fn shortcut_pressed(&mut self) {
        let starting = !self.is_dictating();
        self.toggle_from_outside();
        self.outside.pressed_at = starting.then(std::time::Instant::now);
    }

    /// The shortcut came up: in hold-to-talk, a press that was held (not tapped) ends the
    /// dictation it started; nothing said after the release is recorded.
    pub(super) fn shortcut_released(&mut self) {
        let held = self
            .outside
            .pressed_at
            .take()
            .is_some_and(|at| at.elapsed() >= HOLD);
        if held
            && self.settings.shortcut_mode == super::settings::ShortcutMode::HoldToTalk
            && self.is_dictating()
        {
            self.toggle_from_outside();
        }
    }

    /// Answers a control request.
    pub(super) fn on_control(&mut self, request: control::Request) {
        let answer = match request.command {
            Command::Toggle => {
                let was = self.is_dictating();
                self.toggle_from_outside();
                if was { "stopping" } else { "started" }.to_owned()
            }
            Command::Start if self.is_dictating() => "already dictating".to_owned(),
            Command::Start => {
                self.toggle_from_outside();
                "started".to_owned()
            }
            Command::Stop if self.is_dictating() => {
                self.toggle_from_outside();
                "stopping".to_owned()
            }
            Command::Stop => "not dictating".to_owned(),
            Command::Status => self.status_word(),
            Command::Show => {
                self.show();
                "shown".to_owned()
            }
        };
        let _ = request.reply.send(answer);
    }

    /// What an empty transcript says: both ways to start.
    pub(super) fn empty_hint(&self) -> String {
        match self.outside.shortcut_text() {
            Some(keys) => format!("Press Ctrl+Space here, or {keys} in any app, and speak."),
            None => "Press Ctrl+Space and speak.".to_owned(),
        }
    }

    /// What `lightning-dictate status` prints.
    fn status_word(&self) -> String {
        match &self.lifecycle {
            Lifecycle::Idle => "idle".to_owned(),
            Lifecycle::Connecting => "connecting".to_owned(),
            Lifecycle::Listening => "listening".to_owned(),
            Lifecycle::Reconnecting { attempt, .. } => format!("reconnecting (attempt {attempt})"),
            Lifecycle::Offline => "listening on this computer".to_owned(),
            Lifecycle::Stopping => "finishing".to_owned(),
            Lifecycle::Failed(failure) => format!("failed: {}", failure.text()),
        }
    }
}

/// `ctrl+alt+space` as people write it: `Ctrl+Alt+Space`.
pub fn shortcut_label(keys: &str) -> String {
    keys.split('+')
        .map(|part| {
            let mut chars = part.trim().chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join("+")
}
