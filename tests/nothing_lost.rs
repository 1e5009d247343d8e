//! Nothing lost, checked the way a real server and network fail: every fault fires at a position
//! in the audio the server has *received*, a broken connection takes the words still being
//! recognised with it, and a server may send finals without word times. Every word must arrive,
//! with at most one duplicated word per connection lost, fast or at real time, with or without
//! the user asking for word times.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::time::Duration;

use common::*;
use lightning_dictate::audio::wav::Pace;
use lightning_dictate::protocol::StreamParams;
use lightning_dictate::server::{ChaosFault, Faults};
use lightning_dictate::session::{Liveness, SessionConfig, SessionEvent};

/// Every kind of fault, and whether it costs the connection.
fn every_fault() -> Vec<(ChaosFault, bool)> {
    vec![
        (ChaosFault::Abort, true),
        (ChaosFault::ErrorClose, true),
        (ChaosFault::Stall(Duration::from_secs(2)), false),
        (ChaosFault::Garbage, false),
        (
            ChaosFault::RefuseNext {
                status: 429,
                retry_after: Some(1),
            },
            true,
        ),
        (
            ChaosFault::RefuseNext {
                status: 503,
                retry_after: None,
            },
            true,
        ),
        (ChaosFault::HalfOpen, true),
        (ChaosFault::CleanClose, true),
    ]
}

/// Liveness timers short enough that a half-open connection costs seconds, not the default 15.
fn quick_liveness(config: &mut SessionConfig) {
    config.liveness = Liveness {
        ping_every: Duration::from_millis(500),
        pong_timeout: Duration::from_secs(4),
        silence_timeout: Duration::from_secs(5),
    };
}

#[derive(Clone, Copy, Debug)]
enum Times {
    /// The user asked for word times.
    Asked,
    /// The user did not (the client asks anyway).
    NotAsked,
    /// The server sends none, whatever was asked.
    ServerSendsNone,
}

fn matrix(pace: Pace, times: Times) {
    let dir = tempfile::tempdir().unwrap();
    let segments: Vec<Vec<&str>> = SCRIPT.iter().map(|s| s.to_vec()).collect();
    let (wav, expected) = script_file(dir.path(), "s.wav", &segments);
    let params = StreamParams {
        word_timestamps: matches!(times, Times::Asked),
        ..StreamParams::default()
    };
    for (fault, costs_connection) in every_fault() {
        // Halfway through the file, counted on what the server received.
        let server = server_with(Faults {
            once: Some((bytes_at(2.4), fault)),
            no_word_times: matches!(times, Times::ServerSendsNone),
            ..Faults::default()
        });
        let run = run_client_paced(server.url(), &wav, params, 20, pace, quick_liveness);
        let label = format!("{fault:?}, {pace:?}, {times:?}");
        assert!(run.outcome.is_ok(), "{label}: {:?}", run.outcome);
        assert_eq!(
            server.fault_log().try_iter().count(),
            1,
            "{label}: the fault fired"
        );
        let (lost, added) = lost_and_added(&expected, &run.words());
        eprintln!(
            "NOTHING-LOST | {label} | lost {lost} | duplicated {added} | reconnects {} |",
            run.outcome.as_ref().map_or(0, |s| s.reconnects)
        );
        assert_eq!(lost, 0, "{label}: {:?}", run.words());
        assert!(
            added <= usize::from(costs_connection),
            "{label}: {added} duplicated: {:?}",
            run.words()
        );
        if !costs_connection {
            assert_eq!(run.outcome.as_ref().unwrap().reconnects, 0, "{label}");
        }
    }
}

#[test]
fn every_fault_fast_with_word_times() {
    matrix(Pace::AsFastAsPossible, Times::Asked);
}

#[test]
fn every_fault_fast_without_word_times() {
    matrix(Pace::AsFastAsPossible, Times::NotAsked);
}

#[test]
fn every_fault_fast_with_a_server_that_sends_no_word_times() {
    matrix(Pace::AsFastAsPossible, Times::ServerSendsNone);
}

#[test]
fn every_fault_at_real_time_with_word_times() {
    matrix(Pace::Realtime, Times::Asked);
}

#[test]
fn every_fault_at_real_time_without_word_times() {
    matrix(Pace::Realtime, Times::NotAsked);
}

#[test]
fn every_fault_at_real_time_with_a_server_that_sends_no_word_times() {
    matrix(Pace::Realtime, Times::ServerSendsNone);
}

/// A file many times longer than the replay window, sent as fast as possible, with the connection
/// dropped near its end: the reader waited for the server instead of dropping audio.
#[test]
fn a_file_longer_than_the_replay_window_loses_nothing_to_a_late_drop() {
    let dir = tempfile::tempdir().unwrap();
    let segments = long_script(20.0, 3);
    let (wav, expected) = script_file(dir.path(), "long.wav", &segments);
    let total_secs = f64::from(hound::WavReader::open(&wav).unwrap().duration()) / 16000.0;
    for server_times in [true, false] {
        let server = server_with(Faults {
            once: Some((bytes_at(total_secs * 0.9), ChaosFault::Abort)),
            no_word_times: !server_times,
            ..Faults::default()
        });
        let run = run_client(server.url(), &wav, StreamParams::default(), 20, |c| {
            c.replay_limit = Duration::from_secs(2);
            c.rollover_after = Duration::from_secs(1);
        });
        let label =
            format!("20 s file, 2 s window, drop at 90 %, server word times {server_times}");
        assert!(run.outcome.is_ok(), "{label}: {:?}", run.outcome);
        let (lost, added) = lost_and_added(&expected, &run.words());
        eprintln!("NOTHING-LOST | {label} | lost {lost} | duplicated {added} |");
        assert_eq!(lost, 0, "{label}");
        assert!(
            added <= 1,
            "{label}: {added}\n{expected:?}\n{:?}\n{:#?}",
            run.words(),
            run.events
                .iter()
                .filter(|e| !matches!(e, SessionEvent::Interim { .. }))
                .collect::<Vec<_>>()
        );
        assert!(
            !run.events.iter().any(|e| matches!(
                e,
                SessionEvent::ReplayOverflow { .. } | SessionEvent::Gap { .. }
            )),
            "{label}: a file never overflows its replay window"
        );
    }
}

