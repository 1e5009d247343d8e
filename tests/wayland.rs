//! Dictating into another app on a real Wayland compositor: sway (wlroots) running headless, foot
//! (a Wayland terminal) holding the focus, text typed through the real `wtype`, and the app in
//! the background driven by `lightning-dictate toggle` (what a compositor's key binding runs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;
#[path = "common/portal.rs"]
mod portal;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dbus::SessionBus;
use common::vmic::{DEVICE, VirtualMic};
use common::xserver::Killed;
use common::*;
use lightning_dictate::audio::wav::WavFormat;
use lightning_dictate::server::{BackgroundServer, ServerConfig};
use portal::{Answer, MockPortal};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

/// A headless sway with foot running `cat > typed` in it, focused.
struct Sway {
    _dir: tempfile::TempDir,
    /// The Wayland socket (absolute: WAYLAND_DISPLAY may name it so).
    socket: PathBuf,
    ipc: PathBuf,
    typed: PathBuf,
    _compositor: Killed,
    _terminal: Killed,
}

impl Sway {
    fn start() -> Sway {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        let config = dir.path().join("sway.conf");
        std::fs::write(&config, "output HEADLESS-1 resolution 1024x768\n").unwrap();
        // sway refuses to run as root: as root, run it as nobody, in a folder nobody owns.
        let mut command = if is_root() {
            let chown = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success());
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                "sway",
            ]);
            c
        } else {
            Command::new("sway")
        };
        let sway = Killed(
            command
                .arg("-c")
                .arg(&config)
                .env("XDG_RUNTIME_DIR", &runtime)
                .env("HOME", dir.path())
                .env("WLR_BACKENDS", "headless")
                .env("WLR_RENDERER", "pixman")
                .env("WLR_LIBINPUT_NO_DEVICES", "1")
                .env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect(
                    "sway is needed for the Wayland tests: run `bash .ci/test`, which installs it",
                ),
        );
        let find = |prefix: &str, suffix: &str| {
            std::fs::read_dir(&runtime).ok().and_then(|entries| {
                entries.flatten().map(|e| e.path()).find(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with(prefix)
                            && n.ends_with(suffix)
                            && Path::new(n).extension().is_none_or(|e| e != "lock")
                    })
                })
            })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let (socket, ipc) = loop {
            if let (Some(socket), Some(ipc)) = (find("wayland-", ""), find("sway-ipc", ".sock")) {
                break (socket, ipc);
            }
            assert!(Instant::now() < deadline, "sway did not start");
            std::thread::sleep(Duration::from_millis(100));
        };
        let typed = dir.path().join("typed.txt");
        let foot = Killed(
            Command::new("foot")
                .args(["-e", "sh", "-c"])
                .arg(format!("stty -icanon -echo; cat > '{}'", typed.display()))
                .env("WAYLAND_DISPLAY", &socket)
                .env("XDG_RUNTIME_DIR", &runtime)
                .env_remove("DISPLAY")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("foot is needed for the Wayland tests: run `bash .ci/test`"),
        );
        let sway = Sway {
            _dir: dir,
            socket,
            ipc,
            typed,
            _compositor: sway,
            _terminal: foot,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(sway.typed.exists() && sway.focused().as_deref() == Some("foot")) {
            assert!(Instant::now() < deadline, "foot never had the focus");
            std::thread::sleep(Duration::from_millis(100));
        }
        sway
    }

    /// The app id of the window with the keyboard focus.
    fn focused(&self) -> Option<String> {
        let out = self.swaymsg(&["-t", "get_tree"]);
        let tree: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        focused_in(&tree)
    }

    fn swaymsg(&self, args: &[&str]) -> std::process::Output {
        Command::new("swaymsg")
            .arg("-s")
            .arg(&self.ipc)
            .args(args)
            .output()
            .unwrap()
    }

    /// Waits until the terminal's file holds `expected` (or the time is up); what it holds.
    fn wait_for_text(&self, expected: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.typed).unwrap_or_default();
            if text == expected || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The app id of the focused node under `node`.
