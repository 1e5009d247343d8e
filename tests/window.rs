//! The window's behaviour with egui_kittest: widgets found by their accessible labels, clicks and
//! keys, session events fed in as the backend would send them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::sync::{Arc, Mutex};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use lightning_dictate::channel::Sink;
use lightning_dictate::dictation::{DictationEvent, StartError};
use lightning_dictate::protocol::{ApiKey, Language};
use lightning_dictate::session::SessionError;
use lightning_dictate::session::{FinalSegment, SessionEvent, SessionSummary};
use lightning_dictate::ui::app::transcript_layout;
use lightning_dictate::ui::{Backend, DictationApp, Lifecycle, Settings, StartRequest};

/// Records what the window asked of it; fails the next start with `refuse` when set.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>, Arc<Mutex<Option<StartError>>>);

impl Recorder {
    fn calls(&self) -> Vec<String> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Backend for Recorder {
    fn start(
        &mut self,
        request: StartRequest,
        _events: Sink<DictationEvent>,
    ) -> Result<(), StartError> {
        if let Some(e) = self.1.lock().unwrap().take() {
            return Err(e);
        }
        if let Ok(mut calls) = self.0.lock() {
            let place = if request.offline { " offline" } else { "" };
            calls.push(format!("start {}{place}", request.settings.language.code()));
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Ok(mut calls) = self.0.lock() {
            calls.push("stop".to_owned());
        }
    }
}

fn harness(recorder: &Recorder) -> Harness<'static, DictationApp> {
    let backend = recorder.clone();
    Harness::builder()
        // Results from the window's I/O thread (keyring, saves) may land mid-run and ask for a
        // pass or two more.
        .with_max_steps(16)
        .with_size(egui::vec2(820.0, 520.0))
        .build_eframe(move |_cc| DictationApp::new(Settings::default(), Box::new(backend), None))
}

fn final_event(text: &str) -> DictationEvent {
    DictationEvent::Session(SessionEvent::Final(FinalSegment {
        text: text.to_owned(),
        language: Some("en".to_owned()),
        words: Vec::new(),
        span: None,
        is_last: false,
        audio_sent_secs: 1.0,
        unconfirmed: false,
    }))
}

#[test]
fn start_live_text_stop_and_copy() {
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    assert_eq!(h.state().lifecycle, Lifecycle::Idle);
    h.get_by_label("Start dictation").click();
    h.run();
    assert_eq!(recorder.calls(), ["start en offline"]);
    assert!(h.state().is_dictating());
    assert_eq!(h.state().lifecycle, Lifecycle::Connecting);
    h.get_by_label("Stop dictation");

    let events = h.state().event_sender();
    events.send(DictationEvent::Capture(
        lightning_dictate::audio::capture::CaptureEvent::Listening,
    ));
    events.send(final_event("hello world"));
    events.send(DictationEvent::Session(SessionEvent::Interim {
        text: "one two".to_owned(),
    }));
    h.run();
    assert_eq!(h.state().lifecycle, Lifecycle::Listening);
    assert_eq!(h.state().transcript.final_text(), "hello world");
    assert_eq!(h.state().transcript.interim, "one two");

    // Black finals, grey interim, in both themes.
    for visuals in [egui::Visuals::light(), egui::Visuals::dark()] {
        let job = transcript_layout(&h.state().transcript, &visuals, false);
        let colour_of = |needle: &str| {
            job.sections
                .iter()
                .find(|s| job.text[s.byte_range.start.0..s.byte_range.end.0].contains(needle))
                .map(|s| s.format.color)
        };
        assert_eq!(colour_of("hello world"), Some(visuals.strong_text_color()));
        assert_eq!(colour_of("one two"), Some(visuals.weak_text_color()));
        assert_ne!(visuals.strong_text_color(), visuals.weak_text_color());
    }
    assert_eq!(
        egui::Visuals::light().strong_text_color(),
        egui::Color32::BLACK
    );

    // Ctrl+Space stops; the window waits for the last finals.
    h.key_press_modifiers(egui::Modifiers::CTRL, egui::Key::Space);
    h.run();
    assert_eq!(recorder.calls(), ["start en offline", "stop"]);
    assert_eq!(h.state().lifecycle, Lifecycle::Stopping);
    events.send(final_event("one two three"));
    events.send(DictationEvent::Session(SessionEvent::Ended(Ok(
        SessionSummary::default(),
    ))));
    h.run();
    assert_eq!(h.state().lifecycle, Lifecycle::Idle);
    assert!(!h.state().is_dictating());
    assert_eq!(
        h.state().transcript.final_text(),
        "hello world one two three"
    );
    h.get_by_label("Start dictation");

    // Copy: the whole transcript, finals joined with single spaces.
    h.get_by_label("Copy").click();
    h.step();
    let copied: Vec<String> = h
        .output()
        .platform_output
        .commands
        .iter()
        .filter_map(|c| match c {
            egui::OutputCommand::CopyText(text) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(copied, ["hello world one two three"]);
    // Ctrl+Shift+C is checked in the real window (tests/xvfb.rs): kittest's synthetic key events
    // did not reach `consume_key` for it here, while Ctrl+Space did.

    h.get_by_label("Clear").click();
    h.run();
    assert_eq!(h.state().transcript.final_text(), "");
}

/// Every failure the window can meet, in the window's words: what happened, then what to do with
/// this window's controls; never a command-line flag or a script.
#[test]
fn errors_speak_the_windows_words() {
    use lightning_dictate::audio::capture::CaptureError;
    use lightning_dictate::audio::devices::DeviceError;
    use lightning_dictate::dictation::{OfflineError, SourceError};
    use lightning_dictate::whisper::ModelError;

    let no_flags = |h: &Harness<'static, DictationApp>| {
        let Lifecycle::Failed(failure) = &h.state().lifecycle else {
            panic!("not failed: {:?}", h.state().lifecycle);
        };
        let text = failure.text();
        assert!(!text.contains("--") && !text.contains(".ci/"), "{text}");
        text
    };

    // No key, or a refused one: the key field is shown and focused.
    for detail in ["missing API key", "invalid or missing API key"] {
        let recorder = Recorder::default();
        let mut h = harness(&recorder);
        h.get_by_label("Start dictation").click();
        h.run();
        h.state()
            .event_sender()
            .send(DictationEvent::Session(SessionEvent::Ended(Err(
                SessionError::Auth {
                    status: 401,
                    detail: detail.to_owned(),
                },
            ))));
        h.run();
        assert!(!h.state().is_dictating());
        let text = no_flags(&h);
        assert_eq!(
            text,
            format!(
                "The server refused the API key (HTTP 401): {detail}: add your key in Settings"
            )
        );
        h.get_by_label(&text);
        assert!(h.state().show_settings, "Settings opens on the key");
        let field = h.get_by_role_and_label(egui::accesskit::Role::PasswordInput, "API key");
        assert!(field.is_focused(), "the key field has the focus");
    }

    // The server is down.
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    h.get_by_label("Start dictation").click();
    h.run();
    h.state()
        .event_sender()
        .send(DictationEvent::Session(SessionEvent::Ended(Err(
            SessionError::Connect {
                host: "127.0.0.1:9".into(),
                detail: "Connection refused (os error 111)".into(),
            },
        ))));
    h.run();
    let text = no_flags(&h);
    assert!(
        text.ends_with("check the network, or the server URL in Settings"),
        "{text}"
    );
    h.get_by_label(&text);

    // The offline model is missing (found while the dictation starts).
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    h.get_by_label("Start dictation").click();
    h.run();
    let missing = OfflineError::from(ModelError::Missing {
        path: "/home/u/.local/share/lightning-dictate/models/tiny.en".into(),
    });
    h.state()
        .event_sender()
        .send(DictationEvent::Failed(StartError::Offline(missing)));
    h.run();
    assert!(!h.state().is_dictating());
    let text = no_flags(&h);
    assert!(text.starts_with("No Whisper model at /home/u/"), "{text}");
    assert!(
        text.contains("download it in Settings (Offline model)"),
        "{text}"
    );
    h.get_by_label(&text);

    // An unknown microphone: the start itself fails.
    let recorder = Recorder::default();
    *recorder.1.lock().unwrap() = Some(StartError::Source(SourceError::from(
        CaptureError::Device(DeviceError::NotFound {
            wanted: "USB headset".into(),
            available: "PulseAudio: default".into(),
        }),
    )));
    let mut h = harness(&recorder);
    h.get_by_label("Start dictation").click();
    h.run();
    assert!(!h.state().is_dictating());
    let text = no_flags(&h);
    assert!(
        text.ends_with("pick another microphone in Settings"),
        "{text}"
    );
    h.get_by_label(&text);
    h.get_by_label("Start dictation");
}

#[test]
fn the_language_picker_applies_to_the_next_dictation() {
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    h.get_by_label("Language").click();
    h.run();
    h.get_by_label("German (de)").click();
    h.run();
    assert_eq!(
        h.state().settings.language,
        Language::from_code("de").unwrap()
    );
    h.get_by_label("Start dictation").click();
    h.run();
    assert_eq!(recorder.calls(), ["start de offline"]);
}

/// eframe's storage, in memory.
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_persist_without_the_key() {
    let settings = Settings {
        language: Language::MULTI,
        url: "ws://127.0.0.1:9/api/v1/lightning/get_text".to_owned(),
        device: Some("PulseAudio: USB mic".to_owned()),
        sample_rate: lightning_dictate::protocol::SampleRate::Hz8000,
        encoding: lightning_dictate::protocol::Encoding::Mulaw,
        theme: lightning_dictate::ui::Theme::Dark,
        ..Settings::default()
    };
    let mut app = DictationApp::new(
        settings.clone(),
        Box::new(Recorder::default()),
        ApiKey::new("sk-secret-never-stored"),
    );
    let mut storage = MemoryStorage::default();
    eframe::App::save(&mut app, &mut storage);
    let stored: Settings = eframe::get_value(&storage, Settings::KEY).expect("stored");
    assert_eq!(stored, settings);
    assert!(storage.0.values().all(|v| !v.contains("sk-secret")));
}

#[test]
fn finals_are_autosaved_and_exported_and_clear_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let history = lightning_dictate::history::History::open(&dir.path().join("history")).unwrap();
    let recorder = Recorder::default();
    let backend = recorder.clone();
    let history_for_app = history.clone();
    let mut h = Harness::builder()
        // Results from the window's I/O thread (keyring, saves) may land mid-run and ask for a
        // pass or two more.
        .with_max_steps(16)
        .with_size(egui::vec2(820.0, 520.0))
        .build_eframe(move |_cc| {
            DictationApp::new(Settings::default(), Box::new(backend), None)
                .with_history(history_for_app)
        });
    let events = h.state().event_sender();
    events.send(final_event("hello world"));
    events.send(DictationEvent::Session(SessionEvent::Interim {
        text: "not yet final".to_owned(),
    }));
    h.run();
    settle(&mut h);
    let saved = history.list();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].transcript.final_text(), "hello world");
    // The interim is not saved: only what the server confirmed.
    assert_eq!(saved[0].transcript.interim, "");
    events.send(final_event("one two"));
    h.run();
    settle(&mut h);
    assert_eq!(
        history.list()[0].transcript.final_text(),
        "hello world one two"
    );

    for ext in ["txt", "srt", "vtt", "json"] {
        let path = h.state_mut().export(ext).unwrap();
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(body.contains("hello world"), "{ext}: {body}");
    }

    h.get_by_label("Clear").click();
    h.run();
    events.send(final_event("a new one"));
    h.run();
    settle(&mut h);
    let saved = history.list();
    assert_eq!(saved.len(), 2, "the old transcript stays in the history");
    let texts: Vec<String> = saved.iter().map(|s| s.transcript.final_text()).collect();
    assert!(texts.contains(&"hello world one two".to_owned()));
    assert!(texts.contains(&"a new one".to_owned()));
}

