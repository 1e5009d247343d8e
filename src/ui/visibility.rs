//! Whether the window is on screen: hidden through start-up with `--background`, hidden when
//! closed to the tray, and what the app knows about it that egui cannot tell (on X11 a hidden
//! window reports no minimised or occluded state).

use std::sync::atomic::Ordering;

use eframe::egui;

use super::app::DictationApp;

/// How long `--background` keeps hiding the window through start-up, from its first pass (a
/// busy machine has shown eframe's late show come more than two seconds after it).
const START_HIDDEN_SECS: f64 = 5.0;

impl DictationApp {
    /// Every pass: closing to the tray, and start-up hiding.
    pub(super) fn keep_hidden(&mut self, ctx: &egui::Context) {
        // With a tray icon, closing the window hides it: dictation by shortcut goes on.
        if self.tray.is_some() && !self.quitting && ctx.input(|i| i.viewport().close_requested()) {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.hide_window(ctx);
        }
        if self.start_hidden && crate::desktop::on_wayland() {
            self.hide_window(ctx);
            self.start_hidden = false;
        }
        if self.start_hidden {
            // Hidden again every 10 ms for START_HIDDEN_SECS from the first pass (not from the
            // process's start: a cold start can take longer than that before its first frame,
            // and eframe's show comes right after that frame): whenever eframe's show comes, the
            // window is unmapped right after (a hidden window runs only this, no drawing). Then
            // no more passes: an idle app in the background costs nothing.
            ctx.send_viewport_cmd(egui::ViewportCommand::Visible(false));
            let now = ctx.input(|i| i.time);
            let since = *self.start_hidden_since.get_or_insert(now);
            if now - since < START_HIDDEN_SECS {
                // 10 ms, not 100: a window eframe maps is seen for at most that long (CI
                // caught one within 100 ms of its show).
                ctx.request_repaint_after(std::time::Duration::from_millis(10));
            } else {
                self.start_hidden = false;
            }
        }
    }

    /// Whether the app has hidden the window (see `hidden`).
    pub(super) fn is_hidden(&self) -> bool {
        self.hidden.load(Ordering::Relaxed)
    }

    /// Records that the app hid or showed the window.
    pub fn set_hidden(&self, hidden: bool) {
        self.hidden.store(hidden, Ordering::Relaxed);
    }

    /// Hides the window (closed to the tray). Wayland has no way to hide a window: it is
    /// minimised instead (GNOME and KDE honour that; sway has no minimised state and leaves it
    /// where it is), and drawn as usual.
    fn hide_window(&self, ctx: &egui::Context) {
        if crate::desktop::on_wayland() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(true));
        } else {
            ctx.send_viewport_cmd(egui::ViewportCommand::Visible(false));
            self.set_hidden(true);
        }
    }

    /// Shows the window, raised and focused.
    pub(super) fn show(&mut self) {
        // Asked to show: start-up hiding (`--background`) is over.
        self.start_hidden = false;
        self.set_hidden(false);
        if let Some(ctx) = self.ctx.get() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Visible(true));
            ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
        }
    }
}
