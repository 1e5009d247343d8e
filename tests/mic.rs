//! The microphone through the real cpal path: a PulseAudio null sink whose monitor is the
//! microphone, fed at real time by paplay; `transcribe --mic` run as a user runs it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::vmic::{DEVICE, PIPEWIRE_DEVICE, PipeWireMic, VirtualMic, speech_wav};
use common::*;
use lightning_dictate::audio::resample::MonoResampler;
use lightning_dictate::audio::wav::{WavFormat, read_all};
use lightning_dictate::server::{BackgroundServer, Faults, ServerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

/// A running `transcribe --mic`, with its stderr lines arriving on a channel.
struct MicRun {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl MicRun {
    fn start(mic: &VirtualMic, url: &str, extra: &[&str]) -> MicRun {
        MicRun::spawn(mic.command(BIN), DEVICE, url, extra)
    }

    /// `transcribe --mic --device DEVICE` run as `command` (which names the sound server).
    fn spawn(
        mut command: std::process::Command,
        device: &str,
        url: &str,
        extra: &[&str],
    ) -> MicRun {
        let mut child = command
            .args(["transcribe", "--mic", "--device", device, "--url", url])
            .args(extra)
            .env_remove("SMALLEST_API_KEY")
            // HOME is the daemon's folder: the offline model stays where it was fetched.
            .envs(
                lightning_dictate::paths::data_dir()
                    .and_then(|d| d.parent().map(|p| ("XDG_DATA_HOME", p.to_path_buf()))),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn transcribe --mic");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        MicRun {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `text`.
    fn wait_for(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.seen.iter().any(|l| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!(
                    "no `{text}` on stderr within {timeout:?} ({e}): {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Waits for the process (bounded: a hang fails the test), returning exit code, stdout,
    /// stderr.
    fn finish(mut self, timeout: Duration) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("transcribe --mic hung: {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        }
        std::thread::sleep(Duration::from_millis(50));
        self.seen.extend(self.lines.try_iter());
        (status.code(), out, self.seen.join("\n"))
    }
}

fn recording_server() -> BackgroundServer {
    let mut config = ServerConfig::loopback(0);
    config.record_sessions = true;
    BackgroundServer::start(config).expect("server")
}

/// Normalised correlation of `reference` against `recorded` at the best alignment.
fn best_correlation(reference: &[f32], recorded: &[f32]) -> f64 {
    assert!(
        recorded.len() > reference.len(),
        "recording shorter than the source"
    );
    // Coarse: 10 ms energy envelopes.
    let envelope = |x: &[f32]| -> Vec<f64> {
        x.chunks(160)
            .map(|c| c.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>())
            .collect()
    };
    let (er, ey) = (envelope(reference), envelope(recorded));
    let coarse = (0..=ey.len().saturating_sub(er.len()))
        .max_by(|&a, &b| {
            let score = |lag: usize| er.iter().zip(&ey[lag..]).map(|(p, q)| p * q).sum::<f64>();
            score(a).total_cmp(&score(b))
        })
        .unwrap_or(0);
    // Fine: every sample lag within 20 ms of the coarse one.
    let centre = coarse * 160;
    let lo = centre.saturating_sub(320);
    let hi = (centre + 320).min(recorded.len() - reference.len());
    let ref_energy: f64 = reference.iter().map(|&s| f64::from(s).powi(2)).sum();
    let scores: Vec<f64> = (lo..=hi)
        .map(|lag| {
            let window = &recorded[lag..lag + reference.len()];
            let dot: f64 = reference
                .iter()
                .zip(window)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let energy: f64 = window.iter().map(|&s| f64::from(s).powi(2)).sum();
            dot / (ref_energy * energy).sqrt().max(1e-12)
        })
        .collect();
    let best = (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap_or(0);
    // The true alignment falls between samples: a parabola through the peak and its neighbours
    // gives the correlation there.
    if best == 0 || best + 1 >= scores.len() {
        return scores[best];
    }
    let (l, c, r) = (scores[best - 1], scores[best], scores[best + 1]);
    let curvature = l - 2.0 * c + r;
    if curvature >= 0.0 {
        return c;
    }
    c - (r - l).powi(2) / (8.0 * curvature)
}

#[test]
fn captured_samples_match_the_file_at_every_device_rate_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let text = "the quick brown fox jumps over the lazy dog";
    let cases = [
        (16000, 1, "s16le"),
        (44100, 2, "float32le"),
        (48000, 2, "s16le"),
        (48000, 1, "float32le"),
    ];
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(rate, channels, format)| {
            // The file is at the device's rate, so the sound server plays it untouched and the
            // only resampling is the app's own.
            let speech = speech_wav(dir.path(), &format!("speech{rate}.wav"), text, rate);
            let (info, samples) = read_all(&speech).unwrap();
            let mut resampler = MonoResampler::new(info.sample_rate, 16000).unwrap();
            let mut reference = Vec::new();
            resampler.push(&samples, &mut reference).unwrap();
            resampler.finish(&mut reference).unwrap();
            let secs = reference.len() as f64 / 16000.0;
            std::thread::spawn(move || {
                let mut mic = VirtualMic::start(rate, channels, format);
                let server = recording_server();
                let duration = format!("{:.2}", secs + 1.5);
                let mut run = MicRun::start(&mic, server.url(), &["--duration", &duration]);
                run.wait_for(
                    &format!("({rate} Hz, {channels} ch"),
                    Duration::from_secs(10),
                );
                run.wait_for("listening", Duration::from_secs(10));
                mic.play(&speech);
                let (code, _, stderr) = run.finish(Duration::from_secs(30));
                assert_eq!(code, Some(0), "{stderr}");
                let record = server
                    .records()
                    .recv_timeout(Duration::from_secs(5))
                    .expect("session record");
                let recorded: Vec<f32> = record
                    .audio
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                    .collect();
                let correlation = best_correlation(&reference, &recorded);
                (rate, channels, format, correlation)
            })
        })
        .collect();
    for handle in handles {
        let (rate, channels, format, correlation) = handle.join().expect("case thread");
        eprintln!("{rate} Hz x{channels} {format}: correlation {correlation:.4}");
        assert!(
            correlation >= 0.98,
            "{rate} Hz x{channels} {format}: correlation {correlation:.4}"
        );
    }
}

#[test]
fn the_first_word_survives_a_slow_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = tone_wav(dir.path(), "s.wav", &SCRIPT, 44100, 2, WavFormat::Int(16));
    let secs = placed.last().map_or(0.0, |w| w.end) + 0.8;
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let mut config = ServerConfig::loopback(0);
    // The handshake takes 1.5 s: the first words are spoken before the socket is open.
    config.faults = Faults {
        handshake_delay: Duration::from_millis(1500),
        ..Faults::default()
    };
    let server = BackgroundServer::start(config).unwrap();
    let duration = format!("{:.2}", secs + 1.0);
    let mut run = MicRun::start(
        &mic,
        server.url(),
        &["--duration", &duration, "--word-timestamps"],
    );
    run.wait_for("listening", Duration::from_secs(10));
    mic.play(&wav);
    let (code, stdout, stderr) = run.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines, script_text(), "{stderr}");
    let listening = stderr.find("listening").unwrap();
    let connected = stderr.find("connected").unwrap();
    assert!(listening < connected, "{stderr}");
}

#[test]
fn an_unplugged_microphone_ends_cleanly_keeping_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = tone_wav(dir.path(), "s.wav", &SCRIPT, 16000, 1, WavFormat::Int(16));
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let mut run = MicRun::start(&mic, server.url(), &["--duration", "30"]);
    run.wait_for("listening", Duration::from_secs(10));
    mic.play(&wav);
    // The first segment is final 1.82 s in; unplug after the second (3.56 s).
    std::thread::sleep(Duration::from_millis(3900));
    mic.unplug();
    let (code, stdout, stderr) = run.finish(Duration::from_secs(20));
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!("the input device `{DEVICE}` failed")),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, script_text()[..2], "{stderr}");
}

#[test]
fn a_silent_microphone_is_reported() {
    let mic = VirtualMic::start(16000, 1, "s16le");
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let run = MicRun::start(&mic, server.url(), &["--duration", "4.5"]);
    let (code, stdout, stderr) = run.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.trim().is_empty());
    assert!(stderr.contains("only silence for 3 s"), "{stderr}");
}

