//! Bench command for the figures criterion does not give:
//! - per-20 ms-chunk processing time percentiles (p50/p99/max) of the 48 kHz stereo → 16 kHz
//!   linear16 pipeline over 10 minutes of audio;
//! - CPU seconds per audio second when streaming a 60 s file as fast as possible to the local
//!   server (a separate `serve` process), for the client and for the server.
//!
//! `cargo bench --bench stream`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(
    unsafe_code,
    reason = "CPU time needs getrusage/sysconf from libc: no safe std API"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use lightning_dictate::audio::wav::{Pace, WavFormat, WavSource, write_wav};
use lightning_dictate::audio::{ChunkFormat, ChunkPipeline};
use lightning_dictate::protocol::{Encoding, SampleRate, StreamParams};
use lightning_dictate::session::{SessionConfig, run_session};
use lightning_dictate::tones::{self, ToneTiming};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test --benches` asks benches to list their tests: nothing to list here.
        return;
    }
    chunk_latency();
    streaming_cpu();
}

fn chunk_latency() {
    let format = ChunkFormat {
        encoding: Encoding::Linear16,
        sample_rate: SampleRate::Hz16000,
        chunk_ms: 20,
    };
    let Ok(mut pipeline) = ChunkPipeline::new(48000, 2, format) else {
        eprintln!("cannot build the pipeline");
        return;
    };
    let chunk: Vec<f32> = (0..960)
        .flat_map(|i| {
            let v = (i as f32 * 0.05).sin() * 0.5;
            [v, -v]
        })
        .collect();
    let mut times = Vec::with_capacity(30_000);
    let mut out = 0usize;
    for _ in 0..30_000 {
        let started = Instant::now();
        let _ = pipeline.push_interleaved(&chunk, &mut |c| out += c.bytes.len());
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "per 20 ms chunk (48 kHz stereo f32 -> 16 kHz linear16), 10 min of audio: p50 {:.1} us, p99 {:.1} us, max {:.1} us ({} bytes out)",
        pct(0.5),
        pct(0.99),
        times[times.len() - 1],
        out
    );
}

fn cpu_self_secs() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn cpu_of_pid(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: f64 =
        fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

fn streaming_cpu() {
    let dir = std::env::temp_dir().join(format!("ld-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let wav = dir.join("sixty.wav");
    // 60 s of tone speech at 48 kHz stereo: segments of 4 words, repeated.
    let segment: &[&str] = &["hello", "world", "one", "two"];
    let segments: Vec<&[&str]> = std::iter::repeat_n(segment, 33).collect();
    let (mut samples, _) = tones::synthesize(&segments, 48000, ToneTiming::default());
    samples.resize(48000 * 60, 0.0);
    if let Err(e) = write_wav(&wav, &samples, 48000, 2, WavFormat::Int(16)) {
        eprintln!("cannot write the bench file: {e}");
        return;
    }
    let mut server = match Command::new(env!("CARGO_BIN_EXE_lightning-dictate"))
        .args(["serve", "--port", "0", "--engine", "tone"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot start the server: {e}");
            return;
        }
    };
    let mut line = String::new();
    if let Some(stdout) = server.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return;
        }
    };
    for run in 0..3 {
        let Ok(source) = WavSource::open(&wav) else {
            return;
        };
        let params = StreamParams::default();
        let format = ChunkFormat {
            encoding: params.encoding,
            sample_rate: params.sample_rate,
            chunk_ms: 20,
        };
        let (tx, rx) = crossbeam_channel::bounded(256);
        let (etx, erx) = crossbeam_channel::unbounded();
        let server_before = cpu_of_pid(server.id());
        let before = cpu_self_secs();
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let source_thread =
            std::thread::spawn(move || source.stream(format, Pace::AsFastAsPossible, &tx, &stop));
        let outcome = runtime.block_on(run_session(
            SessionConfig::new(url.clone(), params, None),
            rx,
            etx,
        ));
        let _ = source_thread.join();
        let wall = started.elapsed().as_secs_f64();
        let client = cpu_self_secs() - before;
        let server_cpu = cpu_of_pid(server.id()) - server_before;
        let finals = erx
            .try_iter()
            .filter(|e| matches!(e, lightning_dictate::session::SessionEvent::Final(_)))
            .count();
        match outcome {
            Ok(summary) => println!(
                "stream 60 s (48 kHz stereo file -> 16 kHz linear16) run {}: wall {:.3} s, client CPU {:.4} s per audio s, server CPU {:.4} s per audio s, {} finals",
                run + 1,
                wall,
                client / summary.audio_secs_sent,
                server_cpu / summary.audio_secs_sent,
                finals
            ),
            Err(e) => println!("stream failed: {e}"),
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
