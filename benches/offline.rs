//! Bench command for the offline recogniser (release build), on a folder of 16 kHz mono WAV
//! clips with a `refs.txt` (one reference sentence per clip, in file-name order):
//! - model load time;
//! - per utterance: time from the end of the audio to the final text (the whole utterance
//!   recognised at once, as after a pause or Stop), p50 and max; real-time factor; word error rate;
//! - streamed at real time through the local server: time from `end` to the final, and from the
//!   end of the speech (the clip's last frame above -45 dBFS) to the final, p50 and max over the
//!   utterances in `OFFLINE_BENCH_STREAM_CLIP` (WAV paths separated by `:`; the engine has been
//!   making interims meanwhile);
//! - peak memory (max RSS) of the process.
//!
//! `bash .ci/bench-offline` makes the clips and runs this beside faster-whisper; alone:
//! `OFFLINE_BENCH_CLIPS=DIR cargo bench --bench offline`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(
    unsafe_code,
    reason = "peak memory needs getrusage from libc: no safe std API"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use lightning_dictate::audio::wav::{Pace, WavSource, read_all};
use lightning_dictate::dictation::{Dictation, DictationEvent, DictationRequest, Source, Target};
use lightning_dictate::protocol::StreamParams;
use lightning_dictate::server::{BackgroundServer, ServerConfig};
use lightning_dictate::session::SessionEvent;
use lightning_dictate::whisper::wer::WordErrors;
use lightning_dictate::whisper::{Recognizer, WhisperEngine, default_model_dir};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var_os("RUST_LOG").is_some() {
        // The engine's own timeline (decodings, pauses), for tracing a slow final.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let Some(clips) = std::env::var_os("OFFLINE_BENCH_CLIPS").map(PathBuf::from) else {
        eprintln!(
            "set OFFLINE_BENCH_CLIPS to a folder of clips (bash .ci/bench-offline makes one)"
        );
        return;
    };
    let model = std::env::var_os("OFFLINE_BENCH_MODEL")
        .map(PathBuf::from)
        .or_else(default_model_dir);
    let Some(model) = model else {
        eprintln!("no model folder");
        return;
    };
    let started = Instant::now();
    let recognizer = match Recognizer::load(&model) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let load_secs = started.elapsed().as_secs_f64();

    let (wavs, refs) = clip_list(&clips);
    let mut latencies = Vec::new();
    let mut audio_secs = 0.0;
    let mut hypotheses = Vec::new();
    // One warm-up run (first-call allocations), not counted.
    if let Some(first) = wavs.first() {
        let (samples, _) = samples_16k(first);
        let _ = recognizer.recognize(&samples, Some("en"), &[]);
    }
    for wav in &wavs {
        let (samples, secs) = samples_16k(wav);
        let t = Instant::now();
        let text = match recognizer.recognize(&samples, Some("en"), &[]) {
            Ok(r) => r.text,
            Err(e) => {
                eprintln!("{}: {e}", wav.display());
                String::new()
            }
        };
        latencies.push(t.elapsed().as_secs_f64());
        audio_secs += secs;
        hypotheses.push(text);
    }
    let wer = word_error_rate(&refs, &hypotheses);
    let total: f64 = latencies.iter().sum();
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let p50 = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let max = sorted.last().copied().unwrap_or(0.0);

    let streamed = std::env::var_os("OFFLINE_BENCH_STREAM_CLIP").map(|clips| {
        // Per utterance: `end` -> final, the clip's length, and the end of its speech -> final
        // (`end` comes with the audio's end, after the clip's trailing quiet).
        let runs: Vec<(f64, f64, f64)> = std::env::split_paths(&clips)
            .map(|clip| {
                let (after_end, duration) = streamed_end_to_final(&recognizer, &clip);
                let quiet = trailing_quiet_secs(&clip);
                eprintln!(
                    "streamed {}: end -> final {after_end:.3} s, end of speech -> final {:.3} s",
                    clip.display(),
                    after_end + quiet
                );
                (after_end, duration, after_end + quiet)
            })
            .collect();
        let p50_max = |mut secs: Vec<f64>| {
            secs.sort_by(f64::total_cmp);
            (
                secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN),
                secs.last().copied().unwrap_or(f64::NAN),
            )
        };
        let (p50, max) = p50_max(runs.iter().map(|r| r.0).collect());
        let (speech_p50, speech_max) = p50_max(runs.iter().map(|r| r.2).collect());
        let mean_clip = runs.iter().map(|r| r.1).sum::<f64>() / runs.len().max(1) as f64;
        format!(
            ",\"stream_end_to_final_s\":{p50:.3},\"stream_end_to_final_max_s\":{max:.3},\"stream_speech_end_to_final_s\":{speech_p50:.3},\"stream_speech_end_to_final_max_s\":{speech_max:.3},\"stream_clips\":{},\"stream_clip_s\":{mean_clip:.2}",
            runs.len()
        )
    });

    let peak_mb = peak_rss_mb();
    println!(
        "{{\"engine\":\"lightning-dictate (candle)\",\"load_s\":{load_secs:.3},\"clips\":{},\"audio_s\":{audio_secs:.2},\"latency_p50_s\":{p50:.3},\"latency_max_s\":{max:.3},\"rtf\":{:.4},\"wer\":{wer:.4},\"peak_mb\":{peak_mb:.0}{}}}",
        wavs.len(),
        total / audio_secs.max(1e-9),
        streamed.unwrap_or_default()
    );
    for (r, h) in refs.iter().zip(&hypotheses) {
        eprintln!("  ref: {r}\n  hyp: {h}");
    }
}

