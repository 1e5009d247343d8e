//! Automatic language offline in the real window (Xvfb, the virtual microphone, no key, no
//! network): Spanish then German spoken into the microphone, each segment saved with its language
//! (what its badge shows); and English through the window on the multilingual model.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::vmic::{DEVICE, VirtualMic};
use common::xserver::{Killed, find_window, spawn_window, start_xvfb, xdotool};
use lightning_dictate::transcript::Segment;

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

fn base() -> PathBuf {
    let dir = lightning_dictate::models::model_dir("base").unwrap();
    assert!(
        lightning_dictate::models::looks_like_model(&dir),
        "the offline model base is missing at {}: run `lightning-dictate model fetch base` (`bash .ci/test` does)",
        dir.display()
    );
    dir
}

/// `text` in espeak-ng's `voice`, 16 kHz mono, with `pad` seconds of silence after it.
fn speech(dir: &Path, name: &str, voice: &str, text: &str, pad: f64) -> PathBuf {
    let raw = dir.join(format!("{name}.raw.wav"));
    let wav = dir.join(format!("{name}.wav"));
    assert!(
        Command::new("espeak-ng")
            .args(["-v", voice, "-s", "150", "-w"])
            .arg(&raw)
            .arg(text)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("sox")
            .arg(&raw)
            .args(["-r", "16000", "-c", "1", "-b", "16"])
            .arg(&wav)
            .args(["pad", "0.3", &pad.to_string()])
            .status()
            .unwrap()
            .success()
    );
    wav
}

/// The window, dictating offline from the virtual microphone in a clean profile.
fn window(mic: &VirtualMic, display: &str, profile: &Path, args: &[&str]) -> Killed {
    let mut command = mic.command(BIN);
    command
        .args(["--device", DEVICE, "--theme", "light", "--offline"])
        .args(args)
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    spawn_window(command, display, profile)
}

/// Plays `wav` into a dictation started with Ctrl+Space, stops it, and returns the segments the
/// window saved once `done` holds for them.
fn dictate(
    display: &str,
    app: &Killed,
    mic: &mut VirtualMic,
    wav: &Path,
    profile: &Path,
    shot: Option<&str>,
    done: impl Fn(&[Segment]) -> bool,
) -> Vec<Segment> {
    let pid = app.0.id().to_string();
    let window = find_window(display, &["--pid", &pid], Duration::from_secs(30))
        .expect("no window appeared");
    std::thread::sleep(Duration::from_millis(500));
    xdotool(display, &["windowfocus", "--sync", &window]);
    xdotool(display, &["key", "--window", &window, "ctrl+space"]);
    std::thread::sleep(Duration::from_millis(800));
    mic.play(wav);
    mic.wait_played();
    xdotool(display, &["key", "--window", &window, "ctrl+space"]);
    let history = profile.join("data/lightning-dictate/history");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut segments = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        segments = lightning_dictate::history::History::open(&history)
            .map(|h| h.list())
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|saved| saved.transcript.segments)
            .unwrap_or_default();
        if done(&segments) {
            break;
        }
    }
    if let (Some(name), Some(_)) = (shot, std::env::var_os("UPDATE_SCREENSHOT")) {
        let _ = Command::new("import")
            .args(["-window", &window, name])
            .env("DISPLAY", display)
            .status();
    }
    segments
}

fn words_in(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| s.text.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn automatic_in_the_real_window_gives_spanish_then_german_segments_their_languages() {
    let model = base();
    let display = format!(":{}", 450 + std::process::id() % 40);
    let _xvfb = start_xvfb(&display);
    let dir = tempfile::tempdir().unwrap();
    let es = speech(
        dir.path(),
        "es",
        "es",
        "El tren sale de la estación a las ocho de la mañana. Mi hermana vive en una casa pequeña cerca del mar. Los niños juegan en el parque todos los días después de la escuela.",
        1.5,
    );
    let de = speech(
        dir.path(),
        "de",
        "de",
        "Der Zug fährt um acht Uhr morgens vom Bahnhof ab. Meine Schwester wohnt in einem kleinen Haus in der Nähe des Meeres. Morgen besuchen wir unsere Großeltern auf dem Land.",
        0.6,
    );
    let both = dir.path().join("es-de.wav");
    assert!(
        Command::new("sox")
            .arg(&es)
            .arg(&de)
            .arg(&both)
            .status()
            .unwrap()
            .success()
    );
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let app = window(
        &mic,
        &display,
        dir.path(),
        &["--language", "multi", "--model", model.to_str().unwrap()],
    );
    let segments = dictate(
        &display,
        &app,
        &mut mic,
        &both,
        dir.path(),
        Some("assets/screenshot-languages.png"),
        |s| {
            s.iter().any(|s| {
                s.language.as_deref() == Some("de") && s.text.to_lowercase().contains("land")
            })
        },
    );
    let labelled: Vec<(Option<&str>, &str)> = segments
        .iter()
        .filter(|s| !s.text.trim().is_empty())
        .map(|s| (s.language.as_deref(), s.text.as_str()))
        .collect();
    eprintln!("{labelled:?}");
    let first_german = labelled.iter().position(|(l, _)| *l == Some("de"));
    let Some(first_german) = first_german else {
        panic!("no German segment: {labelled:?}");
    };
    assert!(first_german > 0, "Spanish first: {labelled:?}");
    assert!(
        labelled[..first_german]
            .iter()
            .all(|(l, _)| *l == Some("es")),
        "{labelled:?}"
    );
    assert!(
        labelled[first_german..]
            .iter()
            .all(|(l, _)| *l == Some("de")),
        "{labelled:?}"
    );
    let spanish = words_in(&segments[..first_german]);
    assert!(
        ["estación", "hermana", "parque"]
            .iter()
            .filter(|w| spanish.contains(*w))
            .count()
            >= 2,
        "{spanish}"
    );
}

#[test]
fn english_through_the_window_on_the_multilingual_model() {
    let model = base();
    let display = format!(":{}", 490 + std::process::id() % 9);
    let _xvfb = start_xvfb(&display);
    let dir = tempfile::tempdir().unwrap();
    let sentences: Vec<&str> = include_str!("data/sentences.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(8)
        .collect();
    let wav = speech(dir.path(), "en", "en-us", &sentences.join(" "), 0.6);
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let app = window(
        &mic,
        &display,
        dir.path(),
        &["--language", "en", "--model", model.to_str().unwrap()],
    );
    let last_word = sentences
        .last()
        .and_then(|s| s.split_whitespace().last())
        .unwrap()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    let segments = dictate(&display, &app, &mut mic, &wav, dir.path(), None, |s| {
        words_in(s).contains(&last_word)
    });
    let text = words_in(&segments);
    let errors = lightning_dictate::whisper::wer::WordErrors::between(&sentences.join(" "), &text);
    eprintln!(
        "window, base, English: WER {:.1} % ({}/{})\n{text}",
        100.0 * errors.rate(),
        errors.edits,
        errors.words
    );
    assert!(
        errors.rate() <= 0.15,
        "WER {:.1} %: {text}",
        100.0 * errors.rate()
    );
}
