//! The tray icon: a StatusNotifierItem (KDE, GNOME with the AppIndicator extension, most wlroots
//! bars) with Start/Stop dictation, Show window and Quit; it shows a red dot while listening. With
//! no tray host, or no session bus, there is simply no icon: the app works the same.

use crate::channel::Sink;

use super::DesktopError;

/// What the tray's user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Start a dictation into the focused app, or stop the running one.
    Toggle,
    /// Show the window.
    Show,
    /// Quit the app.
    Quit,
}

struct AppTray {
    listening: bool,
    actions: Sink<TrayAction>,
    idle: ksni::Icon,
    live: ksni::Icon,
}

impl ksni::Tray for AppTray {
    fn id(&self) -> String {
        "lightning-dictate".into()
    }

    fn title(&self) -> String {
        if self.listening {
            "Lightning Dictate: listening".into()
        } else {
            "Lightning Dictate".into()
        }
    }

    fn status(&self) -> ksni::Status {
        if self.listening {
            ksni::Status::NeedsAttention
        } else {
            ksni::Status::Active
        }
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        vec![if self.listening {
            self.live.clone()
        } else {
            self.idle.clone()
        }]
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.actions.send(TrayAction::Show);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        use ksni::menu::StandardItem;
        let item = |label: &str, action: TrayAction| {
            StandardItem {
                label: label.into(),
                activate: Box::new(move |tray: &mut AppTray| tray.actions.send(action)),
                ..StandardItem::default()
            }
            .into()
        };
        vec![
            item(
                if self.listening {
                    "Stop dictation"
                } else {
                    "Start dictation"
                },
                TrayAction::Toggle,
            ),
            item("Show window", TrayAction::Show),
            ksni::MenuItem::Separator,
            item("Quit", TrayAction::Quit),
        ]
    }

    fn watcher_offline(&self, _reason: ksni::OfflineReason) -> bool {
        // Keep the item: a tray host that starts later picks it up.
        true
    }
}

/// The tray icon while it exists.
pub struct Tray {
    handle: ksni::blocking::Handle<AppTray>,
}

impl Tray {
    /// Publishes the icon on the session bus; `actions` gets what the user picks.
    pub fn start(actions: Sink<TrayAction>) -> Result<Tray, DesktopError> {
        use ksni::blocking::TrayMethods as _;
        let (idle, live) = icons();
        let tray = AppTray {
            listening: false,
            actions,
            idle,
            live,
        };
        let handle = tray
            .assume_sni_available(true)
            .spawn()
            .map_err(|e| DesktopError::Tray(e.to_string()))?;
        Ok(Tray { handle })
    }

    /// Shows whether a dictation is listening.
    pub fn set_listening(&self, listening: bool) {
        self.handle.update(|tray| tray.listening = listening);
    }
}

/// The app icon as ARGB32 (network order), and the same with a red dot for "listening".
fn icons() -> (ksni::Icon, ksni::Icon) {
    let (width, height, rgba) =
        match eframe::icon_data::from_png_bytes(include_bytes!("../../assets/icon.png")) {
            Ok(icon) => (icon.width, icon.height, icon.rgba),
            Err(_) => (1, 1, vec![0, 0, 0, 0]),
        };
    let argb = |rgba: &[u8]| {
        rgba.chunks_exact(4)
            .flat_map(|p| [p[3], p[0], p[1], p[2]])
            .collect::<Vec<u8>>()
    };
    let mut live = rgba.clone();
    let (w, h) = (width as usize, height as usize);
    let (cx, cy, r) = (w * 3 / 4, h * 3 / 4, (w.min(h) / 5).max(1));
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x.abs_diff(cx), y.abs_diff(cy));
            if dx * dx + dy * dy <= r * r {
                live[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&[220, 30, 30, 255]);
            }
        }
    }
    let icon = |data| ksni::Icon {
        width: width as i32,
        height: height as i32,
        data,
    };
    (icon(argb(&rgba)), icon(argb(&live)))
}
