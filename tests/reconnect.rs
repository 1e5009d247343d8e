//! Nothing lost: the client against the local server's fault switches, with reconnection and
//! replay. Real sockets on loopback. Each test prints a row of the README's fault table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::time::Duration;

use common::*;
use lightning_dictate::audio::wav::WavFormat;
use lightning_dictate::server::{BackgroundServer, Faults, ServerConfig};
use lightning_dictate::session::{Liveness, SessionError, SessionEvent};
use lightning_dictate::tones::PlacedWord;

fn script_wav(dir: &tempfile::TempDir) -> (std::path::PathBuf, Vec<PlacedWord>) {
    tone_wav(dir.path(), "s.wav", &SCRIPT, 16000, 1, WavFormat::Int(16))
}

fn expected_words() -> Vec<String> {
    SCRIPT
        .iter()
        .flat_map(|s| s.iter().map(|w| (*w).to_owned()))
        .collect()
}

/// Every word exactly once, in order, at the right time on the dictation's timeline.
fn assert_complete(run: &Run, placed: &[PlacedWord], label: &str) {
    assert!(run.outcome.is_ok(), "{label}: {:?}", run.outcome);
    assert_eq!(run.words(), expected_words(), "{label}");
    assert_word_times(&run.transcript, placed, 0.015);
}

fn row(fault: &str, tries: usize, run: &Run) {
    let recoveries = run.recoveries();
    let worst = recoveries.iter().copied().fold(0.0, f64::max);
    let lost = expected_words()
        .iter()
        .filter(|w| !run.words().contains(w))
        .count();
    eprintln!(
        "FAULT-TABLE | {fault} | {tries} | {lost} | {} reconnects, worst recovery {:.2} s |",
        recoveries.len(),
        worst
    );
}

#[test]
fn a_drop_at_any_point_loses_no_word() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = script_wav(&dir);
    // Mid-word, between words, in a pause, mid-segment late in the file.
    for at in [0.31, 0.9, 1.6, 2.7, 3.1, 4.4] {
        let server = server_with(Faults {
            drop_after_bytes: Some(bytes_at(at)),
            drop_sessions: 1,
            ..Faults::default()
        });
        let run = run_client(server.url(), &wav, timed_params(), 20, |_| {});
        let label = format!("drop at {at} s");
        assert_complete(&run, &placed, &label);
        assert_eq!(run.reconnect_attempts(), 1, "{label}");
        assert_eq!(run.outcome.as_ref().unwrap().reconnects, 1);
        row(&format!("TCP drop at {at} s"), 1, &run);
    }
}

#[test]
fn three_drops_in_a_row_lose_no_word() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = script_wav(&dir);
    for at in [0.8, 1.3, 2.0] {
        let server = server_with(Faults {
            drop_after_bytes: Some(bytes_at(at)),
            drop_sessions: 3,
            ..Faults::default()
        });
        let run = run_client(server.url(), &wav, timed_params(), 20, |_| {});
        let label = format!("3 drops after {at} s of each connection");
        assert_complete(&run, &placed, &label);
        assert_eq!(run.outcome.as_ref().unwrap().reconnects, 3, "{label}");
        row(
            &format!("TCP drop 3x in a row ({at} s into each connection)"),
            3,
            &run,
        );
    }
}

#[test]
fn rate_limited_handshakes_honour_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = script_wav(&dir);
    let server = server_with(Faults {
        refuse_first: 2,
        refuse_status: 429,
        retry_after_secs: Some(1),
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav, timed_params(), 20, |_| {});
    assert_complete(&run, &placed, "429 x2");
    let delays: Vec<Duration> = run
        .events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Reconnecting { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 2);
    assert!(
        delays.iter().all(|d| *d >= Duration::from_secs(1)),
        "{delays:?}"
    );
    row("429 with Retry-After: 1, twice, then success", 2, &run);

    let server = server_with(Faults {
        refuse_first: 2,
        refuse_status: 503,
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav, timed_params(), 20, |_| {});
    assert_complete(&run, &placed, "503 x2");
    row("503 twice, then success", 2, &run);
}

#[test]
fn an_error_frame_and_close_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = script_wav(&dir);
    let server = server_with(Faults {
        error_after_bytes: Some(bytes_at(3.9)),
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav, timed_params(), 20, |_| {});
    assert_complete(&run, &placed, "error frame");
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, SessionEvent::ServerError { .. }))
    );
    row("error frame, then close 1011", 1, &run);
}

