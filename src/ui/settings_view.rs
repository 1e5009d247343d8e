//! The Settings panel: microphone (with a live level), encoding, rate, word timestamps, theme,
//! where speech is recognised, the service and its URL, the API key, the offline models; and the
//! language menu and level meter the main controls share.

use eframe::egui;
use egui::RichText;

use super::api_key_field::ApiKeyField;
use super::io::Job;
use super::settings::{EngineChoice, Service, Settings, Theme};
use crate::protocol::{Encoding, Language, SampleRate};

/// The panel's own state.
#[derive(Default)]
pub struct SettingsPanel {
    /// Input devices as last listed (probing ALSA takes tens of milliseconds: not every frame).
    devices: Option<Vec<String>>,
}

impl SettingsPanel {
    /// The settings grid; returns a keyring job to queue.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        settings: &mut Settings,
        level_dbfs: f32,
        key: &mut ApiKeyField,
        outside: &mut super::outside::Outside,
        models: &mut super::models_view::ModelsPanel,
    ) -> Option<Job> {
        let mut job = None;
        egui::Grid::new("settings").num_columns(2).show(ui, |ui| {
            let mic_label = ui.label("Microphone");
            let current = settings
                .device
                .clone()
                .unwrap_or_else(|| "System default".to_owned());
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("device")
                    .selected_text(current)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut settings.device, None, "System default");
                        let devices = self.devices.get_or_insert_with(|| {
                            crate::audio::devices::list_input_devices()
                                .0
                                .iter()
                                .map(super::super::audio::devices::InputDeviceInfo::full_name)
                                .collect()
                        });
                        for name in devices.iter() {
                            ui.selectable_value(&mut settings.device, Some(name.clone()), name);
                        }
                    })
                    .response
                    .labelled_by(mic_label.id);
                if ui
                    .small_button("Refresh")
                    .on_hover_text("List the devices again")
                    .clicked()
                {
                    self.devices = None;
                }
                level_meter_ui(ui, level_dbfs);
            });
            ui.end_row();

            let encoding_label = ui.label("Encoding");
            let before = settings.encoding;
            egui::ComboBox::from_id_salt("encoding")
                .selected_text(settings.encoding.as_str())
                .show_ui(ui, |ui| {
                    for encoding in Encoding::ALL {
                        ui.selectable_value(&mut settings.encoding, encoding, encoding.as_str());
                    }
                })
                .response
                .labelled_by(encoding_label.id);
            // A-law and µ-law are telephone audio: suggest their rate.
            if settings.encoding != before
                && let Some(rate) = settings.encoding.suggested_rate()
            {
                settings.sample_rate = rate;
            }
            ui.end_row();

            let rate_label = ui.label("Sample rate");
            egui::ComboBox::from_id_salt("sample_rate")
                .selected_text(format!("{} Hz", settings.sample_rate.hz()))
                .show_ui(ui, |ui| {
                    for rate in SampleRate::ALL {
                        ui.selectable_value(
                            &mut settings.sample_rate,
                            rate,
                            format!("{} Hz", rate.hz()),
                        );
                    }
                })
                .response
                .labelled_by(rate_label.id);
            ui.end_row();

            let timestamps_label = ui.label("Word timestamps");
            ui.checkbox(&mut settings.word_timestamps, "")
                .labelled_by(timestamps_label.id);
            ui.end_row();

            ui.label("Theme");
            ui.horizontal(|ui| {
                ui.selectable_value(&mut settings.theme, Theme::System, "System");
                ui.selectable_value(&mut settings.theme, Theme::Light, "Light");
                ui.selectable_value(&mut settings.theme, Theme::Dark, "Dark");
            });
            ui.end_row();

            ui.label("Recognition");
            ui.horizontal(|ui| {
                ui.selectable_value(
                    &mut settings.engine,
                    EngineChoice::Lightning,
                    "Lightning (server URL)",
                )
                .on_hover_text("Smallest AI's Lightning service, or the server at the URL below");
                ui.selectable_value(
                    &mut settings.engine,
                    EngineChoice::OnThisComputer,
                    "On this computer",
                )
                .on_hover_text("The offline Whisper recogniser: no key, no network");
            });
            ui.end_row();

            ui.label("Service");
            ui.horizontal(|ui| {
                let current = Service::of_url(&settings.url);
                for service in Service::ALL {
                    let response = ui.selectable_label(current == service, service.label());
                    if response.clicked()
                        && let Some(url) = service.url()
                    {
                        url.clone_into(&mut settings.url);
                    }
                }
            });
            ui.end_row();

            let url_label = ui.label("Server URL");
            ui.add(egui::TextEdit::singleline(&mut settings.url).desired_width(420.0))
                .labelled_by(url_label.id);
            ui.end_row();

            ui.label("Shortcut");
            ui.horizontal(|ui| {
                if outside.recording {
                    ui.label(RichText::new("Press the new keys… (Esc cancels)").strong());
                } else {
                    match (outside.shortcut_text(), &outside.shortcut_error) {
                        (Some(keys), _) => {
                            ui.label(format!(
                                "{keys}: starts and stops dictation in any app; the words are typed where you work"
                            ));
                        }
                        (None, Some(why)) => {
                            ui.label(RichText::new(why).color(ui.visuals().warn_fg_color));
                        }
                        (None, None) => {
                            ui.label(
                                "bind `lightning-dictate toggle` to a key in your desktop's settings",
                            );
                        }
                    }
                    if ui
                        .small_button("Change…")
                        .on_hover_text("Press a key with Ctrl, Alt or Shift")
                        .clicked()
                    {
                        outside.recording = true;
                    }
                }
            });
            ui.end_row();
            ui.label("Insert into");
            ui.horizontal(|ui| {
                use super::settings::InsertInto;
                let into = &mut settings.insert_into;
                ui.selectable_value(into, InsertInto::Typing, "the focused app, by typing")
                    .on_hover_text("Each final is typed where your cursor is");
                ui.selectable_value(into, InsertInto::Pasting, "the focused app, by pasting")
                    .on_hover_text(
                        "Through the clipboard (Ctrl+V; Ctrl+Shift+V in terminals); the clipboard is put back afterwards",
                    );
                ui.selectable_value(into, InsertInto::WindowOnly, "this window only");
            });
            ui.end_row();
            ui.label("Shortcut mode");
            ui.horizontal(|ui| {
                use super::settings::ShortcutMode;
                ui.selectable_value(&mut settings.shortcut_mode, ShortcutMode::Toggle, "Toggle")
                    .on_hover_text("Press to start, press again to stop");
                ui.selectable_value(
                    &mut settings.shortcut_mode,
                    ShortcutMode::HoldToTalk,
                    "Hold to talk",
                )
                .on_hover_text("Dictate while the keys are held; a short tap still toggles");
            });
            ui.end_row();
            let login_label = ui.label("Start at login");
            let mut on = outside.start_at_login;
            if ui
                .checkbox(&mut on, "in the background (shortcut and tray)")
                .labelled_by(login_label.id)
                .changed()
            {
                job = Some(Job::StartAtLogin(on));
            }
            ui.end_row();
            if let Some(why) = &outside.typing_error {
                ui.label("Typing");
                ui.label(RichText::new(why).color(ui.visuals().warn_fg_color));
                ui.end_row();
            }

            let key_label = ui.label("API key");
            if let Some(key_job) = key.ui(ui, key_label.id) {
                job = Some(key_job);
            }
            ui.end_row();

            ui.label("Offline model");
            models.ui(ui, settings.language);
            ui.end_row();
        });
        job
    }
}

