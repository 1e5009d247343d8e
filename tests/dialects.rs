//! The protocol follows the URL: the API document's `/lightning/get_text`, and the current
//! `/pulse/get_text` and `/stt/live` (model=pulse, close_stream, `transcription`/`words`). Real
//! processes, real sockets; the local server speaks each dialect by path, and on the live path it
//! ignores `end` as the documented service does, so a client that sent it would wait in vain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

fn transcribe(wav: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = transcribe_cli(wav, args);
    (out, started.elapsed())
}

fn every_combination(path: &str) {
    let dir = tempfile::tempdir().unwrap();
    let segments: Vec<Vec<&str>> = SCRIPT.iter().map(|s| s.to_vec()).collect();
    let (wav, expected) = script_file(dir.path(), "s.wav", &segments);
    let server = ServeProcess::spawn(&["--engine", "tone"]);
    let url = server.url.replace("/api/v1/lightning/get_text", path);
    for realtime in [false, true] {
        for timestamps in [false, true] {
            for format in ["text", "srt"] {
                let mut args = vec!["--url", url.as_str(), "--format", format];
                if realtime {
                    args.push("--realtime");
                }
                if timestamps {
                    args.push("--word-timestamps");
                }
                let (out, took) = transcribe(&wav, &args);
                let label = format!("{path} realtime={realtime} timestamps={timestamps} {format}");
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(0), "{label}: {stderr}");
                let stdout = String::from_utf8_lossy(&out.stdout);
                let words: Vec<String> = if format == "srt" {
                    stdout
                        .split("\n\n")
                        .filter_map(|cue| cue.lines().nth(2))
                        .flat_map(|l| l.split_whitespace().map(str::to_owned))
                        .collect()
                } else {
                    stdout.split_whitespace().map(str::to_owned).collect()
                };
                assert_eq!(words, expected, "{label}");
                // No wait for an `is_last` that never comes: the audio is 5 s long.
                let limit = if realtime { 9 } else { 4 };
                assert!(took < Duration::from_secs(limit), "{label}: took {took:?}");
            }
        }
    }
}

#[test]
fn the_api_documents_dialect() {
    every_combination("/api/v1/lightning/get_text");
}

#[test]
fn the_pulse_path() {
    every_combination("/waves/v1/pulse/get_text");
}

#[test]
fn the_unified_live_endpoint_gets_model_pulse_and_close_stream() {
    every_combination("/waves/v1/stt/live");
}

#[test]
fn a_model_the_user_put_in_the_url_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = script_file(dir.path(), "s.wav", &[vec!["hello", "world"]]);
    let server = ServeProcess::spawn(&["--engine", "tone"]);
    let url = server.url.replace(
        "/api/v1/lightning/get_text",
        "/waves/v1/stt/live?model=pulse-v2&diarize=false",
    );
    let (out, _) = transcribe(&wav, &["--url", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let connecting = stderr
        .lines()
        .find(|l| l.starts_with("connecting to "))
        .unwrap_or_default();
    assert!(connecting.contains("model=pulse-v2"), "{connecting}");
    assert!(connecting.contains("diarize=false"), "{connecting}");
    assert!(!connecting.contains("model=pulse&"), "{connecting}");
}

#[test]
fn multi_on_the_live_endpoint_shows_the_servers_own_message_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = script_file(dir.path(), "s.wav", &[vec!["hello", "world"]]);
    let server = ServeProcess::spawn(&["--engine", "tone"]);
    let url = server
        .url
        .replace("/api/v1/lightning/get_text", "/waves/v1/stt/live");
    let (out, took) = transcribe(&wav, &["--url", &url, "--language", "multi"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("Language 'multi' has not been enabled in this region"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("reconnecting"),
        "one handshake only: {stderr}"
    );
}

/// A server that answers every request with this HTTP status (an address the service left).
fn gone_server(status: &'static str) -> (String, std::thread::JoinHandle<usize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut requests = 0;
        listener.set_nonblocking(false).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                break;
            };
            requests += 1;
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let body = r#"{"message":"Not Found"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if requests >= 1 {
                break;
            }
        }
        requests
    });
    (
        format!("ws://127.0.0.1:{port}/api/v1/lightning/get_text"),
        handle,
    )
}

#[test]
fn a_404_at_the_documents_address_says_the_service_moved_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = script_file(dir.path(), "s.wav", &[vec!["hello"]]);
    for status in ["404 Not Found", "410 Gone"] {
        let (url, server) = gone_server(status);
        let (out, took) = transcribe(&wav, &["--url", &url]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            error.contains("no longer at this address")
                && error.contains("--url wss://api.smallest.ai/waves/v1/stt/live"),
            "{stderr}"
        );
        assert_eq!(server.join().unwrap(), 1, "one handshake, no retry");
    }
}