#[test]
fn hovering_a_word_shows_its_time() {
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    let word = |w: &str, start: f64, end: f64| lightning_dictate::protocol::WordTimestamp {
        word: w.to_owned(),
        start,
        end,
        confidence: None,
    };
    h.state()
        .event_sender()
        .send(DictationEvent::Session(SessionEvent::Final(FinalSegment {
            text: "hello world".to_owned(),
            language: Some("en".to_owned()),
            words: vec![word("hello", 0.2, 0.4), word("world", 0.48, 0.68)],
            span: None,
            is_last: false,
            audio_sent_secs: 1.0,
            unconfirmed: false,
        })));
    h.run();
    let rect = h.get_by_label("hello world ").rect();
    // Over the last letters of the segment: "world".
    h.hover_at(egui::pos2(rect.right() - 12.0, rect.center().y));
    h.run();
    h.get_by_label("world: 0.48 s – 0.68 s");
    // Over the first letters: "hello".
    h.hover_at(egui::pos2(rect.left() + 6.0, rect.center().y));
    h.run();
    h.get_by_label("hello: 0.20 s – 0.40 s");
}

/// An in-memory keyring, or one that is not there.
#[derive(Clone, Default)]
struct FakeKeyring {
    stored: Arc<Mutex<Option<String>>>,
    unavailable: bool,
}

