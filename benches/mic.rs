//! Bench command for live capture on every audio host that runs here, side by side: the same
//! `transcribe --mic` (release build) capturing tone words played at real time into a virtual
//! microphone at 48 kHz and streaming it to a local server, through
//! - cpal's PulseAudio host (a private PulseAudio daemon, null sink monitor),
//! - cpal's ALSA host through the PulseAudio plugin (what the app falls back to),
//! - cpal's PipeWire host (a private PipeWire daemon with WirePlumber, a `pw-loopback` source).
//!
//! For each: CPU of the whole process as a share of one core, the busiest threads' shares,
//! wake-ups per second (context switches of every thread), and the microphone-to-WebSocket
//! latency (from the device delivering the audio that completes a chunk to the chunk handed to
//! the socket), p50/p99.
//!
//! `cargo bench --bench mic` (60 s a host; `SECS=20` for a shorter run, `HOSTS=pulse,alsa` for
//! some hosts only, `CHUNK_MS=40` for another `--chunk-ms`, `OTHER_RECORDER_MS=10` for another
//! app recording from the PulseAudio microphone at 10 ms latency meanwhile). Needs pulseaudio,
//! pipewire, wireplumber and pw-play (pipewire-bin): `bash .ci/test` installs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(
    unsafe_code,
    reason = "CPU time needs sysconf from libc: no safe std API"
)]

#[path = "../tests/common/vmic.rs"]
mod vmic;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One thread's counters from /proc: name, CPU seconds, context switches.
#[derive(Clone, Default)]
struct ThreadCounters {
    name: String,
    cpu: f64,
    switches: u64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// Every thread of a running process, or None once it has ended.
fn threads_of(pid: u32) -> Option<HashMap<u32, ThreadCounters>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    if stat.rsplit_once(')')?.1.split_whitespace().next() == Some("Z") {
        return None;
    }
    let hz = clock_ticks();
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let Some((head, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("", |(_, n)| n).to_owned();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
            .sum();
        // Time on the CPU in nanoseconds (the scheduler's own count), where the kernel has it:
        // utime/stime are sampled at the clock tick, too coarse for a thread at 0.3 %.
        let on_cpu = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .map(|ns| ns / 1e9);
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let switches = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        threads.insert(
            tid,
            ThreadCounters {
                name,
                cpu: on_cpu.unwrap_or(ticks / hz),
                switches,
            },
        );
    }
    Some(threads)
}

/// What one host's run measured.
struct HostRun {
    host: &'static str,
    wall: f64,
    threads: HashMap<u32, ThreadCounters>,
    latency: String,
    words: usize,
}

impl HostRun {
    fn print(&self) {
        let cpu: f64 = self.threads.values().map(|t| t.cpu).sum();
        let switches: u64 = self.threads.values().map(|t| t.switches).sum();
        println!(
            "{:<34} whole process {:5.2} % of a core, {:6.0} wake-ups/s, {} words out; {}",
            self.host,
            100.0 * cpu / self.wall,
            switches as f64 / self.wall,
            self.words,
            self.latency
        );
        // Threads of the same name (rayon's, tokio's) together.
        let mut by_name: HashMap<&str, (f64, u64)> = HashMap::new();
        for t in self.threads.values() {
            let e = by_name.entry(t.name.as_str()).or_default();
            e.0 += t.cpu;
            e.1 += t.switches;
        }
        let mut sorted: Vec<_> = by_name.into_iter().collect();
        sorted.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        for (name, (cpu, switches)) in sorted.into_iter().take(4) {
            println!(
                "{:<34}   thread {name:<16} {:5.2} %, {:6.0} wake-ups/s",
                "",
                100.0 * cpu / self.wall,
                switches as f64 / self.wall
            );
        }
    }
}

/// Runs `transcribe --mic` for `secs` with `command` (which names the sound server), playing
/// `play` over and over meanwhile.
fn measure(
    host: &'static str,
    command: Command,
    device: &str,
    url: &str,
    secs: f64,
    play: &mut dyn FnMut(),
) -> Option<HostRun> {
    let mut command = command;
    let child = command
        .args(["transcribe", "--mic", "--device", device, "--url", url])
        .args(["--duration", &secs.to_string()])
        .args(
            std::env::var("CHUNK_MS")
                .map(|ms| vec!["--chunk-ms".to_owned(), ms])
                .unwrap_or_default(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{host}: transcribe: {e}");
            return None;
        }
    };
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let started = Instant::now();
        let mut last = (HashMap::new(), 0.0);
        while let Some(threads) = threads_of(pid) {
            let wall = started.elapsed().as_secs_f64();
            // Threads that ended keep their last counts.
            let mut merged: HashMap<u32, ThreadCounters> = last.0;
            merged.extend(threads);
            last = (merged, wall);
            std::thread::sleep(Duration::from_millis(100));
        }
        last
    });
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(secs) {
        play();
    }
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    let _ = child.wait();
    let (threads, wall) = sampler.join().ok()?;
    let latency = stderr
        .lines()
        .find(|l| l.contains("microphone to WebSocket"))
        .map_or_else(
            || format!("no latency line: {}", stderr.trim()),
            str::to_owned,
        );
    Some(HostRun {
        host,
        wall,
        threads,
        latency,
        words: stdout.split_whitespace().count(),
    })
}

