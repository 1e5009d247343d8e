//! The real window under Xvfb, driven like a person: Ctrl+Space, speak (a recording plays into a
//! virtual microphone), Ctrl+Space, Ctrl+Shift+C, and the X clipboard holds the transcript. Also
//! takes the README's screenshot mid-dictation (`UPDATE_SCREENSHOT=1` writes assets/screenshot.png).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::vmic::{DEVICE, VirtualMic};
use common::xserver::{Killed, find_window, spawn_window, start_openbox, start_xvfb, xdotool};
use common::*;
use lightning_dictate::audio::wav::WavFormat;
use lightning_dictate::server::{BackgroundServer, ServerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

/// Focuses the window of process `pid`, presses Ctrl+Space and plays `wav` into the microphone
/// (without waiting for it to end). Returns the window's id.
fn start_dictating(display: &str, pid: u32, mic: &mut VirtualMic, wav: &std::path::Path) -> String {
    let window = focus_window(display, pid);
    xdotool(display, &["key", "--window", &window, "ctrl+space"]);
    std::thread::sleep(Duration::from_millis(800));
    mic.play(wav);
    window
}

/// Saves a picture of `window` to `path`.
fn screenshot(display: &str, window: &str, path: &std::path::Path) {
    let status = Command::new("import")
        .args(["-window", window])
        .arg(path)
        .env("DISPLAY", display)
        .status()
        .expect("imagemagick's import is needed: run `bash .ci/test`");
    assert!(status.success());
    assert!(std::fs::metadata(path).map_or(0, |m| m.len()) > 1000);
}

/// What the X clipboard holds.
fn clipboard(display: &str) -> String {
    let out = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .env("DISPLAY", display)
        .output()
        .expect("xclip is needed: run `bash .ci/test`");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for the window of process `pid`, focuses it, and returns its id.
fn focus_window(display: &str, pid: u32) -> String {
    let pid = pid.to_string();
    let window = find_window(display, &["--pid", &pid], Duration::from_secs(30))
        .expect("no window appeared");
    std::thread::sleep(Duration::from_millis(500));
    xdotool(display, &["windowfocus", "--sync", &window]);
    window
}

#[test]
fn dictate_in_the_real_window_and_paste_the_transcript() {
    let display = format!(":{}", 90 + std::process::id() % 100);
    let _xvfb = start_xvfb(&display);
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = tone_wav(dir.path(), "s.wav", &SCRIPT, 44100, 2, WavFormat::Int(16));
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let app = Killed(
        mic.command(BIN)
            .args([
                "--url",
                server.url(),
                "--device",
                DEVICE,
                "--theme",
                "light",
            ])
            .env("DISPLAY", &display)
            .env_remove("SMALLEST_API_KEY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let window = start_dictating(&display, app.0.id(), &mut mic, &wav);
    // Mid-dictation: the first segment final (black), the second still growing (grey).
    std::thread::sleep(Duration::from_millis(3100));
    let shot = dir.path().join("window.png");
    screenshot(&display, &window, &shot);
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&shot, "assets/screenshot.png").unwrap();
    }
    mic.wait_played();
    xdotool(&display, &["key", "--window", &window, "ctrl+space"]);
    std::thread::sleep(Duration::from_millis(1500));
    xdotool(&display, &["key", "--window", &window, "ctrl+shift+c"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(clipboard(&display), script_text().join(" "));
}

#[test]
fn the_autosave_survives_sigkill_mid_dictation() {
    let display = format!(":{}", 190 + std::process::id() % 50);
    let _xvfb = start_xvfb(&display);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (wav, _) = tone_wav(dir.path(), "s.wav", &SCRIPT, 16000, 1, WavFormat::Int(16));
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let mut app = mic
        .command(BIN)
        .args(["--url", server.url(), "--device", DEVICE])
        .env("DISPLAY", &display)
        .env("XDG_DATA_HOME", &data)
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = app.id().to_string();
    let _window = start_dictating(&display, app.id(), &mut mic, &wav);
    // The first segment is final 1.82 s in, the second 3.56 s in: kill in between, mid-word.
    std::thread::sleep(Duration::from_millis(2900));
    let _ = Command::new("kill").args(["-9", &pid]).status();
    let _ = app.wait();
    let history =
        lightning_dictate::history::History::open(&data.join("lightning-dictate").join("history"))
            .unwrap();
    let saved = history.list();
    assert_eq!(saved.len(), 1, "one autosaved transcript");
    assert_eq!(saved[0].transcript.final_text(), script_text()[0]);
}

/// A fresh install: no key anywhere, the default server URL. The window says it recognises on
/// this computer, and dictation through the offline Whisper recogniser reaches the clipboard.
#[test]
fn with_no_key_the_window_dictates_offline() {
    let model = lightning_dictate::whisper::default_model_dir().expect("HOME is set");
    assert!(
        lightning_dictate::whisper::looks_like_model(&model),
        "the offline model is missing at {}: run `lightning-dictate model fetch tiny.en base` (`bash .ci/test` does)",
        model.display()
    );
    let display = format!(":{}", 250 + std::process::id() % 50);
    let _xvfb = start_xvfb(&display);
    let dir = tempfile::tempdir().unwrap();
    let sentences = "Please call me back when you get home. The children played in the park.";
    let wav = common::vmic::speech_wav(dir.path(), "speech.wav", sentences, 16000);
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    // A clean profile: no saved settings, no history, no key.
    let mut command = mic.command(BIN);
    command
        .args(["--device", DEVICE, "--theme", "light", "--model"])
        .arg(&model)
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    let app = spawn_window(command, &display, dir.path());
    let window = start_dictating(&display, app.0.id(), &mut mic, &wav);
    mic.wait_played();
    let shot = dir.path().join("offline.png");
    screenshot(&display, &window, &shot);
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let _ = std::fs::copy(&shot, "assets/screenshot-offline.png");
    }
    xdotool(&display, &["key", "--window", &window, "ctrl+space"]);
    // The last utterance is recognised after Stop (a debug build on a busy machine can take
    // tens of seconds: the wait ends as soon as the text is there).
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut text = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        xdotool(&display, &["key", "--window", &window, "ctrl+shift+c"]);
        std::thread::sleep(Duration::from_millis(300));
        text = clipboard(&display).to_lowercase();
        if text.contains("park") {
            break;
        }
    }
    for word in [
        "please", "call", "back", "home", "children", "played", "park",
    ] {
        assert!(text.contains(word), "{word:?} missing from {text:?}");
    }
}

/// The service goes away mid-dictation and comes back 3 s later on the same port: the window says
/// it is reconnecting and how much audio it keeps, and the transcript ends up with every word.
#[test]
fn an_outage_mid_dictation_in_the_real_window_loses_nothing() {
    let display = format!(":{}", 300 + std::process::id() % 50);
    let _xvfb = start_xvfb(&display);
    let dir = tempfile::tempdir().unwrap();
    let segments: Vec<Vec<&str>> = SCRIPT
        .iter()
        .chain(SCRIPT.iter())
        .map(|s| s.to_vec())
        .collect();
    let (wav, expected) = script_file(dir.path(), "s.wav", &segments);
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let mut server = ServeProcess::spawn(&["--engine", "tone"]);
    let url = server.url.clone();
    let port = url
        .trim_start_matches("ws://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let app = window_app(
        &mic,
        &display,
        dir.path(),
        &["--url", &url, "--theme", "light"],
    );
    let window = start_dictating(&display, app.0.id(), &mut mic, &wav);
    std::thread::sleep(Duration::from_millis(2500));
    server.kill();
    std::thread::sleep(Duration::from_millis(2500));
    let shot = dir.path().join("outage.png");
    screenshot(&display, &window, &shot);
    if let Some(path) = std::env::var_os("OUTAGE_SCREENSHOT") {
        let _ = std::fs::copy(&shot, path);
    }
    let _server = ServeProcess::spawn(&["--engine", "tone", "--port", &port]);
    mic.wait_played();
    std::thread::sleep(Duration::from_secs(1));
    xdotool(&display, &["key", "--window", &window, "ctrl+space"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        xdotool(&display, &["key", "--window", &window, "ctrl+shift+c"]);
        std::thread::sleep(Duration::from_millis(300));
        got = clipboard(&display)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if got.len() >= expected.len() {
            break;
        }
    }
    let (lost, added) = lost_and_added(&expected, &got);
    assert_eq!(lost, 0, "{got:?}");
    assert!(added <= 1, "{got:?}");
}

/// With a window manager (openbox): start dictating, minimise the window, speak; the saved
/// history holds every word before the window is shown again.
#[test]
fn a_minimised_window_keeps_saving_the_transcript() {
    let display = format!(":{}", 350 + std::process::id() % 50);
    let _xvfb = start_xvfb(&display);
    let _wm = start_openbox(&display);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (wav, _) = tone_wav(dir.path(), "s.wav", &SCRIPT, 16000, 1, WavFormat::Int(16));
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let app = window_app(&mic, &display, dir.path(), &["--url", server.url()]);
    let window = focus_window(&display, app.0.id());
    xdotool(&display, &["key", "--window", &window, "ctrl+space"]);
    std::thread::sleep(Duration::from_millis(800));
    xdotool(&display, &["windowminimize", "--sync", &window]);
    let visible = xdotool(
        &display,
        &["search", "--onlyvisible", "--pid", &app.0.id().to_string()],
    );
    assert!(visible.is_empty(), "the window is still shown: {visible}");
    mic.play(&wav);
    mic.wait_played();
    std::thread::sleep(Duration::from_millis(1500));
    let history =
        lightning_dictate::history::History::open(&data.join("lightning-dictate").join("history"))
            .unwrap();
    let saved = history.list();
    assert_eq!(saved.len(), 1, "one autosaved transcript");
    assert_eq!(saved[0].transcript.final_text(), script_text().join(" "));
    // Still minimised when the history was read.
    let visible = xdotool(
        &display,
        &["search", "--onlyvisible", "--pid", &app.0.id().to_string()],
    );
    assert!(visible.is_empty());
}

/// The window with the virtual microphone, `args` and a clean profile under `profile`.
fn window_app(mic: &VirtualMic, display: &str, profile: &std::path::Path, args: &[&str]) -> Killed {
    let mut command = mic.command(BIN);
    command.args(["--device", DEVICE]).args(args);
    spawn_window(command, display, profile)
}