impl FakeKeyring {
    fn access(&self) -> lightning_dictate::ui::KeyringAccess {
        let (load, save, delete) = (self.clone(), self.clone(), self.clone());
        let down = "no keyring is available (no Secret Service on D-Bus): the key is kept for this session only";
        lightning_dictate::ui::KeyringAccess {
            load: Box::new(move || {
                if load.unavailable {
                    return Err(down.to_owned());
                }
                Ok(load.stored.lock().unwrap().as_deref().and_then(ApiKey::new))
            }),
            save: Box::new(move |key| {
                if save.unavailable {
                    return Err(down.to_owned());
                }
                *save.stored.lock().unwrap() = Some(key.expose().to_owned());
                Ok(())
            }),
            delete: Box::new(move || {
                *delete.stored.lock().unwrap() = None;
                Ok(())
            }),
        }
    }
}

fn harness_with_keyring(
    recorder: &Recorder,
    keyring: &FakeKeyring,
) -> Harness<'static, DictationApp> {
    let backend = recorder.clone();
    let access = keyring.access();
    let access = std::cell::RefCell::new(Some(access));
    Harness::builder()
        // Results from the window's I/O thread (keyring, saves) may land mid-run and ask for a
        // pass or two more.
        .with_max_steps(16)
        .with_size(egui::vec2(820.0, 620.0))
        .build_eframe(move |_cc| {
            let app = DictationApp::new(Settings::default(), Box::new(backend), None);
            match access.borrow_mut().take() {
                Some(access) => app.with_keyring(access),
                None => app,
            }
        })
}