fn start_server(bin: &str, dir: &Path) -> Option<(std::process::Child, String)> {
    let mut server = Command::new(bin)
        .args(["serve", "--port", "0", "--engine", "tone"])
        .env("HOME", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    Some((server, url))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_lightning-dictate");
    let secs: f64 = std::env::var("SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 1.0)
        .unwrap_or(60.0);
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("no temp dir");
        return;
    };
    // Tone words, which the local test engine recognises exactly: the words out tell that the
    // whole path delivered.
    let speech = dir.path().join("tones.wav");
    let made = Command::new(bin)
        .arg("tones")
        .arg(&speech)
        .args([
            "lightning dictate streams every word",
            "nothing is ever lost",
            "one two three",
        ])
        .args(["--rate", "48000"])
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("could not write the tone words");
        return;
    }
    let Some((mut server, url)) = start_server(bin, dir.path()) else {
        eprintln!("could not start the local server");
        return;
    };
    // HOSTS=pulse,alsa,pipewire (any of them) runs only those.
    let wanted = std::env::var("HOSTS").unwrap_or_else(|_| "pulse,alsa,pipewire".to_owned());
    let mut runs = Vec::new();
    {
        let mut mic =
            vmic::VirtualMic::start_with_reader(48000, 2, "s16le", vmic::other_recorder_ms());
        for (key, host, device) in [
            ("pulse", "PulseAudio host", vmic::DEVICE),
            (
                "alsa",
                "ALSA host (PulseAudio plugin)",
                "ALSA: PulseAudio Sound Server",
            ),
        ] {
            if !wanted.contains(key) {
                continue;
            }
            let command = mic.command(bin);
            runs.extend(measure(host, command, device, &url, secs, &mut || {
                mic.play(&speech);
                mic.wait_played();
            }));
        }
    }
    if wanted.contains("pipewire") {
        let mut mic = vmic::PipeWireMic::start(48000);
        let command = mic.command(bin);
        runs.extend(measure(
            "PipeWire host",
            command,
            vmic::PIPEWIRE_DEVICE,
            &url,
            secs,
            &mut || {
                mic.play(&speech);
                mic.wait_played();
            },
        ));
    }
    println!(
        "capture + stream, {secs} s of tone words (12 a play) at 48 kHz, 20 ms chunks, per host:"
    );
    for run in &runs {
        run.print();
    }
    let _ = server.kill();
    let _ = server.wait();
}