fn focused_in(node: &serde_json::Value) -> Option<String> {
    if node["focused"] == true {
        return Some(node["app_id"].as_str().unwrap_or("(none)").to_owned());
    }
    ["nodes", "floating_nodes"]
        .iter()
        .filter_map(|k| node[*k].as_array())
        .flatten()
        .find_map(focused_in)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn tone_file(dir: &Path, name: &str, segments: &[&[&str]]) -> PathBuf {
    tone_wav(dir, name, segments, 16000, 1, WavFormat::Int(16)).0
}

/// `lightning-dictate type` through the real wtype into foot: every character, the first one
/// included (wtype's first key was lost in most runs until it waited for its keyboard), and a
/// text starting with `-` is typed, not taken for an option.
#[test]
fn wtype_types_every_character_into_a_wayland_terminal() {
    let sway = Sway::start();
    let text = "-5 degrees in Köln, señor: Grüße! 100 €";
    let out = Command::new(BIN)
        .args(["type", "--", text])
        .env("WAYLAND_DISPLAY", &sway.socket)
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(sway.wait_for_text(text, Duration::from_secs(10)), text);
    // Twice more: each run of wtype makes a new virtual keyboard, where the first key was lost.
    let more = format!("{text} one two");
    for word in [" one", " two"] {
        let out = Command::new(BIN)
            .args(["type", word])
            .env("WAYLAND_DISPLAY", &sway.socket)
            .env_remove("DISPLAY")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(sway.wait_for_text(&more, Duration::from_secs(10)), more);
}

/// The app in the background on Wayland, `toggle` twice with speech-like tone words between:
/// the words land in foot, in order, once, and the focus never leaves it (no overlay window on
/// Wayland: the compositor would have focused it).
#[test]
fn toggle_types_the_dictation_into_the_focused_wayland_terminal() {
    let sway = Sway::start();
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let _app = Killed(
        mic.command(BIN)
            .args(["--background", "--device", DEVICE, "--url", server.url()])
            .env("WAYLAND_DISPLAY", &sway.socket)
            .env_remove("DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_DATA_HOME", profile.path().join("data"))
            .env("XDG_CONFIG_HOME", profile.path().join("config"))
            .env_remove("SMALLEST_API_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let control = |mic: &VirtualMic, command: &str| mic.command(BIN).arg(command).output().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !control(&mic, "status").status.success() {
        assert!(Instant::now() < deadline, "the app never answered `status`");
        std::thread::sleep(Duration::from_millis(200));
    }
    // sway has no hidden or minimised windows: the app's window is tiled beside the terminal
    // and may have taken the focus as it came up. The user clicks back into the terminal.
    std::thread::sleep(Duration::from_secs(1));
    let focus = sway.swaymsg(&["[app_id=foot]", "focus"]);
    assert!(focus.status.success(), "{focus:?}");
    assert_eq!(sway.focused().as_deref(), Some("foot"));

    let out = control(&mic, "toggle");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "started",
        "{out:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&control(&mic, "status").stdout).contains("listening") {
        assert!(Instant::now() < deadline, "the dictation never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = tempfile::tempdir().unwrap();
    mic.play(&tone_file(
        dir.path(),
        "a.wav",
        &[&["lightning", "dictate", "streams"], &["every", "word"]],
    ));
    mic.wait_played();
    assert_eq!(
        sway.focused().as_deref(),
        Some("foot"),
        "nothing took the focus while dictating"
    );
    std::thread::sleep(Duration::from_millis(800));
    let out = control(&mic, "toggle");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "stopping");
    let expected = "lightning dictate streams every word";
    assert_eq!(
        sway.wait_for_text(expected, Duration::from_secs(15)),
        expected
    );
    assert_eq!(sway.focused().as_deref(), Some("foot"));
}

/// `lightning-dictate type` on a Wayland desktop with the RemoteDesktop portal (a stand-in on a
/// private bus; no `wtype` on PATH, no X display): the app registers its id, asks for a keyboard
/// that persists, keeps the desktop's token (mode 0600) and gives it back next time, and types
/// every character as a keysym pressed and released. Refused, or with no portal, it says so.
#[test]
fn the_remote_desktop_portal_types_and_keeps_its_permission() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let bus = SessionBus::start(dir.path());
    let portal = MockPortal::start(&bus.address);
    let data = dir.path().join("data");
    let run = |address: &str, text: &str| portal::type_on_wayland(BIN, address, &data, text);
    let first = "-5 degrees in Köln, señor: Grüße! 100 €";
    let out = run(&bus.address, first);
    assert!(out.status.success(), "{out:?}");
    let log = portal.log();
    assert_eq!(log.typed(), first);
    assert!(
        log.balanced(),
        "every key released after its press: {log:?}"
    );
    assert_eq!(
        log.registered,
        ["dev.lightning_dictate.LightningDictate"],
        "the app id, registered first"
    );
    // A keyboard (1), kept until revoked (2), no token yet.
    assert_eq!(log.selected, [(Some(1), Some(2), None)]);
    let token = data.join("lightning-dictate/portal-restore-token");
    assert_eq!(std::fs::read_to_string(&token).unwrap(), "mock-token-1");
    let mode = std::fs::metadata(&token).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let out = run(&bus.address, " and again");
    assert!(out.status.success(), "{out:?}");
    let log = portal.log();
    assert_eq!(log.typed(), format!("{first} and again"));
    assert_eq!(
        log.selected[1].2.as_deref(),
        Some("mock-token-1"),
        "the kept token given back"
    );
    assert_eq!(std::fs::read_to_string(&token).unwrap(), "mock-token-2");
    assert_eq!(log.closed.len(), 2, "each session closed: {log:?}");

    portal.answer(Answer::Refuse);
    let out = run(&bus.address, "never");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not allow"), "{stderr}");
    assert!(!portal.log().typed().contains("never"));

    // A bus with no portal on it: one line that says so.
    let other = tempfile::tempdir().unwrap();
    let empty = SessionBus::start(other.path());
    let out = run(&empty.address, "never");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no RemoteDesktop portal"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// The app in the background on sway, with a stand-in portal on a private bus, the virtual
/// microphone and the local server; both portal requests made, foot focused again.
struct PortalScene {
    sway: Sway,
    portal: MockPortal,
    mic: VirtualMic,
    audio: tempfile::TempDir,
    _app: Killed,
    _server: BackgroundServer,
    _bus: SessionBus,
    _dir: tempfile::TempDir,
}

impl PortalScene {
    fn start(args: &[&str]) -> PortalScene {
        let sway = Sway::start();
        let dir = tempfile::tempdir().unwrap();
        let bus = SessionBus::start(dir.path());
        let portal = MockPortal::start(&bus.address);
        let mic = VirtualMic::start(48000, 1, "s16le");
        let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
        let app = Killed(
            mic.command(BIN)
                .arg("--background")
                .args(args)
                .args(["--device", DEVICE, "--url", server.url()])
                .env("WAYLAND_DISPLAY", &sway.socket)
                .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
                .env_remove("DISPLAY")
                .env("XDG_DATA_HOME", dir.path().join("data"))
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .env_remove("SMALLEST_API_KEY")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Both asked for at start (the desktop's dialogs come now, not over the user's app).
        let log = portal.wait(Duration::from_secs(20), |log| {
            !log.shortcuts.is_empty() && log.started == 1
        });
        assert_eq!(log.started, 1, "the keyboard asked for at start: {log:?}");
        // sway tiles the app's window beside the terminal; the user clicks back into it.
        std::thread::sleep(Duration::from_secs(1));
        let focus = sway.swaymsg(&["[app_id=foot]", "focus"]);
        assert!(focus.status.success(), "{focus:?}");
        assert_eq!(sway.focused().as_deref(), Some("foot"));
        PortalScene {
            sway,
            portal,
            mic,
            audio: tempfile::tempdir().unwrap(),
            _app: app,
            _server: server,
            _bus: bus,
            _dir: dir,
        }
    }

    fn status(&self) -> String {
        let out = self.mic.command(BIN).arg("status").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits until `status` says what `ready` wants; fails with `what` after 10 s.
    fn wait_status(&self, ready: impl Fn(&str) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready(&self.status()) {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Plays tone words into the microphone and waits until they are played.
    fn say(&mut self, name: &str, segments: &[&[&str]]) {
        let file = tone_file(self.audio.path(), name, segments);
        self.mic.play(&file);
        self.mic.wait_played();
    }
}

/// The app in the background on a Wayland desktop whose portals (a stand-in on a private bus)
/// give it the global shortcut and a keyboard: it asks for Ctrl+Alt+Space in the portal's
/// notation; the desktop's `Activated` (the user pressing the keys in another app) starts a
/// dictation, the next stops it; the words are typed through the portal's keyboard, in order,
/// once; foot keeps the focus throughout.
#[test]
fn the_portal_shortcut_dictates_through_the_portal_keyboard() {
    let mut scene = PortalScene::start(&[]);
    assert_eq!(
        scene.portal.log().shortcuts,
        [(
            "toggle-dictation".to_owned(),
            Some("CTRL+ALT+space".to_owned())
        )]
    );
    // A tap: pressed and let go at once (toggle).
    scene.portal.press();
    scene.portal.release();
    scene.wait_status(
        |s| s.contains("listening"),
        "the shortcut never started a dictation",
    );
    scene.say(
        "a.wav",
        &[&["lightning", "dictate", "streams"], &["every", "word"]],
    );
    std::thread::sleep(Duration::from_millis(800));
    scene.portal.press();
    scene.portal.release();
    let expected = "lightning dictate streams every word";
    let log = scene
        .portal
        .wait(Duration::from_secs(15), |log| log.typed() == expected);
    assert_eq!(log.typed(), expected);
    assert!(log.balanced());
    assert_eq!(log.started, 1, "one keyboard asked for");
    scene.wait_status(|s| s == "idle", "the dictation never ended");
    assert_eq!(scene.sway.focused().as_deref(), Some("foot"));

    // The user stops the remote control in the desktop between two dictations: the next one
    // finds the keyboard gone before typing anything, asks for it again (giving back the kept
    // token, so the desktop need not ask) and types every word, one space after the last.
    scene.portal.end_keyboards();
    scene.portal.press();
    scene.portal.release();
    scene.wait_status(
        |s| s.contains("listening"),
        "the second dictation never started",
    );
    scene.say("b.wav", &[&["nothing", "is", "ever", "lost"]]);
    std::thread::sleep(Duration::from_millis(800));
    scene.portal.press();
    scene.portal.release();
    let expected = "lightning dictate streams every word nothing is ever lost";
    let log = scene
        .portal
        .wait(Duration::from_secs(15), |log| log.typed() == expected);
    assert_eq!(log.typed(), expected);
    assert!(log.balanced());
    assert_eq!(log.refused, 1, "only the first key met the ended session");
    assert_eq!(log.started, 2, "the keyboard asked for again");
    assert_eq!(log.selected[1].2.as_deref(), Some("mock-token-1"));
    scene.wait_status(|s| s == "idle", "the second dictation never ended");
}

/// Hold-to-talk through the portal: the desktop's `Activated` (keys down) starts, its
/// `Deactivated` (keys up, after a hold) stops; the words said while held are typed through the
/// portal's keyboard, and nothing said after the release is.
#[test]
fn hold_to_talk_through_the_portal_shortcut() {
    let mut scene = PortalScene::start(&["--shortcut-mode", "hold"]);
    scene.portal.press();
    scene.wait_status(
        |s| s.contains("listening"),
        "holding the keys never started a dictation",
    );
    scene.say("held.wav", &[&["nothing", "is", "ever"], &["lost"]]);
    std::thread::sleep(Duration::from_millis(800));
    scene.portal.release();
    let expected = "nothing is ever lost";
    let log = scene
        .portal
        .wait(Duration::from_secs(15), |log| log.typed() == expected);
    assert_eq!(log.typed(), expected);
    scene.wait_status(|s| s == "idle", "the release never ended the dictation");
    // Speech after the release is not recorded.
    scene.say("after.wav", &[&["one", "two", "three"]]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(scene.portal.log().typed(), expected);
    assert_eq!(scene.status(), "idle");
}

/// Against the real xdg-desktop-portal (Debian 12's 1.16, on a private bus, no backend for
/// RemoteDesktop and no GlobalShortcuts or host registry at all): `type` with no other way to
/// type says so in one line, at once.
#[test]
fn the_real_portal_service_without_remote_desktop_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bus = SessionBus::start(dir.path());
    let _portal = Killed(
        Command::new("/usr/libexec/xdg-desktop-portal")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xdg-desktop-portal is needed: run `bash .ci/test`, which installs it"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bus
        .send(&[
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.portal.Desktop",
        ])
        .contains("true")
    {
        assert!(
            Instant::now() < deadline,
            "xdg-desktop-portal never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = Instant::now();
    let out = portal::type_on_wayland(BIN, &bus.address, &dir.path().join("data"), "never");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: the desktop offers no RemoteDesktop portal, neither wtype nor ydotool is installed, and there is no X display"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an absent portal is not waited for: {:?}",
        started.elapsed()
    );
}
