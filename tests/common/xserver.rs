//! An X server for tests: Xvfb on a display of the test's own, a window manager, xdotool.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("xdotool is needed: run `bash .ci/test`, which installs it");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The first visible window a `search` finds (e.g. `["--name", "x"]` or `["--pid", "42"]`),
/// asked again every 100 ms until `timeout`. Polled, not `search --sync`: that comes back empty
/// when some other window vanishes in the middle of its search (xdotool stops at the X error),
/// and a cold machine can take seconds to map a first window.
pub fn find_window(display: &str, search: &[&str], timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut args = vec!["search", "--onlyvisible"];
    args.extend_from_slice(search);
    loop {
        let found = xdotool(display, &args);
        if let Some(window) = found.lines().next().filter(|w| !w.is_empty()) {
            return Some(window.to_owned());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A virtual X display, ready when this returns. `-noreset`: an X server resets when its last
/// client leaves (here the readiness probe) and refuses connections meanwhile; on a busy machine
/// the app under test then died with "Failed to open connection to X server" (3 of 200 quick
/// reconnects failed without it, 0 with it).
pub fn start_xvfb(display: &str) -> Killed {
    let xvfb = Killed(
        Command::new("Xvfb")
            .args([
                display,
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is needed: run `bash .ci/test`, which installs it"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Command::new("xdpyinfo")
        .args(["-display", display])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    xvfb
}

/// openbox on `display`: minimising and activating windows then work as on a desktop.
pub fn start_openbox(display: &str) -> Killed {
    let wm = Killed(
        Command::new("openbox")
            .env("DISPLAY", display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openbox is needed: run `bash .ci/test`, which installs it"),
    );
    std::thread::sleep(Duration::from_millis(500));
    wm
}

/// A terminal that writes what is typed into it to `file` (no Enter needed), with the focus.
/// Returns it and its window id.
pub fn terminal_with_focus(display: &str, file: &Path) -> (Killed, String) {
    let title = format!("sink-{}", std::process::id());
    let mut term = Killed(
        Command::new("xterm")
            .args(["-title", &title, "-e", "sh", "-c"])
            .arg(format!(
                "stty -icanon -echo; exec cat > '{}'",
                file.display()
            ))
            .env("DISPLAY", display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm is needed: run `bash .ci/test`, which installs it"),
    );
    let window =
        find_window(display, &["--name", &title], Duration::from_secs(30)).unwrap_or_else(|| {
            match term.0.try_wait() {
                Ok(Some(status)) => panic!("xterm ended before its window showed: {status}"),
                _ => panic!("no terminal window"),
            }
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while xdotool(display, &["getwindowfocus"]) != window {
        assert!(
            Instant::now() < deadline,
            "the terminal never got the focus"
        );
        xdotool(display, &["windowactivate", "--sync", &window]);
        std::thread::sleep(Duration::from_millis(200));
    }
    (term, window)
}

/// Starts the app's window from `command` (its arguments given) on `display`, in a clean profile
/// under `profile` (`data/` for the history, `config/` for the settings): no key or service URL
/// from the environment, no Wayland display, output discarded.
pub fn spawn_window(mut command: Command, display: &str, profile: &Path) -> Killed {
    Killed(
        command
            .env("DISPLAY", display)
            .env("XDG_DATA_HOME", profile.join("data"))
            .env("XDG_CONFIG_HOME", profile.join("config"))
            .env_remove("SMALLEST_API_KEY")
            .env_remove("LIGHTNING_URL")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the window"),
    )
}
