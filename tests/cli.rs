//! The `transcribe` and `serve` commands as a user runs them: real processes, real sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use lightning_dictate::audio::wav::WavFormat;

const BIN: &str = env!("CARGO_BIN_EXE_lightning-dictate");

/// The local server with the tone engine, in its own process.
struct Server;

impl Server {
    fn spawn(extra: &[&str]) -> ServeProcess {
        let mut args = vec!["--engine", "tone"];
        args.extend_from_slice(extra);
        ServeProcess::spawn(&args)
    }
}

fn transcribe(wav: &Path, args: &[&str]) -> Output {
    transcribe_cli(wav, args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sample(
    dir: &Path,
) -> (
    std::path::PathBuf,
    Vec<lightning_dictate::tones::PlacedWord>,
) {
    tone_wav(dir, "speech.wav", &SCRIPT, 44100, 2, WavFormat::Int(16))
}

#[test]
fn text_output_prints_each_final_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = sample(dir.path());
    let server = Server::spawn(&[]);
    let out = transcribe(&wav, &["--url", &server.url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, script_text());
    assert!(
        stderr(&out).contains("done: 3 segment(s)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn realtime_pacing_takes_as_long_as_the_audio() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = tone_wav(
        dir.path(),
        "short.wav",
        &[&["hello", "world"]],
        16000,
        1,
        WavFormat::Int(16),
    );
    let server = Server::spawn(&[]);
    let started = Instant::now();
    let out = transcribe(
        &wav,
        &["--url", &server.url, "--realtime", "--chunk-ms", "40"],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "hello world");
    // 0.2 + 0.2 + 0.08 + 0.2 + 0.6 = 1.28 s of audio.
    assert!(took >= Duration::from_millis(1200), "{took:?}");
}

#[test]
fn jsonl_output_is_every_server_message_as_received() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = sample(dir.path());
    let server = Server::spawn(&[]);
    let out = transcribe(
        &wav,
        &[
            "--url",
            &server.url,
            "--format",
            "jsonl",
            "--word-timestamps",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let messages: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let finals: Vec<&str> = messages
        .iter()
        .filter(|m| m["is_final"] == true && m["transcript"] != "")
        .map(|m| m["transcript"].as_str().unwrap())
        .collect();
    assert_eq!(finals, script_text());
    // 12 words: an interim per word, a final per segment, and the terminal message.
    assert_eq!(messages.len(), 12 + 3 + 1);
    assert_eq!(messages.last().unwrap()["is_last"], true);
    assert!(
        messages
            .iter()
            .filter(|m| m["is_final"] == true && m["transcript"] != "")
            .all(|m| m["word_timestamps"].is_array())
    );
    assert!(
        messages
            .iter()
            .filter(|m| m["is_final"] == false)
            .all(|m| m.get("language").is_none())
    );
}

#[test]
fn srt_and_vtt_cues_follow_the_words() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, placed) = sample(dir.path());
    let server = Server::spawn(&[]);
    let out = transcribe(&wav, &["--url", &server.url, "--format", "srt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let srt = stdout(&out);
    let blocks: Vec<&str> = srt.trim().split("\n\n").collect();
    assert_eq!(blocks.len(), 3, "{srt}");
    let mut word = 0;
    for (i, (block, segment)) in blocks.iter().zip(SCRIPT.iter()).enumerate() {
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines[0], (i + 1).to_string());
        assert_eq!(lines[2], segment.join(" "));
        let (start, end) = lines[1].split_once(" --> ").unwrap();
        let first = &placed[word];
        let last = &placed[word + segment.len() - 1];
        word += segment.len();
        assert!(
            (srt_secs(start) - first.start).abs() < 0.015,
            "{start} vs {}",
            first.start
        );
        assert!(
            (srt_secs(end) - last.end).abs() < 0.015,
            "{end} vs {}",
            last.end
        );
    }
    let out = transcribe(&wav, &["--url", &server.url, "--format", "vtt"]);
    assert_eq!(out.status.code(), Some(0));
    let vtt = stdout(&out);
    assert!(vtt.starts_with("WEBVTT\n\n00:00:00."), "{vtt}");
    assert_eq!(vtt.matches(" --> ").count(), 3);
}

fn srt_secs(t: &str) -> f64 {
    let (hms, ms) = t.split_once(',').unwrap();
    let parts: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2] + ms.parse::<f64>().unwrap() / 1000.0
}

#[test]
fn a_wrong_key_exits_3_quickly_and_never_shows_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = sample(dir.path());
    let server = Server::spawn(&["--api-key", "the-right-key"]);
    let secret = "sk-WRONG-5ecr3t-value";
    let started = Instant::now();
    let out = transcribe(&wav, &["--url", &server.url, "--api-key", secret, "-vv"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "{err}");
    // What happened (with the server's reason), then what to type about it.
    assert!(
        error_lines[0].starts_with("error: the server refused the API key (HTTP 401)")
            && error_lines[0].ends_with(": set SMALLEST_API_KEY or pass --api-key"),
        "{}",
        error_lines[0]
    );
    assert!(
        !err.contains(secret) && !stdout(&out).contains(secret),
        "{err}"
    );
    // The same key from the environment is refused the same way; the right one works.
    let out = Command::new(BIN)
        .args([
            "transcribe",
            wav.to_str().unwrap(),
            "--url",
            &server.url,
            "-q",
        ])
        .env("SMALLEST_API_KEY", "the-right-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3);
}

#[test]
fn a_dead_server_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = sample(dir.path());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = transcribe(
        &wav,
        &[
            "--url",
            &format!("ws://127.0.0.1:{port}/api/v1/lightning/get_text"),
        ],
    );
    assert_eq!(out.status.code(), Some(4));
    // What happened, then what to type about it, on one line.
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(line.starts_with("error: cannot reach 127.0.0.1"), "{err}");
    assert!(
        line.ends_with("check --url and the network (or start `lightning-dictate serve`)"),
        "{err}"
    );
}

/// The library's errors in terminal words: a missing offline model names the flag and the
/// command that fix it (the window says it in its own words: tests/window.rs).
#[test]
fn a_missing_model_says_which_flag_and_command_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = sample(dir.path());
    let nowhere = dir.path().join("no-model-here");
    let out = transcribe(&wav, &["--offline", "--model", nowhere.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.starts_with(&format!("error: no Whisper model at {}", nowhere.display())),
        "{err}"
    );
    assert!(
        line.contains("`lightning-dictate model fetch tiny.en`")
            && line.contains("--model NAME|DIR"),
        "{err}"
    );
}

#[test]
fn unreadable_audio_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn(&[]);
    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, b"this is not audio at all").unwrap();
    for path in [junk.clone(), dir.path().join("missing.wav")] {
        let out = transcribe(&path, &["--url", &server.url]);
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    // A file cut short: what is there is transcribed, then exit 5 says so.
    let (wav, _) = sample(dir.path());
    let bytes = std::fs::read(&wav).unwrap();
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = transcribe(&cut, &["--url", &server.url]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&script_text()[0]),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("is damaged after"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_options_exit_2_listing_the_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = sample(dir.path());
    let out = transcribe(&wav, &["--language", "xx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("it, es, en, pt"), "{}", stderr(&out));
    assert!(stderr(&out).contains("multi"));
    let out = transcribe(&wav, &["--sample-rate", "11025"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("8000, 16000, 22050, 24000, 44100, 48000"));
    let out = transcribe(&wav, &["--encoding", "flac"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("linear16, linear32, alaw, mulaw"));
    let out = transcribe(
        &wav,
        &["--url", "ws://example.com/get_text", "--api-key", "k"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refusing to send the API key unencrypted"));
}

/// Audio that could not be kept through an outage (a tiny replay limit, a test knob) is marked in
/// the text and the subtitles, and the command exits 6, not 0.
#[test]
fn audio_that_could_not_be_transcribed_is_marked_and_exits_6() {
    let dir = tempfile::tempdir().unwrap();
    let segments = long_script(6.0, 21);
    let (wav, _) = script_file(dir.path(), "live.wav", &segments);
    for format in ["text", "srt"] {
        // Three refused handshakes: about 1.75 s of backoff while "live" audio keeps coming.
        let server = Server::spawn(&["--fault-refuse", "3", "--fault-refuse-status", "503"]);
        let out = transcribe(
            &wav,
            &[
                "--url",
                &server.url,
                "--realtime",
                "--simulate-live",
                "--replay-limit-secs",
                "0.5",
                "--format",
                format,
            ],
        );
        assert_eq!(out.status.code(), Some(6), "{format}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(" s not transcribed …]"), "{format}: {text}");
        assert!(
            stderr(&out).contains("could not be transcribed"),
            "{}",
            stderr(&out)
        );
        if format == "srt" {
            assert!(text.starts_with("1\n00:00:00,"), "{text}");
        }
    }
}

/// Without a gap, the same outage recovers everything and exits 0 (the replay window holds it).
#[test]
fn an_outage_within_the_replay_window_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let segments = long_script(6.0, 21);
    let (wav, expected) = script_file(dir.path(), "live.wav", &segments);
    let server = Server::spawn(&["--fault-refuse", "3", "--fault-refuse-status", "503"]);
    let out = transcribe(
        &wav,
        &["--url", &server.url, "--realtime", "--simulate-live"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got: Vec<String> = stdout(&out).split_whitespace().map(str::to_owned).collect();
    assert_eq!(got, expected);
}

/// `install-desktop` puts the app in the launcher (entry running this binary, and the icon);
/// `uninstall-desktop` takes it out again, with the login entry.
#[test]
fn install_desktop_adds_the_launcher_entry_and_uninstall_removes_it() {
    let home = tempfile::tempdir().unwrap();
    let (data, config) = (home.path().join("data"), home.path().join("config"));
    let run = |command: &str| {
        Command::new(BIN)
            .arg(command)
            .env("XDG_DATA_HOME", &data)
            .env("XDG_CONFIG_HOME", &config)
            .output()
            .unwrap()
    };
    // An entry under the name it had before goes: one app in the launcher.
    let old = data.join("applications/lightning-dictate.desktop");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, "[Desktop Entry]\n").unwrap();
    let out = run("install-desktop");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!old.exists());
    // Named after the app id (GNOME ties the window and the portals' permissions to it).
    let file = "applications/dev.lightning_dictate.LightningDictate.desktop";
    let entry = std::fs::read_to_string(data.join(file)).unwrap();
    assert!(entry.contains(&format!("Exec=\"{BIN}\"\n")), "{entry}");
    assert!(
        data.join("icons/hicolor/64x64/apps/lightning-dictate.png")
            .is_file()
    );
    // The login entry (written by Settings → Start at login) goes too.
    let autostart = config.join("autostart/dev.lightning_dictate.LightningDictate.desktop");
    std::fs::create_dir_all(autostart.parent().unwrap()).unwrap();
    std::fs::write(&autostart, "[Desktop Entry]\n").unwrap();
    let out = run("uninstall-desktop");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!data.join(file).exists());
    assert!(!autostart.exists());
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
}