#[test]
fn without_a_key_the_window_dictates_on_this_computer_and_says_so() {
    let recorder = Recorder::default();
    let keyring = FakeKeyring::default();
    let mut h = harness_with_keyring(&recorder, &keyring);
    settle(&mut h);
    assert!(h.state().offline());
    h.get_by_label_contains("on this computer (no API key");
    h.get_by_label("Start dictation").click();
    h.run();
    assert_eq!(recorder.calls(), ["start en offline"]);

    // Choosing "On this computer" keeps it offline even with a key.
    let mut h = harness(&Recorder::default());
    h.get_by_label("Settings").click();
    h.run();
    h.get_by_label("On this computer").click();
    h.run();
    assert_eq!(
        h.state().settings.engine,
        lightning_dictate::ui::settings::EngineChoice::OnThisComputer
    );
    h.get_by_label("Ready · on this computer");
}

#[test]
fn a_typed_key_goes_to_the_keyring_and_comes_back_next_start() {
    let keyring = FakeKeyring::default();
    let recorder = Recorder::default();
    let mut h = harness_with_keyring(&recorder, &keyring);
    settle(&mut h);
    h.get_by_label("Settings").click();
    h.run();
    type_key(&mut h, "sk-typed-key");
    h.get_by_label("Save key").click();
    h.run();
    settle(&mut h);
    assert_eq!(
        keyring.stored.lock().unwrap().as_deref(),
        Some("sk-typed-key")
    );
    h.get_by_label("Saved in the system keyring.");
    // With a key, the default URL means Lightning.
    assert!(!h.state().offline());
    h.get_by_label("Ready · Lightning");

    // The next start finds it.
    let recorder = Recorder::default();
    let mut h = harness_with_keyring(&recorder, &keyring);
    settle(&mut h);
    assert!(!h.state().offline());
    h.get_by_label("Start dictation").click();
    h.run();
    assert_eq!(recorder.calls(), ["start en"]);

    // Forget removes it from the keyring too.
    h.get_by_label("Stop dictation").click();
    h.run();
    h.get_by_label("Settings").click();
    h.run();
    h.get_by_label("Forget").click();
    h.run();
    settle(&mut h);
    assert_eq!(keyring.stored.lock().unwrap().as_deref(), None);
    assert!(h.state().offline());
}