#[test]
fn a_handoff_overflow_is_counted_and_reported() {
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = tone_wav(
        dir.path(),
        "s.wav",
        &[&["hello"]],
        48000,
        1,
        WavFormat::Int(16),
    );
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    // A 1 ms hand-off cannot hold one device period: every callback overflows.
    let mut run = MicRun::start(
        &mic,
        server.url(),
        &["--duration", "2", "--handoff-ms", "1"],
    );
    run.wait_for("listening", Duration::from_secs(10));
    mic.play(&wav);
    let (code, _, stderr) = run.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("the computer fell behind the microphone"),
        "{stderr}"
    );
    assert!(stderr.contains("audio frames were dropped"), "{stderr}");
}

#[test]
fn an_unknown_device_exits_5_listing_the_devices() {
    let mic = VirtualMic::start(16000, 1, "s16le");
    let out = mic
        .command(BIN)
        .args([
            "transcribe",
            "--mic",
            "--device",
            "no such mic",
            "--url",
            "ws://127.0.0.1:9/x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
    assert!(
        line.contains("no input device matches `no such mic`"),
        "{err}"
    );
    assert!(line.contains(DEVICE), "{err}");
    // And `devices` lists it as the default.
    let out = mic.command(BIN).arg("devices").output().unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&format!("* {DEVICE}")), "{listing}");
}

