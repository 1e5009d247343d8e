//! Bench command for the app running in the background (tray and shortcut only), release build,
//! on Xvfb with a PulseAudio virtual microphone and the local tone server:
//! - idle: the process's CPU share of one core over `IDLE_SECS` (default 60) and its memory;
//! - dictating into a terminal by the shortcut, with the overlay up: CPU while tone words play in
//!   real time for `DICTATE_SECS` (default 30);
//! - typing latency: from a final's text handed to the typing thread to the text being in the
//!   terminal's file, for ten words, 30 times (p50, p99).
//!
//! `cargo bench --bench background` (`BACKGROUND_BENCH_BIN=PATH` runs another build;
//! `OTHER_RECORDER_MS=10` has another app record from the microphone at 10 ms latency meanwhile;
//! needs Xvfb, openbox, xterm, pulseaudio: `bash .ci/test` installs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(
    unsafe_code,
    reason = "CPU time needs sysconf(_SC_CLK_TCK) from libc: no safe std API"
)]

#[path = "../tests/common/vmic.rs"]
mod vmic;
#[path = "../tests/common/xserver.rs"]
mod xserver;

use std::process::Stdio;
use std::time::{Duration, Instant};

use lightning_dictate::server::{BackgroundServer, ServerConfig};
use xserver::{Killed, start_openbox, start_xvfb, terminal_with_focus, xdotool};

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

/// The app under test: this build's, or `BACKGROUND_BENCH_BIN` (to compare two builds in turn
/// on one machine, where the spread between runs is as large as a change).
fn app_bin() -> String {
    std::env::var("BACKGROUND_BENCH_BIN").unwrap_or_else(|_| BIN.to_owned())
}

fn env_secs(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds the process has used (user + system).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, after)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// Resident memory of the process, in MB.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU share of one core over `secs`, in percent.
fn cpu_share(pid: u32, secs: f64) -> f64 {
    let before = cpu_secs(pid);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    (cpu_secs(pid) - before) / started.elapsed().as_secs_f64() * 100.0
}

fn main() {
    let display = format!(":{}", 650 + std::process::id() % 50);
    let _xvfb = start_xvfb(&display);
    let _wm = start_openbox(&display);
    let dir = tempfile::tempdir().unwrap();
    let mut mic = vmic::VirtualMic::start_with_reader(48000, 1, "s16le", vmic::other_recorder_ms());
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let app = Killed(
        mic.command(app_bin())
            .args([
                "--background",
                "--device",
                vmic::DEVICE,
                "--url",
                server.url(),
            ])
            .env("DISPLAY", &display)
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env_remove("SMALLEST_API_KEY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = app.0.id();
    let status = || {
        mic.command(app_bin())
            .arg("status")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while status() != "idle" {
        assert!(Instant::now() < deadline, "the app did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let start-up work (fonts, the first frame) settle.
    std::thread::sleep(Duration::from_secs(3));
    let idle_secs = env_secs("IDLE_SECS", 60.0);
    let idle = cpu_share(pid, idle_secs);
    println!(
        "idle in the background: {idle:.3} % of a core over {idle_secs:.0} s; RSS {:.1} MB",
        rss_mb(pid)
    );

    // Dictating into a terminal, overlay up, tone words in real time.
    let typed = dir.path().join("typed.txt");
    let (_term, _) = terminal_with_focus(&display, &typed);
    let segments: Vec<Vec<&str>> = (0..40)
        .map(|i| {
            lightning_dictate::tones::VOCABULARY
                .iter()
                .copied()
                .cycle()
                .skip(i * 3)
                .take(4)
                .collect()
        })
        .collect();
    let refs: Vec<&[&str]> = segments.iter().map(Vec::as_slice).collect();
    let (samples, _) = lightning_dictate::tones::synthesize(
        &refs,
        16000,
        lightning_dictate::tones::ToneTiming::default(),
    );
    let wav = dir.path().join("words.wav");
    lightning_dictate::audio::wav::write_wav(
        &wav,
        &samples,
        16000,
        1,
        lightning_dictate::audio::wav::WavFormat::Int(16),
    )
    .unwrap();
    xdotool(&display, &["key", "ctrl+alt+space"]);
    std::thread::sleep(Duration::from_secs(2));
    mic.play(&wav);
    let dictate_secs = env_secs("DICTATE_SECS", 30.0);
    let dictating = cpu_share(pid, dictate_secs);
    println!(
        "dictating in the background with the overlay (capture, session, overlay, typing): {dictating:.2} % of a core over {dictate_secs:.0} s ({}); RSS {:.1} MB; {} characters typed so far",
        match vmic::other_recorder_ms() {
            ms if ms < 1000 => format!("another app recording at {ms} ms latency"),
            _ => "the only app recording".to_owned(),
        },
        rss_mb(pid),
        std::fs::read_to_string(&typed).map_or(0, |t| t.len())
    );
    xdotool(&display, &["key", "ctrl+alt+space"]);
    mic.wait_played();
    drop(app);

    // Typing latency: ten words from the typing thread to the terminal's file.
    let inserter = lightning_dictate::desktop::Inserter::start_on(
        Some(&display),
        lightning_dictate::desktop::InsertMethod::Type,
    )
    .unwrap();
    let sentence = "the quick brown fox jumps over the lazy dog again";
    let mut latencies = Vec::new();
    for _ in 0..30 {
        let before = std::fs::metadata(&typed).map_or(0, |m| m.len());
        let started = Instant::now();
        inserter.insert(&format!(" {sentence}"));
        let want = before + sentence.len() as u64 + 1;
        while std::fs::metadata(&typed).map_or(0, |m| m.len()) < want {
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "a ten-word final into the terminal: p50 {:.1} ms, p99 {:.1} ms over {} runs",
        at(0.5),
        at(0.99),
        latencies.len()
    );
}
