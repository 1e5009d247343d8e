//! The overlay: while a dictation started from outside the window runs, a small window near the
//! bottom of the screen, above everything and never taking the keyboard focus (an
//! override-redirect notification window on X11), with the state, a level meter and the last
//! words (finals in the strong colour, the interim in the weak one). A click on it stops the
//! dictation. It goes away when the last final is in.

use std::sync::{Arc, Mutex};

use eframe::egui;
use egui::{RichText, ViewportBuilder, ViewportId};

use crate::channel::Sink;

/// Size of the overlay, in points.
const SIZE: [f32; 2] = [520.0, 64.0];
/// Characters of the transcript's tail shown.
const TAIL: usize = 70;

/// What the overlay shows (shared with its viewport, which egui draws on its own schedule).
#[derive(Debug, Clone, Default)]
pub struct OverlayView {
    pub state: String,
    pub level_dbfs: f32,
    pub finals_tail: String,
    pub interim: String,
}

/// What feeds the overlay, from any thread: its view, and a repaint of the overlay alone.
#[derive(Clone)]
pub struct OverlayFeed {
    view: Arc<Mutex<OverlayView>>,
    repaints: Arc<Mutex<Repaints>>,
    ctx: egui::Context,
}

impl OverlayFeed {
    /// Changes what is shown and asks for a repaint of the overlay only (level and interim
    /// changes at most every [`LEVEL_REPAINT`]).
    pub fn update(&self, change: impl FnOnce(&mut OverlayView)) {
        let (Ok(mut view), Ok(mut repaints)) = (self.view.lock(), self.repaints.lock()) else {
            return;
        };
        let before = view.clone();
        change(&mut view);
        let final_or_state = view.state != before.state || view.finals_tail != before.finals_tail;
        let moved =
            view.interim != before.interim || (view.level_dbfs - before.level_dbfs).abs() >= 1.0;
        let now = std::time::Instant::now();
        if let Some(due) = repaints.due.filter(|&due| due <= now) {
            repaints.painted = Some(due);
            repaints.due = None;
        }
        let rested = repaints
            .painted
            .is_none_or(|at| now.duration_since(at) >= LEVEL_REPAINT);
        if final_or_state || (moved && rested && repaints.due.is_none()) {
            repaints.painted = Some(now);
            repaints.due = None;
            self.ctx.request_repaint_of(Overlay::id());
        } else if moved
            && repaints.due.is_none()
            && let Some(painted) = repaints.painted
        {
            // Shown by one repaint LEVEL_REPAINT after the last (which draws whatever the view
            // holds then); asked once, as each ask wakes the window's event loop.
            let due = painted + LEVEL_REPAINT;
            repaints.due = Some(due);
            self.ctx
                .request_repaint_after_for(due.saturating_duration_since(now), Overlay::id());
        }
    }
}

/// When the overlay was last repainted, and when the next is due if one was asked for.
#[derive(Debug, Default)]
struct Repaints {
    painted: Option<std::time::Instant>,
    due: Option<std::time::Instant>,
}

/// The overlay while it is shown.
pub struct Overlay {
    feed: OverlayFeed,
    clicked: Sink<()>,
    /// Where it goes (top-left, in screen pixels), when the screen size is known.
    position: Option<egui::Pos2>,
}

/// A change of the level or of the interim repaints the overlay at most this often (finals and
/// state at once): under software rendering each repaint is most of what a dictation in the
/// background costs (a dozen round trips to the X server besides the drawing).
const LEVEL_REPAINT: std::time::Duration = std::time::Duration::from_millis(250);

impl Overlay {
    pub fn new(ctx: &egui::Context, clicked: Sink<()>) -> Self {
        let position = crate::desktop::x11::screen_size().ok().map(|(w, h)| {
            egui::pos2(
                (f32::from(w) - SIZE[0]) / 2.0,
                f32::from(h) - SIZE[1] - 72.0,
            )
        });
        Overlay {
            feed: OverlayFeed {
                view: Arc::new(Mutex::new(OverlayView::default())),
                repaints: Arc::default(),
                ctx: ctx.clone(),
            },
            clicked,
            position,
        }
    }

    fn id() -> ViewportId {
        ViewportId::from_hash_of("lightning-dictate-overlay")
    }

    /// What feeds it from the dictation's thread.
    pub fn feed(&self) -> OverlayFeed {
        self.feed.clone()
    }

    /// Changes what is shown and asks for a repaint of the overlay only.
    pub fn update(&self, change: impl FnOnce(&mut OverlayView)) {
        self.feed.update(change);
    }

    /// Keeps the overlay on screen (called on every pass of the main window while it should be).
    pub fn show(&self, ctx: &egui::Context) {
        let mut builder = ViewportBuilder::default()
            .with_title("Lightning Dictate")
            .with_inner_size(SIZE)
            .with_decorations(false)
            .with_resizable(false)
            .with_always_on_top()
            .with_taskbar(false)
            .with_active(false)
            .with_window_type(egui::X11WindowType::Notification)
            // No window manager involvement: never focused, never moved.
            .with_override_redirect(true);
        if let Some(position) = self.position {
            builder = builder.with_position(position);
        }
        let view = Arc::clone(&self.feed.view);
        let clicked = self.clicked.clone();
        ctx.show_viewport_deferred(Self::id(), builder, move |ui, _class| {
            let view = view.lock().map(|v| v.clone()).unwrap_or_default();
            let response = egui::CentralPanel::default()
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(&view.state).strong());
                        super::settings_view::level_meter_ui(ui, view.level_dbfs);
                        ui.label(RichText::new("click to stop").small().weak());
                    });
                    ui.horizontal(|ui| {
                        ui.spacing_mut().item_spacing.x = 0.0;
                        ui.label(RichText::new(&view.finals_tail).strong());
                        ui.label(RichText::new(format!(" {}", view.interim)).weak());
                    });
                })
                .response
                .interact(egui::Sense::click());
            if response.clicked() {
                clicked.send(());
            }
        });
    }
}

/// The last `TAIL` characters of `text`, cut at a word.
pub fn tail(text: &str) -> String {
    let count = text.chars().count();
    if count <= TAIL {
        return text.to_owned();
    }
    let cut: String = text.chars().skip(count - TAIL).collect();
    match cut.split_once(' ') {
        Some((_, rest)) => format!("…{rest}"),
        None => cut,
    }
}
