//! A one-hour dictation streamed at 20x real time (3 minutes) through the real client and the
//! local server on loopback: memory stays flat and every segment comes back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::time::{Duration, Instant};

use lightning_dictate::audio::AudioChunk;
use lightning_dictate::audio::encode::encode_into;
use lightning_dictate::protocol::{Encoding, StreamParams};
use lightning_dictate::server::{BackgroundServer, ServerConfig};
use lightning_dictate::session::{SessionConfig, SessionEvent, run_session};
use lightning_dictate::tones::{self, ToneTiming};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn an_hour_at_twenty_times_real_time_keeps_memory_flat() {
    const AUDIO_SECS: f64 = 3600.0;
    const SPEED: f64 = 20.0;
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    // One segment of four words and its pause, about 1.8 s, repeated.
    let (block, _) = tones::synthesize(
        &[&["hello", "world", "one", "two"]],
        16000,
        ToneTiming {
            lead_in: 0.1,
            tail: 0.5,
            ..ToneTiming::default()
        },
    );
    let mut bytes = Vec::new();
    encode_into(Encoding::Linear16, &block, &mut bytes);
    let block_samples = block.len() as u64;
    let repeats = (AUDIO_SECS * 16000.0 / block_samples as f64).ceil() as u64;
    let (audio_tx, audio_rx) = crossbeam_channel::bounded::<AudioChunk>(500);
    let source = std::thread::spawn(move || {
        let started = Instant::now();
        let mut seq = 0;
        for r in 0..repeats {
            for (i, piece) in bytes.chunks(640).enumerate() {
                let first_sample = r * block_samples + (i as u64) * 320;
                let chunk = AudioChunk {
                    seq,
                    first_sample,
                    samples: (piece.len() / 2) as u32,
                    bytes: piece.to_vec(),
                    captured_at: None,
                };
                seq += 1;
                let due = Duration::from_secs_f64(first_sample as f64 / 16000.0 / SPEED);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                if audio_tx.send(chunk).is_err() {
                    return;
                }
            }
        }
    });
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let finals = std::thread::spawn(move || {
        let mut finals = 0u64;
        let mut rss_early = 0;
        let mut words = 0usize;
        let started = Instant::now();
        for event in &event_rx {
            if let SessionEvent::Final(f) = &event {
                finals += 1;
                words += f.text.split_whitespace().count();
                // A tenth of the way in (18 s of wall time, 6 min of audio): everything is warm.
                if rss_early == 0 && started.elapsed() > Duration::from_secs(18) {
                    rss_early = rss_kib();
                }
            }
        }
        (finals, words, rss_early)
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let params = StreamParams::default();
    let outcome = runtime.block_on(run_session(
        SessionConfig::new(server.url(), params, None),
        audio_rx,
        event_tx,
    ));
    let rss_end = rss_kib();
    source.join().unwrap();
    let (finals, words, rss_early) = finals.join().unwrap();
    let summary = outcome.expect("session");
    eprintln!(
        "one hour at {SPEED}x: {:.0} s of audio, {finals} finals, {words} words, RSS {} KiB after 6 min of audio -> {} KiB at the end",
        summary.audio_secs_sent, rss_early, rss_end
    );
    assert!(summary.audio_secs_sent >= AUDIO_SECS);
    // Every segment, every word (the last message is the empty terminal one).
    assert_eq!(words as u64, repeats * 4);
    assert!(rss_early > 0);
    assert!(
        rss_end < rss_early + 8 * 1024,
        "memory grew from {rss_early} KiB to {rss_end} KiB"
    );
}
