//! The API key in a real OS keyring: a private D-Bus session bus with GNOME Keyring as the
//! Secret Service, driven through `lightning-dictate key save|status|forget` (the same store the
//! window uses). Needs dbus-daemon and gnome-keyring (`bash .ci/test` installs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use common::dbus::SessionBus;
use common::xserver::Killed;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");
const SECRET: &str = "sk-keyring-test-5f1e9c";

/// A session bus and an unlocked GNOME Keyring on it, with their files under `home`.
struct SecretService {
    address: String,
    _bus: SessionBus,
    _keyring: Killed,
}

impl SecretService {
    fn start(home: &Path) -> SecretService {
        let bus = SessionBus::start(home);
        let address = bus.address.clone();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets", "--foreground"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon is needed: run `bash .ci/test`, which installs it");
        // The login keyring's password, then end of input: it creates and unlocks it.
        let mut stdin = keyring.stdin.take().expect("stdin");
        stdin.write_all(b"test-password").expect("password");
        drop(stdin);
        let service = SecretService {
            address,
            _bus: bus,
            _keyring: Killed(keyring),
        };
        // Ready once the service answers.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = service.key(&["status"], None);
            if status.status.code() == Some(0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Secret Service did not come up: {}",
                text(&status)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }

    fn key(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_key(args, stdin, Some(&self.address))
    }
}

fn run_key(args: &[&str], stdin: Option<&str>, bus: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("key")
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("SMALLEST_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match bus {
        Some(address) => cmd.env("DBUS_SESSION_BUS_ADDRESS", address),
        None => cmd.env_remove("DBUS_SESSION_BUS_ADDRESS"),
    };
    let mut child = cmd.spawn().expect("run lightning-dictate");
    if let (Some(mut input), Some(text)) = (child.stdin.take(), stdin) {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_key_round_trips_through_a_real_keyring_and_is_never_shown() {
    let home = tempfile::tempdir().unwrap();
    let service = SecretService::start(home.path());

    let saved = service.key(&["save"], Some(&format!("{SECRET}\n")));
    assert_eq!(saved.status.code(), Some(0), "{}", text(&saved));
    let status = service.key(&["status"], None);
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).trim(),
        "a key is stored in the system keyring"
    );
    for out in [&saved, &status] {
        assert!(!text(out).contains(SECRET), "{}", text(out));
    }
    // The keyring's files hold it encrypted, not in the clear.
    for entry in walk(home.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the key in the clear",
            entry.display()
        );
    }

    let forgot = service.key(&["forget"], None);
    assert_eq!(forgot.status.code(), Some(0), "{}", text(&forgot));
    let status = service.key(&["status"], None);
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).trim(),
        "no key is stored in the system keyring"
    );
}

#[test]
fn without_a_keyring_the_error_says_what_to_do() {
    let out = run_key(&["save"], Some(SECRET), None);
    assert_eq!(out.status.code(), Some(2));
    let message = text(&out);
    assert!(
        message.starts_with("error: no keyring is available"),
        "{message}"
    );
    assert!(message.contains("SMALLEST_API_KEY"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(!message.contains(SECRET));
}

#[test]
fn an_empty_key_is_refused() {
    let out = run_key(&["save"], Some("  \n"), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no key on standard input"),
        "{}",
        text(&out)
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