/// Live audio that cannot be kept through an outage (a tiny replay limit) becomes a visible gap.
#[test]
fn a_live_outage_longer_than_the_replay_limit_leaves_a_gap_marker() {
    let dir = tempfile::tempdir().unwrap();
    let segments = long_script(8.0, 5);
    let (wav, _) = script_file(dir.path(), "live.wav", &segments);
    // The first three handshakes are refused: about 1.75 s of backoff before audio flows.
    let server = server_with(Faults {
        refuse_first: 3,
        refuse_status: 503,
        ..Faults::default()
    });
    let run = run_client_paced(
        server.url(),
        &wav,
        StreamParams::default(),
        20,
        Pace::Realtime,
        |c| {
            *c = c.clone().live();
            c.replay_limit = Duration::from_millis(500);
        },
    );
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    let gaps: Vec<(f64, f64)> = run
        .events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Gap { start_secs, secs } => Some((*start_secs, *secs)),
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len(), 1, "{:?}", run.events);
    assert!(gaps[0].0 < 0.1 && gaps[0].1 > 0.5, "{gaps:?}");
    assert!(run.transcript.has_gap());
    assert!(
        run.transcript.final_text().starts_with("[… "),
        "{}",
        run.transcript.final_text()
    );
    assert!(run.transcript.to_srt().contains("s not transcribed …]"));
}

/// A fallback recogniser (the tone engine on loopback) that counts how often it was started.
fn counting_fallback() -> (
    lightning_dictate::session::Fallback,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let started = std::sync::Arc::new(AtomicU32::new(0));
    let count = std::sync::Arc::clone(&started);
    let fallback = lightning_dictate::session::Fallback {
        start: std::sync::Arc::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
            let server = lightning_dictate::server::BackgroundServer::start(
                lightning_dictate::server::ServerConfig::loopback(0),
            )
            .map_err(|e| e.to_string())?;
            Ok(lightning_dictate::session::FallbackTarget {
                url: server.url().to_owned(),
                guard: Box::new(server),
            })
        }),
    };
    (fallback, started)
}

/// The service goes away for good in the middle of a live dictation: after 10 s without a
/// connection the rest is recognised on this computer, from the first unconfirmed sample.
#[test]
fn a_live_dictation_goes_on_offline_when_the_service_stays_away() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let segments = long_script(24.0, 11);
    let (wav, expected) = script_file(dir.path(), "live.wav", &segments);
    let mut server = ServeProcess::spawn(&["--engine", "tone"]);
    let url = server.url.clone();
    let (fallback, started) = counting_fallback();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(6));
        server.kill();
    });
    let run = run_client_paced(
        &url,
        &wav,
        StreamParams::default(),
        20,
        Pace::Realtime,
        |c| {
            *c = c.clone().live();
            c.fallback = Some(fallback);
        },
    );
    killer.join().unwrap();
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(started.load(Ordering::SeqCst), 1);
    let went = run
        .events
        .iter()
        .position(|e| matches!(e, SessionEvent::WentOffline { .. }))
        .expect("went offline");
    let (lost, added) = lost_and_added(&expected, &run.words());
    eprintln!(
        "NOTHING-LOST | service gone at 6 s, live, offline fallback | lost {lost} | duplicated {added} |"
    );
    assert_eq!(lost, 0, "{:?}", run.words());
    assert!(added <= 1, "{added}");
    // Words came from both sides of the switch.
    let finals_after = run.events[went..]
        .iter()
        .filter(|e| matches!(e, SessionEvent::Final(f) if !f.text.is_empty()))
        .count();
    assert!(finals_after > 0);
}

/// A refused key is the user's to fix: no silent fallback.
#[test]
fn a_refused_key_never_falls_back_offline() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let segments = long_script(3.0, 12);
    let (wav, _) = script_file(dir.path(), "live.wav", &segments);
    let server = ServeProcess::spawn(&["--engine", "tone", "--api-key", "right-key"]);
    let (fallback, started) = counting_fallback();
    let run = run_client_paced(
        &server.url,
        &wav,
        StreamParams::default(),
        20,
        Pace::Realtime,
        |c| {
            *c = c.clone().live();
            c.api_key = lightning_dictate::protocol::ApiKey::new("wrong-key");
            c.fallback = Some(fallback);
        },
    );
    assert!(
        matches!(
            run.outcome,
            Err(lightning_dictate::session::SessionError::Auth { status: 401, .. })
        ),
        "{:?}",
        run.outcome
    );
    assert_eq!(started.load(Ordering::SeqCst), 0);
}