#[test]
fn without_a_keyring_the_key_is_kept_for_the_session_and_the_window_says_so() {
    let keyring = FakeKeyring {
        unavailable: true,
        ..FakeKeyring::default()
    };
    let recorder = Recorder::default();
    let mut h = harness_with_keyring(&recorder, &keyring);
    settle(&mut h);
    h.get_by_label("Settings").click();
    h.run();
    h.get_by_label_contains("key is kept for this session only");
    // The field does not promise a keyring it does not have.
    let field = h.get_by_role_and_label(egui::accesskit::Role::PasswordInput, "API key");
    assert_eq!(
        field.accesskit_node().placeholder(),
        Some("kept for this run only")
    );
    h.get_by_role_and_label(egui::accesskit::Role::PasswordInput, "API key")
        .click();
    h.run();
    h.get_by_role_and_label(egui::accesskit::Role::PasswordInput, "API key")
        .type_text("sk-session-key");
    h.run();
    h.get_by_label("Save key").click();
    h.run();
    settle(&mut h);
    h.get_by_label_contains("key is kept for this session only");
    assert!(
        !h.state().offline(),
        "the typed key is used for this session"
    );
    h.get_by_label("Start dictation").click();
    h.run();
    assert_eq!(recorder.calls(), ["start en"]);
}

#[test]
fn an_outage_shows_the_audio_kept_and_a_gap_is_marked_in_the_transcript() {
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    h.get_by_label("Start dictation").click();
    h.run();
    let events = h.state().event_sender();
    events.send(final_event("before the outage"));
    events.send(DictationEvent::Session(SessionEvent::Reconnecting {
        attempt: 3,
        delay: std::time::Duration::from_secs(2),
        reason: "the connection to the server was lost".to_owned(),
        kept_secs: 14.2,
    }));
    h.run();
    h.get_by_label("Reconnecting… attempt 3, 14 s kept");
    events.send(DictationEvent::Session(SessionEvent::Gap {
        start_secs: 3.0,
        secs: 12.4,
    }));
    events.send(final_event("after the outage"));
    events.send(DictationEvent::Session(SessionEvent::Reconnected {
        attempt: 3,
        replayed_secs: 14.2,
    }));
    h.run();
    assert_eq!(
        h.state().transcript.final_text(),
        "before the outage [… 12 s not transcribed …] after the outage"
    );
    h.get_by_label_contains("[… 12 s not transcribed …]");
    let job = transcript_layout(&h.state().transcript, &egui::Visuals::light(), false);
    let marker = job
        .sections
        .iter()
        .find(|s| job.text[s.byte_range.start.0..s.byte_range.end.0].contains("not transcribed"))
        .expect("the marker is laid out");
    assert_eq!(marker.format.color, egui::Visuals::light().warn_fg_color);
    assert!(marker.format.italics);
}

