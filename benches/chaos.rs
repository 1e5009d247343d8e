//! Bench command: the long chaos soak and the memory of a long outage.
//!
//! 1. `MINUTES` (default 30) of tone speech streamed through the real session to the local server
//!    running `--chaos SEED` (a seeded fault after every 5-20 s of received audio), as fast as the
//!    server confirms (or at real time with `REALTIME=1`): faults survived, words lost (must be
//!    0), duplicated words, wall time, peak memory of the process.
//! 2. A live dictation whose service is down for `MINUTES` of audio: the unconfirmed audio it
//!    keeps, and the process's memory before and after.
//!
//! `cargo bench --bench chaos` (`MINUTES=5 SEED=3 cargo bench --bench chaos` for a shorter run)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::time::{Duration, Instant};

use lightning_dictate::audio::AudioChunk;
use lightning_dictate::audio::wav::{Pace, WavFormat, write_wav};
use lightning_dictate::dictation::{Dictation, DictationEvent, DictationRequest, Source, Target};
use lightning_dictate::protocol::StreamParams;
use lightning_dictate::server::{BackgroundServer, Faults, ServerConfig};
use lightning_dictate::session::{SessionConfig, SessionEvent, run_session};
use lightning_dictate::tones::{self, ToneTiming};
use lightning_dictate::transcript::Transcript;

#[path = "../tests/common/mod.rs"]
#[allow(unused)]
mod common;
use common::{long_script, lost_and_added};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let minutes: f64 = env_or("MINUTES", 30.0);
    let seed: u64 = env_or("SEED", 1);
    let realtime = std::env::var("REALTIME").is_ok_and(|v| v == "1");
    soak(minutes, seed, realtime);
    outage_memory(minutes);
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak and current resident memory of this process, in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn soak(minutes: f64, seed: u64, realtime: bool) {
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("no temporary folder");
        return;
    };
    let segments = long_script(minutes * 60.0, seed);
    let refs: Vec<&[&str]> = segments.iter().map(Vec::as_slice).collect();
    let (samples, placed) = tones::synthesize(&refs, 16000, ToneTiming::default());
    let expected: Vec<&str> = placed.iter().map(|p| p.word).collect();
    let wav = dir.path().join("soak.wav");
    if let Err(e) = write_wav(&wav, &samples, 16000, 1, WavFormat::Int(16)) {
        eprintln!("cannot write the soak file: {e}");
        return;
    }
    drop(samples);
    let mut config = ServerConfig::loopback(0);
    config.faults = Faults {
        chaos: Some(seed),
        ..Faults::default()
    };
    let Ok(server) = BackgroundServer::start(config) else {
        eprintln!("cannot start the server");
        return;
    };
    let params = StreamParams::default();
    let pace = if realtime {
        Pace::Realtime
    } else {
        Pace::AsFastAsPossible
    };
    let request = DictationRequest::new(
        Source::File {
            path: wav.clone(),
            pace,
            simulate_live: false,
        },
        params,
        Target::Service {
            url: server.url().to_owned(),
            api_key: None,
            fallback: None,
        },
    );
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let collector = std::thread::spawn(move || {
        let mut transcript = Transcript::default();
        let mut reconnects = 0;
        for event in &event_rx {
            let DictationEvent::Session(event) = event else {
                continue;
            };
            if matches!(event, SessionEvent::Reconnected { .. }) {
                reconnects += 1;
            }
            transcript.apply(&event);
        }
        (transcript, reconnects)
    });
    let started = Instant::now();
    let outcome = match Dictation::start(request, event_tx) {
        Ok(dictation) => dictation.wait().session,
        Err(e) => {
            eprintln!("cannot start the dictation: {e}");
            return;
        }
    };
    let wall = started.elapsed().as_secs_f64();
    let Ok((transcript, reconnects)) = collector.join() else {
        return;
    };
    let faults: Vec<String> = server
        .fault_log()
        .try_iter()
        .map(|f| f.fault.name().to_owned())
        .collect();
    let got: Vec<String> = transcript
        .segments
        .iter()
        .flat_map(|s| s.text.split_whitespace().map(str::to_owned))
        .collect();
    let (lost, added) = lost_and_added(&expected, &got);
    let (peak, _) = memory_mb();
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for f in &faults {
        match kinds.iter_mut().find(|(k, _)| k == f) {
            Some((_, n)) => *n += 1,
            None => kinds.push((f.clone(), 1)),
        }
    }
    println!(
        "chaos soak: {minutes} min of audio ({} words), seed {seed}, {}: outcome {}; {} faults {kinds:?}; {reconnects} reconnects; words lost {lost}, duplicated {added}; {wall:.0} s wall; peak RSS {peak:.0} MB",
        expected.len(),
        if realtime {
            "real time"
        } else {
            "as fast as confirmed"
        },
        match &outcome {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("FAILED ({e})"),
        },
        faults.len(),
    );
}

/// Memory for a long outage of a live dictation: the service refuses every handshake while
/// `minutes` of audio arrive (fed as fast as the session takes it).
fn outage_memory(minutes: f64) {
    let mut config = ServerConfig::loopback(0);
    config.faults = Faults {
        refuse_first: u32::MAX,
        refuse_status: 503,
        ..Faults::default()
    };
    let Ok(server) = BackgroundServer::start(config) else {
        return;
    };
    let (_, before) = memory_mb();
    let params = StreamParams::default();
    let mut session = SessionConfig::new(server.url(), params, None).live();
    session.reconnect.give_up_after = Duration::from_hours(24);
    session.reconnect.max_delay = Duration::from_millis(500);
    let (audio_tx, audio_rx) = crossbeam_channel::bounded::<AudioChunk>(256);
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        return;
    };
    // The session alone, fed synthetic chunks as fast as it takes them: what is measured is the
    // replay buffer, not a source.
    runtime.spawn(run_session(session, audio_rx, event_tx));
    let chunks = (minutes * 60.0 / 0.02) as u64;
    for seq in 0..chunks {
        let samples = 320u32;
        let chunk = AudioChunk {
            seq,
            first_sample: seq * u64::from(samples),
            samples,
            bytes: vec![(seq % 251) as u8; samples as usize * 2],
            captured_at: None,
        };
        if audio_tx.send(chunk).is_err() {
            break;
        }
    }
    // Wait until the session has taken everything.
    while !audio_tx.is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (_, after) = memory_mb();
    let kept = event_rx
        .try_iter()
        .filter_map(|e| match e {
            SessionEvent::Reconnecting { kept_secs, .. } => Some(kept_secs),
            _ => None,
        })
        .fold(0.0, f64::max);
    println!(
        "live outage: {minutes} min of audio arrived while the service refused every handshake; kept for replay at the last attempt: {:.0} s; RSS {before:.0} MB before, {after:.0} MB after ({:.0} MB for the audio; 16 kHz linear16 is {:.1} MB a minute)",
        kept,
        after - before,
        16000.0 * 2.0 * 60.0 / 1e6
    );
    runtime.shutdown_background();
}
