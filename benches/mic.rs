//! Bench command for live capture: `transcribe --mic` (release build) on a PulseAudio virtual
//! microphone at 48 kHz stereo, fed speech at real time for 20 s, streaming to a local server,
//! once through cpal's PulseAudio host and once through ALSA's PulseAudio plugin.
//! Reports the process's CPU share of one core and the microphone-to-WebSocket latency (from the
//! device delivering the audio that completes a chunk to the chunk being handed to the socket).
//!
//! `cargo bench --bench mic` (needs pulseaudio, paplay, espeak-ng and sox: `bash .ci/test`
//! installs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(
    unsafe_code,
    reason = "CPU time needs getrusage/sysconf from libc: no safe std API"
)]

#[path = "../tests/common/vmic.rs"]
mod vmic;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// CPU seconds a running process has used so far (user + system), from /proc.
fn cpu_of_pid(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // A zombie has finished: its lifetime is over.
    if fields.first() == Some(&"Z") {
        return None;
    }
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_lightning-dictate");
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("no temp dir");
        return;
    };
    let speech = vmic::speech_wav(
        dir.path(),
        "speech.wav",
        "the quick brown fox jumps over the lazy dog. nothing is ever lost.",
        48000,
    );
    let mut mic = vmic::VirtualMic::start(48000, 2, "s16le");
    let mut server = match mic
        .command(bin)
        .args(["serve", "--port", "0", "--engine", "tone"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("serve: {e}");
            return;
        }
    };
    let mut line = String::new();
    if let Some(out) = server.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    let secs = 20.0;
    for device in [vmic::DEVICE, "ALSA: PulseAudio Sound Server"] {
        let child = mic
            .command(bin)
            .args(["transcribe", "--mic", "--device", device, "--url", &url])
            .args(["--duration", &secs.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("transcribe: {e}");
                return;
            }
        };
        let started = Instant::now();
        // Sample the process's CPU while it runs (the players this loop reaps must not count).
        let pid = child.id();
        let sampler = std::thread::spawn(move || {
            let mut last = (0.0, 0.0);
            while let Some(cpu) = cpu_of_pid(pid) {
                last = (cpu, started.elapsed().as_secs_f64());
                std::thread::sleep(Duration::from_millis(50));
            }
            last
        });
        while started.elapsed() < Duration::from_secs_f64(secs) {
            mic.play(&speech);
            mic.wait_played();
        }
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
        }
        let _ = child.wait();
        let (cpu, wall) = sampler.join().unwrap_or((f64::NAN, f64::NAN));
        println!(
            "{device}: capture + stream {secs} s at 48 kHz stereo: CPU {cpu:.3} s in {wall:.1} s = {:.2}% of one core",
            100.0 * cpu / wall
        );
        for line in stderr
            .lines()
            .filter(|l| l.contains("microphone to WebSocket"))
        {
            println!("{device}: {line}");
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}