/// The service dies for good mid-dictation: `transcribe --mic` says it goes on with the recogniser
/// on this computer and the rest of the speech still comes out (real speech, the real model on
/// both sides).
#[test]
fn the_microphone_goes_on_offline_when_the_service_dies() {
    let model = lightning_dictate::whisper::default_model_dir().expect("HOME is set");
    assert!(
        lightning_dictate::whisper::looks_like_model(&model),
        "the offline model is missing: run `lightning-dictate model fetch tiny.en base` (`bash .ci/test` does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let first = "Please call me back when you get home.";
    let second = "The children played in the park until dark.";
    let wav = speech_wav(
        dir.path(),
        "speech.wav",
        &format!("{first} ... ... {second}"),
        16000,
    );
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    let mut server = ServeProcess::spawn(&["--engine", "whisper"]);
    let mut run = MicRun::start(&mic, &server.url, &["--duration", "26"]);
    run.wait_for("listening", Duration::from_secs(10));
    mic.play(&wav);
    // The first sentence is recognised by the service, then it goes away.
    std::thread::sleep(Duration::from_millis(3500));
    server.kill();
    run.wait_for(
        "continuing with the recogniser on this computer",
        Duration::from_secs(20),
    );
    mic.wait_played();
    let (code, out, err) = run.finish(Duration::from_secs(40));
    assert_eq!(code, Some(0), "{err}");
    let text = out.to_lowercase();
    for word in ["call", "home", "children", "played", "park", "dark"] {
        assert!(text.contains(word), "{word:?} missing from {text:?}\n{err}");
    }
}

/// `PULSE_RUNTIME_PATH` (and `PULSE_SERVER`) set, as sessions and sandboxes set them: the
/// PulseAudio host is still offered, and chosen, rather than ALSA at a quarter of a core.
#[test]
fn the_pulseaudio_host_is_found_with_pulse_runtime_path_or_pulse_server_set() {
    let mic = VirtualMic::start(48000, 1, "s16le");
    let pulse_dir = mic.runtime_dir().join("pulse");
    let socket = format!("unix:{}", pulse_dir.join("native").display());
    let cases = [
        ("PULSE_RUNTIME_PATH", pulse_dir.display().to_string()),
        // A runtime path without a server in it: the next place is tried.
        ("PULSE_RUNTIME_PATH", "/nonexistent/pulse".to_owned()),
        ("PULSE_SERVER", socket),
    ];
    for (name, value) in &cases {
        let out = mic
            .command(BIN)
            .arg("devices")
            .env(name, value)
            .output()
            .expect("run devices");
        let listed = String::from_utf8_lossy(&out.stdout);
        let default = listed
            .lines()
            .find(|l| l.starts_with('*'))
            .unwrap_or_default();
        assert!(
            default.starts_with("* PulseAudio:"),
            "{name}={value}: default {default:?}\n{listed}"
        );
    }
}

/// The tone script as a 48 kHz WAV (in a folder kept while the first value lives), a
/// `--duration` that covers it and `extra_secs` more, and a local server.
fn script_run(
    extra_secs: f64,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    String,
    BackgroundServer,
) {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = tone_wav(dir.path(), "s.wav", &SCRIPT, 48000, 1, WavFormat::Int(16));
    let secs = placed.last().map_or(0.0, |w| w.end) + extra_secs;
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    (dir, wav, format!("{secs:.2}"), server)
}

/// The same tone words captured through every audio host that can run here: cpal's PulseAudio
/// host, its ALSA host through the PulseAudio plugin (what the app falls back to), and its
/// PipeWire host on a private PipeWire daemon. Every word arrives, the first included, and the
/// dictation ends cleanly (closing a PipeWire stream used to be reported as a lost device).
#[test]
fn every_tone_word_arrives_through_each_audio_host() {
    let (_dir, wav, duration, server) = script_run(1.0);
    let check = |host: &str, mut run: MicRun, play: &mut dyn FnMut()| {
        run.wait_for(&format!("microphone: {host}"), Duration::from_secs(10));
        run.wait_for("listening", Duration::from_secs(10));
        play();
        let (code, stdout, stderr) = run.finish(Duration::from_secs(30));
        assert_eq!(code, Some(0), "{host}: {stderr}");
        let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
        assert_eq!(lines, script_text(), "{host}: {stderr}");
    };
    {
        let mut mic = VirtualMic::start(48000, 1, "s16le");
        for device in [DEVICE, "ALSA: PulseAudio Sound Server"] {
            let run = MicRun::spawn(
                mic.command(BIN),
                device,
                server.url(),
                &["--duration", &duration],
            );
            check(device, run, &mut || {
                mic.play(&wav);
                mic.wait_played();
            });
        }
    }
    let mut mic = PipeWireMic::start(48000);
    let out = mic.command(BIN).arg("devices").output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.lines().any(|l| l.starts_with("* PipeWire:"))
            && listed.contains("audio host: PipeWire"),
        "{listed}"
    );
    let run = MicRun::spawn(
        mic.command(BIN),
        PIPEWIRE_DEVICE,
        server.url(),
        &["--duration", &duration],
    );
    check(PIPEWIRE_DEVICE, run, &mut || {
        mic.play(&wav);
        mic.wait_played();
    });
}