#[test]
fn the_service_setting_and_a_language_the_live_endpoint_does_not_stream() {
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    h.state_mut().settings.url = "wss://example.com/api/v1/lightning/get_text".to_owned();
    h.get_by_label("Settings").click();
    h.run();
    // A key, so the window speaks to the service rather than recognising offline.
    type_key(&mut h, "sk-typed-key");
    h.get_by_label("Custom URL");
    h.get_by_label("Pulse live").click();
    h.run();
    assert_eq!(
        h.state().settings.url,
        lightning_dictate::protocol::PULSE_LIVE_URL
    );
    // The language menu greys automatic detection, and says why.
    h.get_by_label("Language").click();
    h.run();
    let multi = h.get_by_label("Automatic (multi) (multi)");
    assert!(multi.accesskit_node().is_disabled());
    assert!(!h.get_by_label("German (de)").accesskit_node().is_disabled());
    // Back to the API document's endpoint: every language streams again.
    h.key_press(egui::Key::Escape);
    h.run();
    h.get_by_label("Lightning (API document)").click();
    h.run();
    assert_eq!(
        h.state().settings.url,
        lightning_dictate::protocol::DEFAULT_URL
    );
}

#[test]
fn a_moved_service_offers_a_button_that_switches_to_it() {
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    h.get_by_label("Start dictation").click();
    h.run();
    let events = h.state().event_sender();
    events.send(DictationEvent::Session(SessionEvent::ServiceMoved {
        suggested_url: lightning_dictate::protocol::PULSE_LIVE_URL.to_owned(),
    }));
    events.send(DictationEvent::Session(SessionEvent::Ended(Err(
        SessionError::Moved { status: 404 },
    ))));
    h.run();
    h.get_by_label_contains("Smallest AI no longer serves this address");
    h.get_by_label("Switch to Pulse live").click();
    h.run();
    assert_eq!(
        h.state().settings.url,
        lightning_dictate::protocol::PULSE_LIVE_URL
    );
    assert!(h.query_by_label("Switch to Pulse live").is_none());
}

/// Lets the window's I/O thread finish what was queued (autosaves, the keyring) and shows the
/// result.
fn settle(h: &mut Harness<'static, DictationApp>) {
    h.state_mut().wait_for_io();
    h.run();
}

/// Types `key` into the API key field of the open Settings.
fn type_key(h: &mut Harness<'static, DictationApp>, key: &str) {
    h.get_by_role_and_label(egui::accesskit::Role::PasswordInput, "API key")
        .click();
    h.run();
    h.get_by_role_and_label(egui::accesskit::Role::PasswordInput, "API key")
        .type_text(key);
    h.run();
}

/// Settings → Shortcut → Change…: the next key with a modifier becomes the shortcut; Escape
/// cancels; a combination that cannot be grabbed (here: no X display at all) keeps the old one and
/// says why.
#[test]
fn the_shortcut_recorder_takes_the_next_keys_or_keeps_the_old_shortcut() {
    let recorder = Recorder::default();
    let mut h = harness(&recorder);
    h.get_by_label("Settings").click();
    h.run();
    h.get_by_label("Change…").click();
    h.run();
    h.get_by_label("Press the new keys… (Esc cancels)");
    h.key_press(egui::Key::Escape);
    h.run();
    assert!(
        h.query_by_label("Press the new keys… (Esc cancels)")
            .is_none()
    );
    assert!(!h.state().outside.recording);

    h.get_by_label("Change…").click();
    h.run();
    h.key_press_modifiers(
        egui::Modifiers::CTRL | egui::Modifiers::SHIFT,
        egui::Key::F9,
    );
    h.run();
    assert!(!h.state().outside.recording, "the keys were taken");
    if std::env::var_os("DISPLAY").is_some() {
        // An X display to grab them on: the new shortcut is in use and saved.
        assert_eq!(
            h.state().settings.shortcut.as_deref(),
            Some("ctrl+shift+f9")
        );
        assert_eq!(h.state().outside.shortcut.as_deref(), Some("ctrl+shift+f9"));
    } else {
        // Nothing to grab them on: the old (default) shortcut stays, and the reason shows.
        assert_eq!(h.state().settings.shortcut, None);
        assert!(
            h.state()
                .outside
                .shortcut_error
                .as_deref()
                .is_some_and(|e| e.contains("lightning-dictate toggle")),
            "{:?}",
            h.state().outside.shortcut_error
        );
    }
}
