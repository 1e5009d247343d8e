//! Settings → Offline model: the models with size and languages, which one a dictation in the
//! chosen language runs on, Download (with a progress bar and Cancel) and Remove. A download runs
//! on its own thread and belongs to the window, not to the panel: closing Settings does not stop
//! it, and the main window offers the multilingual model when `Automatic` needs it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use eframe::egui;
use egui::RichText;

use crate::models::{self, Listed, ModelsError, Progress, Stage, Store};
use crate::protocol::Language;

/// Progress repaints at most this often.
const REPAINT_EVERY: Duration = Duration::from_millis(100);

struct Download {
    name: String,
    progress: Arc<Mutex<Option<Progress>>>,
    cancel: Arc<AtomicBool>,
    done: Receiver<Result<(), ModelsError>>,
}

/// The models panel's state, kept by the window for its whole life.
pub struct ModelsPanel {
    store: Result<Store, String>,
    /// As last listed (`None`: list again on the next look).
    rows: Option<Vec<Listed>>,
    download: Option<Download>,
    /// The last download's or removal's outcome, in one line.
    pub message: Option<String>,
    /// A dictation runs (it may be using a model: none is removed meanwhile).
    pub dictating: bool,
    /// The window was started with `--model`: that model is used, whatever is installed.
    pub named_model: bool,
}

impl Default for ModelsPanel {
    fn default() -> Self {
        Self::new(Store::from_env().map_err(|e| e.to_string()))
    }
}

impl ModelsPanel {
    pub fn new(store: Result<Store, String>) -> Self {
        ModelsPanel {
            store,
            rows: None,
            download: None,
            message: None,
            dictating: false,
            named_model: false,
        }
    }

    /// The name of the model being downloaded and how far it is.
    pub fn downloading(&self) -> Option<(&str, Option<Progress>)> {
        self.download.as_ref().map(|d| {
            let progress = d.progress.lock().ok().and_then(|p| *p);
            (d.name.as_str(), progress)
        })
    }

    /// The models as last listed: read from disk once, then again after a download or a removal
    /// (not on every frame).
    fn rows(&mut self) -> &[Listed] {
        let store = self.store.as_ref().ok();
        self.rows
            .get_or_insert_with(|| store.map(Store::list).unwrap_or_default())
    }

    /// The row of the model `name`, as last listed.
    fn row(&mut self, name: &str) -> Option<&Listed> {
        self.rows().iter().find(|r| r.name == name)
    }

    pub fn installed(&mut self, name: &str) -> bool {
        self.row(name).is_some_and(|r| r.installed)
    }

    /// The model a dictation in `language` runs on, if any can.
    pub fn in_use(&mut self, language: Language) -> Option<models::Choice> {
        let rows = self.rows();
        let has = |name: &str| rows.iter().any(|r| r.name == name && r.installed);
        models::choose_among(&has, language).filter(|c| has(c.name))
    }

    /// Takes a finished download's outcome (every pass, shown or not).
    pub fn poll(&mut self) {
        let Some(download) = &self.download else {
            return;
        };
        let Ok(result) = download.done.try_recv() else {
            return;
        };
        let name = download.name.clone();
        self.download = None;
        self.rows = None;
        self.message = Some(match result {
            Ok(()) => format!("{name} is installed"),
            Err(ModelsError::Cancelled) => format!("the download of {name} was cancelled"),
            Err(e) => format!("{e}"),
        });
    }

