//! The API key never leaves the Authorization header: not in logs (even at -vv, client and
//! server), not in Debug output, not in outputs or transcripts, not in panic messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::*;
use lightning_dictate::audio::wav::WavFormat;
use lightning_dictate::protocol::{ApiKey, StreamParams};
use lightning_dictate::server::ServerConfig;
use lightning_dictate::session::SessionConfig;

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");
const SECRET: &str = "sk-live-7f3a9c1e-NEVER-PRINT-ME";

#[test]
fn the_key_is_not_in_any_output_or_log() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = tone_wav(dir.path(), "s.wav", &SCRIPT, 16000, 1, WavFormat::Int(16));
    let mut server = Command::new(BIN)
        .args(["serve", "--port", "0", "--engine", "tone", "-vv"])
        .env("LIGHTNING_SERVE_API_KEY", SECRET)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 256];
    let n = server.stdout.as_mut().unwrap().read(&mut first).unwrap();
    let line = String::from_utf8_lossy(&first[..n]).into_owned();
    let url = line
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();
    for format in ["text", "jsonl", "srt", "vtt"] {
        let out = Command::new(BIN)
            .args(["transcribe", wav.to_str().unwrap(), "--url", &url, "-vv"])
            .args(["--format", format, "--word-timestamps"])
            .env("SMALLEST_API_KEY", SECRET)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            all.contains("lightning"),
            "{format}: the run produced output"
        );
        assert!(!all.contains(SECRET), "{format}: key leaked: {all}");
        assert!(!all.contains("NEVER-PRINT"), "{format}");
    }
    // A refused key: the message names the variable, never the value.
    let out = Command::new(BIN)
        .args(["transcribe", wav.to_str().unwrap(), "--url", &url, "-vv"])
        .env("SMALLEST_API_KEY", "sk-wrong-NEVER-PRINT-ME-either")
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("NEVER-PRINT"));
    // --help shows that the variable is read, not its value.
    let out = Command::new(BIN)
        .args(["transcribe", "--help"])
        .env("SMALLEST_API_KEY", SECRET)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
    let _ = server.kill();
    let mut server_log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut server_log)
        .unwrap();
    let _ = server.wait();
    assert!(
        server_log.contains("session"),
        "the server logged: {server_log}"
    );
    assert!(!server_log.contains(SECRET), "server log leaked the key");
}

#[test]
fn debug_output_and_panics_never_show_the_key() {
    let key = ApiKey::new(SECRET).unwrap();
    let client = SessionConfig::new("wss://x/y", StreamParams::default(), Some(key.clone()));
    let mut server = ServerConfig::loopback(0);
    server.api_key = Some(key.clone());
    let shown = format!("{client:?} {server:?} {key} {key:?} {client:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("redacted"));
    // A panic that formats the configuration (the worst case): its message is clean.
    let caught = std::panic::catch_unwind(|| panic!("session failed with {client:?}"));
    let message = caught
        .err()
        .and_then(|p| p.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.contains("session failed"));
    assert!(!message.contains(SECRET), "{message}");
}