/// What the microphone capture says of audio the device never delivered.
const MISSED: &str = "s of audio never came from the microphone";

/// Ctrl+Z then `fg` (SIGSTOP, SIGCONT) mid-dictation: a stopped process's waits end with EINTR
/// when it goes on, and the PulseAudio client took that for a lost connection ("the input device
/// failed (PulseAudio disconnected)" after 1.3 s of 8.8). The PulseAudio host and ALSA through
/// the PulseAudio plugin must go on, every word arriving once, in order (the server keeps what
/// the stopped process did not read). PipeWire keeps nothing for a stopped client: the audio of
/// the stop is gone, and the user must be told so, in one line, and the dictation go on.
#[test]
fn a_dictation_stopped_and_continued_goes_on_and_says_what_never_came() {
    let (_dir, wav, duration, server) = script_run(2.0);
    let signal = |pid: u32, name: &str| {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name}");
    };
    let stop_and_go_on = |mut run: MicRun, play: &mut dyn FnMut()| {
        run.wait_for("listening", Duration::from_secs(10));
        play();
        std::thread::sleep(Duration::from_millis(1500));
        signal(run.child.id(), "STOP");
        std::thread::sleep(Duration::from_secs(1));
        signal(run.child.id(), "CONT");
        run.finish(Duration::from_secs(30))
    };
    let check = |host: &str, run: MicRun, play: &mut dyn FnMut()| {
        let (code, stdout, stderr) = stop_and_go_on(run, play);
        assert_eq!(code, Some(0), "{host}: {stderr}");
        let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
        assert_eq!(lines, script_text(), "{host}: {stderr}");
        assert!(!stderr.contains(MISSED), "{host}: {stderr}");
    };
    let mut mic = VirtualMic::start(48000, 1, "s16le");
    for device in [DEVICE, "ALSA: PulseAudio Sound Server"] {
        let run = MicRun::spawn(
            mic.command(BIN),
            device,
            server.url(),
            &["--duration", &duration],
        );
        check(device, run, &mut || mic.play(&wav));
        mic.wait_played();
    }
    drop(mic);
    let mut mic = PipeWireMic::start(48000);
    let run = MicRun::spawn(
        mic.command(BIN),
        PIPEWIRE_DEVICE,
        server.url(),
        &["--duration", &duration],
    );
    let (code, stdout, stderr) = stop_and_go_on(run, &mut || mic.play(&wav));
    mic.wait_played();
    assert_eq!(code, Some(0), "{stderr}");
    let missed = stderr
        .lines()
        .find_map(|l| l.strip_prefix("warning: ")?.split_once(MISSED))
        .and_then(|(secs, _)| secs.trim().parse::<f64>().ok());
    assert!(
        missed.is_some_and(|s| (0.7..=1.5).contains(&s)),
        "the second of audio PipeWire did not keep must be reported: {stderr}"
    );
    // What was said before and after the stop still arrives.
    assert!(stdout.starts_with("lightning dictate"), "{stdout}");
    assert!(stdout.trim_end().ends_with("one two three"), "{stdout}");
}