    /// Starts downloading `name` on its own thread; `ctx` is woken as it goes.
    pub fn start_download(&mut self, name: &str, ctx: &egui::Context) {
        let Ok(store) = self.store.clone() else {
            return;
        };
        if self.download.is_some() {
            return;
        }
        let progress = Arc::new(Mutex::new(None));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, done) = crossbeam_channel::bounded(1);
        let (shared, stop, ctx, owned) = (
            Arc::clone(&progress),
            Arc::clone(&cancel),
            ctx.clone(),
            name.to_owned(),
        );
        let spawned = std::thread::Builder::new()
            .name("model-download".to_owned())
            .spawn(move || {
                let mut last = Instant::now();
                let mut stage = None;
                let result = store.fetch(
                    &owned,
                    &mut |p: Progress| {
                        if let Ok(mut slot) = shared.lock() {
                            *slot = Some(p);
                        }
                        if stage != Some(p.stage) || last.elapsed() >= REPAINT_EVERY {
                            stage = Some(p.stage);
                            last = Instant::now();
                            ctx.request_repaint();
                        }
                    },
                    &stop,
                );
                let _ = tx.send(result.map(|_| ()));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.message = None;
                self.download = Some(Download {
                    name: name.to_owned(),
                    progress,
                    cancel,
                    done,
                });
            }
            Err(e) => self.message = Some(format!("cannot start the download: {e}")),
        }
    }

    pub fn cancel(&self) {
        if let Some(d) = &self.download {
            d.cancel.store(true, Ordering::Relaxed);
        }
    }

    fn remove(&mut self, name: &str) {
        let Ok(store) = &self.store else {
            return;
        };
        self.message = Some(match store.remove(name) {
            Ok(()) => format!("{name} was removed"),
            Err(e) => e.to_string(),
        });
        self.rows = None;
    }

    /// The panel, inside the Settings grid's second column. `language`: the chosen language (for
    /// "in use").
    pub fn ui(&mut self, ui: &mut egui::Ui, language: Language) {
        let dictating = self.dictating;
        if let Err(e) = &self.store {
            ui.label(RichText::new(e).color(ui.visuals().warn_fg_color));
            return;
        }
        let in_use = self.in_use(language).map(|c| c.name);
        // Taken for the frame (the actions below borrow the panel); put back after.
        let rows = self.rows.take().unwrap_or_default();
        let mut action = None;
        ui.vertical(|ui| {
            for row in &rows {
                ui.horizontal(|ui| {
                    ui.label(RichText::new(&row.name).strong());
                    ui.label(format!(
                        "{} · {}",
                        row.languages,
                        models::human_size(row.size)
                    ));
                    let state = if in_use == Some(row.name.as_str()) {
                        "in use"
                    } else if row.installed {
                        "installed"
                    } else {
                        "not installed"
                    };
                    ui.label(RichText::new(state).weak());
                    action = action.take().or(self.row_actions(ui, row, dictating));
                });
            }
            if let Some(message) = &self.message {
                ui.label(RichText::new(message).weak());
            }
        });
        self.rows = Some(rows);
        match action {
            Some(RowAction::Download(name)) => self.start_download(&name, ui.ctx()),
            Some(RowAction::Cancel) => self.cancel(),
            Some(RowAction::Remove(name)) => self.remove(&name),
            None => {}
        }
    }

    fn row_actions(&self, ui: &mut egui::Ui, row: &Listed, dictating: bool) -> Option<RowAction> {
        if let Some((name, progress)) = self.downloading()
            && name == row.name
        {
            progress_ui(ui, progress);
            return ui
                .button("Cancel")
                .on_hover_text(format!("Stop downloading {name}"))
                .clicked()
                .then_some(RowAction::Cancel);
        }
        if row.installed {
            let remove = ui.add_enabled(!dictating, egui::Button::new("Remove"));
            let remove = remove.on_hover_text(format!("Delete {} from this computer", row.name));
            return remove
                .clicked()
                .then(|| RowAction::Remove(row.name.clone()));
        }
        if !row.known {
            return None;
        }
        let free = self.download.is_none();
        let button = ui.add_enabled(free, egui::Button::new("Download"));
        button
            .on_hover_text(format!(
                "Download {} ({}) and install it",
                row.name,
                models::human_size(row.download_size)
            ))
            .clicked()
            .then(|| RowAction::Download(row.name.clone()))
    }
}

enum RowAction {
    Download(String),
    Cancel,
    Remove(String),
}

/// A download's progress bar, labelled with what it is doing.
pub fn progress_ui(ui: &mut egui::Ui, progress: Option<Progress>) {
    let (fraction, text) = match progress {
        Some(p) if p.total > 0 => {
            let fraction = p.done as f32 / p.total as f32;
            let text = match p.stage {
                Stage::Downloading { .. } => format!(
                    "Downloading {:.0} % of {}",
                    100.0 * fraction,
                    models::human_size(p.total)
                ),
                Stage::Installing => format!("Installing {:.0} %", 100.0 * fraction),
            };
            (fraction, text)
        }
        _ => (0.0, "Starting the download…".to_owned()),
    };
    ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(200.0)
            .text(text),
    );
}

impl ModelsPanel {
    /// Under the status line: when the next dictation runs offline in a language the installed
    /// models cannot serve (or `Automatic` would be English only), the offer to download the
    /// multilingual model, and its progress once started.
    /// `settings_open`: the panel shows the outcome line then, not the offer.
    pub fn offer_ui(
        &mut self,
        ui: &mut egui::Ui,
        language: Language,
        offline: bool,
        settings_open: bool,
    ) {
        let multilingual = models::MULTILINGUAL;
        let needed = offline
            && !self.named_model
            && language.code() != "en"
            && self.store.is_ok()
            && !self.installed(multilingual);
        if !needed {
            return;
        }
        let download_size = self.row(multilingual).map_or(0, |r| r.download_size);
        let mut action = None;
        ui.horizontal(|ui| {
            let what = if language.is_multi() {
                "Automatic recognises English only on this computer until the multilingual model is installed".to_owned()
            } else {
                format!(
                    "{} on this computer needs the multilingual model",
                    language.name()
                )
            };
            ui.label(RichText::new(what).color(ui.visuals().warn_fg_color));
            match self.downloading() {
                Some((name, progress)) if name == multilingual => {
                    progress_ui(ui, progress);
                    if ui.button("Cancel").clicked() {
                        action = Some(RowAction::Cancel);
                    }
                }
                _ => {
                    let size = models::human_size(download_size);
                    let free = self.download.is_none();
                    if ui
                        .add_enabled(
                            free,
                            egui::Button::new(format!("Download {multilingual} ({size})")),
                        )
                        .clicked()
                    {
                        action = Some(RowAction::Download(multilingual.to_owned()));
                    }
                }
            }
        });
        if let Some(message) = self.message.as_ref().filter(|_| !settings_open) {
            ui.label(RichText::new(message).weak());
        }
        match action {
            Some(RowAction::Download(name)) => self.start_download(&name, ui.ctx()),
            Some(RowAction::Cancel) => self.cancel(),
            _ => {}
        }
    }
}