fn clip_list(dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                .collect()
        })
        .unwrap_or_default();
    wavs.sort();
    let refs: Vec<String> = std::fs::read_to_string(dir.join("refs.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    (wavs, refs)
}

/// Seconds of quiet at the end of a clip: after its last 20 ms frame above -45 dBFS.
fn trailing_quiet_secs(path: &Path) -> f64 {
    let (samples, secs) = samples_16k(path);
    let frame = 320;
    let last_loud = samples
        .chunks(frame)
        .rposition(|f| {
            let mean_square = f.iter().map(|s| s * s).sum::<f32>() / f.len() as f32;
            10.0 * (mean_square + 1e-12).log10() > -45.0
        })
        .map_or(0, |i| (i + 1) * frame);
    (secs - last_loud as f64 / 16000.0).max(0.0)
}

fn samples_16k(path: &Path) -> (Vec<f32>, f64) {
    match read_all(path) {
        Ok((info, samples)) if info.sample_rate == 16000 && info.channels == 1 => {
            let secs = samples.len() as f64 / 16000.0;
            (samples, secs)
        }
        Ok((info, _)) => {
            eprintln!("{}: {info}; clips must be 16 kHz mono", path.display());
            (Vec::new(), 0.0)
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            (Vec::new(), 0.0)
        }
    }
}

/// Streams `clip` at real time to the local server with the Whisper engine; returns the time
/// from `end` (the audio's end) to the last final (negative when it came before `end`), and the
/// clip's length.
fn streamed_end_to_final(recognizer: &Arc<Recognizer>, clip: &Path) -> (f64, f64) {
    let mut config = ServerConfig::loopback(0);
    config.engine = Arc::new(WhisperEngine::new(Arc::clone(recognizer)));
    let Ok(server) = BackgroundServer::start(config) else {
        return (f64::NAN, 0.0);
    };
    let Ok(source) = WavSource::open(clip) else {
        return (f64::NAN, 0.0);
    };
    let duration = source.info().duration_secs();
    let request = DictationRequest::new(
        Source::File {
            path: clip.to_path_buf(),
            pace: Pace::Realtime,
            simulate_live: false,
        },
        StreamParams::default(),
        Target::Service {
            url: server.url().to_owned(),
            api_key: None,
            fallback: None,
        },
    );
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let watcher = std::thread::spawn(move || {
        let mut end_sent = None;
        let mut final_at = None;
        let mut text = String::new();
        for event in &event_rx {
            match event {
                DictationEvent::Session(SessionEvent::Finishing) => end_sent = Some(Instant::now()),
                DictationEvent::Session(SessionEvent::Final(f)) if !f.text.is_empty() => {
                    final_at = Some(Instant::now());
                    text.push_str(&f.text);
                    text.push(' ');
                }
                _ => {}
            }
        }
        eprintln!("  streamed text: {}", text.trim());
        match (end_sent, final_at) {
            // Signed: a final may come before `end` (the engine closed the utterance at the
            // pause), and the end of the speech is `end` less the clip's trailing quiet.
            (Some(e), Some(f)) if f >= e => f.duration_since(e).as_secs_f64(),
            (Some(e), Some(f)) => -e.duration_since(f).as_secs_f64(),
            _ => f64::NAN,
        }
    });
    if let Ok(dictation) = Dictation::start(request, event_tx) {
        let _ = dictation.wait();
    }
    (watcher.join().unwrap_or(f64::NAN), duration)
}

fn word_error_rate(refs: &[String], hyps: &[String]) -> f64 {
    refs.iter()
        .zip(hyps)
        .map(|(r, h)| WordErrors::between(r, h))
        .sum::<WordErrors>()
        .rate()
}

fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) } == 0;
    if ok {
        usage.ru_maxrss as f64 / 1024.0
    } else {
        f64::NAN
    }
}