/// Through ALSA's PulseAudio plugin the stream delivers nothing for its first second or two
/// (the server starts sending late), and the plugin's descriptor stays readable meanwhile: cpal
/// polled again at once and spun a whole core until audio came (and would for as long as a source
/// sends nothing). Waiting must sleep: the spin took about 2 CPU seconds of the first 3.
#[test]
fn capture_through_alsa_sleeps_while_no_audio_comes() {
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let mic = VirtualMic::start(48000, 1, "s16le");
    let run = MicRun::spawn(
        mic.command(BIN),
        "ALSA: PulseAudio Sound Server",
        server.url(),
        &["--duration", "5"],
    );
    // From the start: "listening" is printed once audio flows, after the wait.
    std::thread::sleep(Duration::from_secs(3));
    let used = process_cpu_seconds(run.child.id());
    let (code, _, stderr) = run.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        used < 0.5,
        "the process used {used:.2} CPU seconds in its first 3 s: {stderr}"
    );
}

/// A running process's user + system CPU time, from /proc.
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    ticks / hz
}

/// No sound server at all: `devices` says capture goes through ALSA, and why.
#[test]
fn with_no_sound_server_devices_says_it_falls_back_to_alsa() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .arg("devices")
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("HOME", dir.path())
        .env_remove("PULSE_SERVER")
        .env_remove("PULSE_RUNTIME_PATH")
        .env_remove("PIPEWIRE_RUNTIME_DIR")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    let summary = listed
        .lines()
        .find(|l| l.starts_with("audio host:"))
        .unwrap_or_default();
    assert!(
        summary.starts_with("audio host: ALSA, since no sound server answered"),
        "{listed}"
    );
    let socket = dir.path().join("pipewire-0");
    assert!(
        summary.contains(&format!(
            "PipeWire: no server running (no socket at {})",
            socket.display()
        )),
        "{summary}"
    );
    assert!(
        summary.contains("PulseAudio: no server running"),
        "{summary}"
    );
}
