//! Dictating into another app, as a user does it: a terminal has the focus, the global shortcut
//! (or `lightning-dictate toggle`) starts and stops a dictation of the app running in the
//! background, and the words land in the terminal. Under Xvfb with openbox, a virtual microphone
//! and the local server's tone words (exact, so every word can be checked).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dbus::SessionBus;
use common::vmic::{DEVICE, VirtualMic};
use common::xserver::{
    Killed, find_window, spawn_window, start_openbox, start_xvfb, terminal_with_focus, xdotool,
};
use common::*;
use lightning_dictate::audio::wav::WavFormat;
use lightning_dictate::server::{BackgroundServer, ServerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

/// An X display with a window manager, a folder, a virtual microphone and the tone server: what
/// every test here starts from.
struct Desk {
    display: String,
    _xvfb: Killed,
    _wm: Killed,
    dir: tempfile::TempDir,
    mic: VirtualMic,
    server: BackgroundServer,
}

impl Desk {
    /// On a display numbered from `base` (tests run in parallel, each on its own).
    fn new(base: u32) -> Desk {
        let display = format!(":{}", base + std::process::id() % 50);
        let xvfb = start_xvfb(&display);
        let wm = start_openbox(&display);
        Desk {
            _xvfb: xvfb,
            _wm: wm,
            display,
            dir: tempfile::tempdir().unwrap(),
            mic: VirtualMic::start(48000, 1, "s16le"),
            server: BackgroundServer::start(ServerConfig::loopback(0)).unwrap(),
        }
    }
}

/// Waits until `file` holds `expected` (or the time is up) and returns what it holds.
fn wait_for_text(file: &Path, expected: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text == expected || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The app in the background on `display`, capturing the virtual microphone, streaming to `url`.
fn background_app(mic: &VirtualMic, display: &str, profile: &Path, url: &str) -> Killed {
    background_app_on(mic, display, profile, url, None)
}

/// The same, on the session bus at `bus` (none: no session bus, so no tray).
fn background_app_on(
    mic: &VirtualMic,
    display: &str,
    profile: &Path,
    url: &str,
    bus: Option<&str>,
) -> Killed {
    background_app_with(mic, display, profile, &["--url", url], bus)
}

/// The app in the background with `args`.
fn background_app_with(
    mic: &VirtualMic,
    display: &str,
    profile: &Path,
    args: &[&str],
    bus: Option<&str>,
) -> Killed {
    let mut command = mic.command(BIN);
    match bus {
        Some(address) => command.env("DBUS_SESSION_BUS_ADDRESS", address),
        None => command.env_remove("DBUS_SESSION_BUS_ADDRESS"),
    };
    command
        .args(["--background", "--device", DEVICE])
        .args(args);
    let app = spawn_window(command, display, profile);
    // Ready when it answers on its control socket.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !control(mic, "status").status.success() {
        assert!(Instant::now() < deadline, "the app never answered `status`");
        std::thread::sleep(Duration::from_millis(200));
    }
    app
}

fn control(mic: &VirtualMic, command: &str) -> std::process::Output {
    mic.command(BIN).arg(command).output().unwrap()
}

fn tone_file(dir: &Path, name: &str, segments: &[&[&str]]) -> PathBuf {
    tone_wav(dir, name, segments, 16000, 1, WavFormat::Int(16)).0
}

#[test]
fn the_shortcut_and_toggle_type_every_word_into_the_focused_terminal_once() {
    let Desk {
        display,
        _xvfb,
        _wm,
        dir,
        mut mic,
        server,
    } = Desk::new(400);
    let app = background_app(&mic, &display, dir.path(), server.url());
    let typed = dir.path().join("typed.txt");
    let (_term, term_window) = terminal_with_focus(&display, &typed);

    // The shortcut, pressed as a person would (XTest events to the server, no target window).
    let first: [&[&str]; 2] = [&["lightning", "dictate", "streams"], &["every", "word"]];
    xdotool(&display, &["key", "ctrl+alt+space"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&control(&mic, "status").stdout).contains("listening") {
        assert!(Instant::now() < deadline, "the shortcut started nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The overlay is up (the app's only visible window: the main one is hidden), and the
    // terminal keeps the focus.
    let app_pid = app.0.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while xdotool(&display, &["search", "--onlyvisible", "--pid", &app_pid]).is_empty() {
        assert!(Instant::now() < deadline, "no overlay while dictating");
        std::thread::sleep(Duration::from_millis(100));
    }
    mic.play(&tone_file(dir.path(), "a.wav", &first));
    mic.wait_played();
    assert_eq!(
        xdotool(&display, &["getwindowfocus"]),
        term_window,
        "the overlay never takes the focus"
    );
    std::thread::sleep(Duration::from_millis(800));
    xdotool(&display, &["key", "ctrl+alt+space"]);
    let expected = "lightning dictate streams every word";
    assert_eq!(
        wait_for_text(&typed, expected, Duration::from_secs(15)),
        expected
    );
    assert_eq!(
        xdotool(&display, &["getwindowfocus"]),
        term_window,
        "the focus stayed on the terminal"
    );

    // `lightning-dictate toggle`, as a compositor's key binding runs it: the same, and the next
    // dictation into the same terminal starts with a space. First the last one is over.
    let deadline = Instant::now() + Duration::from_secs(15);
    while String::from_utf8_lossy(&control(&mic, "status").stdout).trim() != "idle" {
        assert!(Instant::now() < deadline, "the first dictation never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = control(&mic, "toggle");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "started");
    std::thread::sleep(Duration::from_millis(800));
    mic.play(&tone_file(
        dir.path(),
        "b.wav",
        &[&["nothing", "is", "lost"]],
    ));
    mic.wait_played();
    std::thread::sleep(Duration::from_millis(800));
    let out = control(&mic, "toggle");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "stopping");
    let expected = "lightning dictate streams every word nothing is lost";
    assert_eq!(
        wait_for_text(&typed, expected, Duration::from_secs(15)),
        expected
    );
    assert_eq!(xdotool(&display, &["getwindowfocus"]), term_window);
    let status = control(&mic, "status");
    assert_eq!(String::from_utf8_lossy(&status.stdout).trim(), "idle");
}

/// Characters the layout lacks (é, ñ under German) and ones it has elsewhere than US (ü, ß, z/y
/// swapped) are typed right.
#[test]
fn non_ascii_text_is_typed_right_under_a_german_layout() {
    let display = format!(":{}", 450 + std::process::id() % 50);
    let _xvfb = start_xvfb(&display);
    let _wm = start_openbox(&display);
    let layout = Command::new("setxkbmap")
        .arg("de")
        .env("DISPLAY", &display)
        .status()
        .expect("setxkbmap is needed: run `bash .ci/test`, which installs it");
    assert!(layout.success());
    let dir = tempfile::tempdir().unwrap();
    let typed = dir.path().join("typed.txt");
    let (_term, _) = terminal_with_focus(&display, &typed);
    let text = "Café über Straße, señor: zwei yaks. 100 € & 50%!";
    let inserter = lightning_dictate::desktop::Inserter::start_on(
        Some(&display),
        lightning_dictate::desktop::InsertMethod::Type,
    )
    .unwrap();
    inserter.insert(text);
    inserter.finish().unwrap();
    assert_eq!(wait_for_text(&typed, text, Duration::from_secs(10)), text);
}

#[test]
fn a_second_launch_shows_the_first_window_and_toggle_without_an_app_says_so() {
    // No app running: one line saying what to do, non-zero.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("toggle")
        .env("XDG_RUNTIME_DIR", empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not running: start it with `lightning-dictate`"),
        "{err}"
    );

    let Desk {
        display,
        _xvfb,
        _wm,
        dir,
        mic,
        server,
    } = Desk::new(500);
    let first = background_app(&mic, &display, dir.path(), server.url());
    let pid = first.0.id().to_string();
    assert!(
        xdotool(&display, &["search", "--onlyvisible", "--pid", &pid]).is_empty(),
        "--background shows no window"
    );
    let second = mic
        .command(BIN)
        .env("DISPLAY", &display)
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .output()
        .unwrap();
    assert!(second.status.success(), "{second:?}");
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));
    let shown = find_window(&display, &["--pid", &pid], Duration::from_secs(20));
    assert!(shown.is_some(), "the first instance's window is shown");
}

/// The tray icon on a session bus (no tray host needed: the item is queried as a host would):
/// Active, NeedsAttention while a dictation listens, and a click shows the window.
#[test]
fn the_tray_icon_shows_listening_and_a_click_shows_the_window() {
    let Desk {
        display,
        _xvfb,
        _wm,
        dir,
        mic,
        server,
    } = Desk::new(550);
    let bus = SessionBus::start(dir.path());
    let app = background_app_on(&mic, &display, dir.path(), server.url(), Some(&bus.address));
    let pid = app.0.id();
    let item = format!("--dest=org.kde.StatusNotifierItem-{pid}-1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bus
        .send(&[
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.ListNames",
        ])
        .contains(&item["--dest=".len()..])
    {
        assert!(
            Instant::now() < deadline,
            "no StatusNotifierItem on the bus"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = || {
        bus.send(&[
            &item,
            "/StatusNotifierItem",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.kde.StatusNotifierItem",
            "string:Status",
        ])
    };
    let wait_status = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = status();
            if got.contains(&format!("\"{want}\"")) {
                break;
            }
            assert!(Instant::now() < deadline, "tray status never {want}: {got}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_status("Active");
    assert!(control(&mic, "toggle").status.success());
    wait_status("NeedsAttention");
    assert!(control(&mic, "toggle").status.success());
    wait_status("Active");
    // A click on the icon shows the window.
    let pid = pid.to_string();
    // Nothing of the app on screen: the window is hidden, and the overlay closes on the pass after
    // the dictation's end.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !xdotool(&display, &["search", "--onlyvisible", "--pid", &pid]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "a window of the app stayed on screen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    bus.send(&[
        &item,
        "/StatusNotifierItem",
        "org.kde.StatusNotifierItem.Activate",
        "int32:0",
        "int32:0",
    ]);
    let shown = find_window(&display, &["--pid", &pid], Duration::from_secs(20));
    assert!(shown.is_some());
}

/// Hold-to-talk: key down, speak, key up: the words are typed, and what is said after the release
/// is not recorded.
#[test]
fn hold_to_talk_types_what_was_said_while_held_and_nothing_after() {
    let Desk {
        display,
        _xvfb,
        _wm,
        dir,
        mut mic,
        server,
    } = Desk::new(600);
    let _app = background_app_with(
        &mic,
        &display,
        dir.path(),
        &["--url", server.url(), "--shortcut-mode", "hold"],
        None,
    );
    let typed = dir.path().join("typed.txt");
    let (_term, _) = terminal_with_focus(&display, &typed);
    xdotool(&display, &["keydown", "ctrl+alt+space"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&control(&mic, "status").stdout).contains("listening") {
        assert!(
            Instant::now() < deadline,
            "holding the shortcut started nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    mic.play(&tone_file(
        dir.path(),
        "held.wav",
        &[&["one", "two", "three"]],
    ));
    mic.wait_played();
    std::thread::sleep(Duration::from_millis(500));
    xdotool(&display, &["keyup", "ctrl+alt+space"]);
    // Said after the release: must not be recorded.
    std::thread::sleep(Duration::from_millis(300));
    mic.play(&tone_file(
        dir.path(),
        "after.wav",
        &[&["nothing", "is", "lost"]],
    ));
    mic.wait_played();
    let expected = "one two three";
    assert_eq!(
        wait_for_text(&typed, expected, Duration::from_secs(15)),
        expected
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(std::fs::read_to_string(&typed).unwrap(), expected);
    assert_eq!(
        String::from_utf8_lossy(&control(&mic, "status").stdout).trim(),
        "idle"
    );
}

/// Paste mode: the words go into a toolkit text field through the clipboard (Ctrl+V), and the
/// clipboard holds what it held before once the dictation is done.
#[test]
fn paste_mode_pastes_into_a_text_field_and_restores_the_clipboard() {
    let Desk {
        display,
        _xvfb,
        _wm,
        dir,
        mut mic,
        server,
    } = Desk::new(700);
    let _app = background_app_with(
        &mic,
        &display,
        dir.path(),
        &["--url", server.url(), "--insert", "paste"],
        None,
    );
    // Something the user had copied before.
    let mut copy = Command::new("xclip")
        .args(["-selection", "clipboard"])
        .env("DISPLAY", &display)
        .stdin(Stdio::piped())
        .spawn()
        .expect("xclip is needed: run `bash .ci/test`");
    std::io::Write::write_all(&mut copy.stdin.take().unwrap(), b"what I copied before").unwrap();
    let _ = copy.wait();
    let clipboard = || {
        let out = Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .env("DISPLAY", &display)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(clipboard(), "what I copied before");

    // A Tk text field with the focus, saving its content to a file.
    let field_file = dir.path().join("field.txt");
    let script = format!(
        "import tkinter as tk\n\
         root = tk.Tk(); root.title('paste-field')\n\
         entry = tk.Entry(root, width=80); entry.pack(); entry.focus_force()\n\
         def save():\n    open({file:?}, 'w').write(entry.get()); root.after(100, save)\n\
         root.after(100, save); root.mainloop()\n",
        file = field_file.display().to_string()
    );
    let _field = Killed(
        Command::new("/usr/bin/python3")
            .args(["-c", &script])
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "python3 with tkinter is needed: run `bash .ci/test`, which installs python3-tk",
            ),
    );
    let window = find_window(
        &display,
        &["--name", "paste-field"],
        Duration::from_secs(30),
    )
    .expect("the text field's window");
    let deadline = Instant::now() + Duration::from_secs(10);
    while xdotool(&display, &["getwindowfocus"]) != window {
        assert!(
            Instant::now() < deadline,
            "the text field never got the focus"
        );
        xdotool(&display, &["windowactivate", "--sync", &window]);
        std::thread::sleep(Duration::from_millis(200));
    }

    assert!(control(&mic, "toggle").status.success());
    std::thread::sleep(Duration::from_millis(800));
    mic.play(&tone_file(
        dir.path(),
        "p.wav",
        &[&["text", "appears"], &["every", "word"]],
    ));
    mic.wait_played();
    std::thread::sleep(Duration::from_millis(800));
    assert!(control(&mic, "toggle").status.success());
    let expected = "text appears every word";
    assert_eq!(
        wait_for_text(&field_file, expected, Duration::from_secs(15)),
        expected
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        clipboard(),
        "what I copied before",
        "the clipboard is put back"
    );
}

/// On Wayland with no X display the text goes through `wtype` (or `ydotool`) when installed;
/// with neither, one line says what to install. (A stand-in `wtype` records the text it is given;
/// `tests/wayland.rs` types through the real one on a real compositor.)
#[test]
fn with_no_x_display_wayland_typing_goes_through_wtype() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.path().join("wtype.txt");
    let wtype = bin.join("wtype");
    std::fs::write(
        &wtype,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do last=\"$a\"; done; printf '%s\\n' \"$last\" >> '{}'\n",
            record.display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&wtype).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&wtype, permissions).unwrap();
    let run = |path: &Path| {
        Command::new(BIN)
            .args(["type", "Grüße aus Köln, señor"])
            .env_remove("DISPLAY")
            .env("WAYLAND_DISPLAY", "wayland-test")
            .env("PATH", path)
            .output()
            .unwrap()
    };
    let out = run(&bin);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        "Grüße aus Köln, señor\n"
    );
    let out = run(&dir.path().join("nothing-here"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("neither wtype nor ydotool is installed"),
        "{err}"
    );
}