#[test]
fn garbage_and_a_stall_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = script_wav(&dir);
    let server = server_with(Faults {
        garbage: true,
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav, timed_params(), 20, |_| {});
    assert_complete(&run, &placed, "garbage");
    assert_eq!(run.reconnect_attempts(), 0);
    row("garbage text + binary frame before every message", 16, &run);

    let server = server_with(Faults {
        stall_after_bytes: Some(bytes_at(1.0)),
        stall: Duration::from_secs(5),
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav, timed_params(), 20, |_| {});
    assert_complete(&run, &placed, "5 s stall");
    assert_eq!(
        run.reconnect_attempts(),
        0,
        "a 5 s stall is not a dead connection"
    );
    row("5 s stall", 1, &run);
}

#[test]
fn a_dead_connection_is_noticed_by_its_missing_pongs() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = script_wav(&dir);
    // The first connection goes silent for a minute; pings every 0.25 s, dead after 1 s.
    let server = server_with(Faults {
        stall_after_bytes: Some(bytes_at(2.0)),
        stall: Duration::from_mins(1),
        stall_sessions: 1,
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav, timed_params(), 20, |c| {
        c.liveness = Liveness {
            ping_every: Duration::from_millis(250),
            pong_timeout: Duration::from_secs(1),
            silence_timeout: Duration::from_secs(2),
        }
    });
    assert_complete(&run, &placed, "dead connection");
    assert_eq!(run.reconnect_attempts(), 1);
    row("server goes silent (no pongs)", 1, &run);
}

#[test]
fn a_missing_is_last_keeps_the_open_text_as_unconfirmed() {
    let dir = tempfile::tempdir().unwrap();
    // The last segment runs to the very end: it is still open when `end` is sent.
    let (samples, _) = lightning_dictate::tones::synthesize(
        &[&["hello", "world"], &["one", "two"]],
        16000,
        lightning_dictate::tones::ToneTiming {
            tail: 0.05,
            ..Default::default()
        },
    );
    let wav = dir.path().join("open.wav");
    lightning_dictate::audio::wav::write_wav(&wav, &samples, 16000, 1, WavFormat::Int(16)).unwrap();
    let server = server_with(Faults {
        withhold_is_last: true,
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav, timed_params(), 20, |c| {
        c.finish_timeout = Duration::from_secs(1);
    });
    assert_eq!(run.outcome, Err(SessionError::NoLastMessage { secs: 1 }));
    let texts: Vec<(String, bool)> = run
        .transcript
        .segments
        .iter()
        .map(|s| (s.text.clone(), s.unconfirmed))
        .collect();
    assert_eq!(
        texts,
        [
            ("hello world".to_owned(), false),
            ("one two".to_owned(), true)
        ]
    );
}

#[test]
fn refusals_the_user_must_fix_are_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = script_wav(&dir);
    let mut config = ServerConfig::loopback(0);
    config.api_key = lightning_dictate::protocol::ApiKey::new("right");
    let server = BackgroundServer::start(config).unwrap();
    let started = std::time::Instant::now();
    let run = run_client(server.url(), &wav, timed_params(), 20, |c| {
        c.api_key = lightning_dictate::protocol::ApiKey::new("wrong");
    });
    assert!(matches!(
        run.outcome,
        Err(SessionError::Auth { status: 401, .. })
    ));
    assert_eq!(run.reconnect_attempts(), 0);
    assert!(started.elapsed() < Duration::from_secs(2));
}