/// The language menu; a language the service cannot stream is greyed, with the reason on hover
/// (and beside the menu when it is the one chosen).
pub fn language_ui(
    ui: &mut egui::Ui,
    language: &mut Language,
    refusal: impl Fn(Language) -> Option<&'static str>,
) {
    let label = ui.label("Language");
    egui::ComboBox::from_id_salt("language")
        .selected_text(format!("{} ({})", language.name(), language.code()))
        .show_ui(ui, |ui| {
            for choice in Language::all() {
                let reason = refusal(choice);
                ui.add_enabled_ui(reason.is_none(), |ui| {
                    ui.selectable_value(
                        language,
                        choice,
                        format!("{} ({})", choice.name(), choice.code()),
                    )
                })
                .response
                .on_disabled_hover_text(reason.unwrap_or_default());
            }
        })
        .response
        .labelled_by(label.id);
    if let Some(reason) = refusal(*language) {
        ui.label(RichText::new("⚠").color(ui.visuals().warn_fg_color))
            .on_hover_text(reason);
    }
}

pub fn level_meter_ui(ui: &mut egui::Ui, dbfs: f32) {
    let fraction = ((dbfs + 60.0) / 60.0).clamp(0.0, 1.0);
    ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(120.0)
            .text(format!("{dbfs:.0} dB")),
    );
}
