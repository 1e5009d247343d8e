//! Shared helpers for the integration tests: tone-word WAV files and a client run against a
//! server, through the library's real pipeline and a real WebSocket on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(dead_code)]

pub mod dbus;
pub mod vmic;
pub mod xserver;

use std::path::{Path, PathBuf};

use lightning_dictate::audio::wav::{Pace, WavFormat, write_wav};
use lightning_dictate::dictation::{
    Dictation, DictationError, DictationEvent, DictationRequest, Source, Target,
};
use lightning_dictate::protocol::StreamParams;
use lightning_dictate::session::{SessionConfig, SessionError, SessionEvent, SessionSummary};
use lightning_dictate::tones::{self, PlacedWord, ToneTiming};
use lightning_dictate::transcript::Transcript;

/// The segments most tests speak.
pub const SCRIPT: [&[&str]; 3] = [
    &["lightning", "dictate", "streams", "every", "word"],
    &["nothing", "is", "ever", "lost"],
    &["one", "two", "three"],
];

pub fn script_text() -> Vec<String> {
    SCRIPT.iter().map(|s| s.join(" ")).collect()
}

/// Writes the tone script as a WAV file; returns where each word is.
pub fn tone_wav(
    dir: &Path,
    name: &str,
    segments: &[&[&str]],
    rate: u32,
    channels: u16,
    format: WavFormat,
) -> (PathBuf, Vec<PlacedWord>) {
    let (samples, placed) = tones::synthesize(segments, rate, ToneTiming::default());
    let path = dir.join(name);
    write_wav(&path, &samples, rate, channels, format).expect("write wav");
    (path, placed)
}

/// What a client run produced.
pub struct Run {
    pub outcome: Result<SessionSummary, SessionError>,
    pub events: Vec<SessionEvent>,
    /// When each event arrived, from the start of the run.
    pub times: Vec<std::time::Duration>,
    pub transcript: Transcript,
}

impl Run {
    pub fn finals(&self) -> Vec<String> {
        self.transcript
            .segments
            .iter()
            .map(|s| s.text.clone())
            .collect()
    }

    /// Every word of every final, in order.
    pub fn words(&self) -> Vec<String> {
        self.transcript
            .segments
            .iter()
            .flat_map(|s| s.text.split_whitespace().map(str::to_owned))
            .collect()
    }

    /// Seconds from each `Reconnecting` to the next `Reconnected`.
    pub fn recoveries(&self) -> Vec<f64> {
        let mut out = Vec::new();
        let mut since = None;
        for (event, at) in self.events.iter().zip(&self.times) {
            match event {
                SessionEvent::Reconnecting { .. } => {
                    since.get_or_insert(*at);
                }
                SessionEvent::Reconnected { .. } => {
                    if let Some(start) = since.take() {
                        out.push((*at).checked_sub(start).unwrap().as_secs_f64());
                    }
                }
                _ => {}
            }
        }
        out
    }

    pub fn reconnect_attempts(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, SessionEvent::Reconnecting { .. }))
            .count()
    }

    pub fn interims(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, SessionEvent::Interim { .. }))
            .count()
    }
}

/// Streams a WAV file to `url` with the library's session task.
pub fn run_client(
    url: &str,
    wav: &Path,
    params: StreamParams,
    chunk_ms: u32,
    tweak: impl FnOnce(&mut SessionConfig) + Send + 'static,
) -> Run {
    run_client_paced(url, wav, params, chunk_ms, Pace::AsFastAsPossible, tweak)
}

/// [`run_client`] at a chosen pace (`Pace::Realtime`: as a microphone would deliver it).
pub fn run_client_paced(
    url: &str,
    wav: &Path,
    params: StreamParams,
    chunk_ms: u32,
    pace: Pace,
    tweak: impl FnOnce(&mut SessionConfig) + Send + 'static,
) -> Run {
    // Started the way every front end starts one: through the dictation core.
    let request = DictationRequest::new(
        Source::File {
            path: wav.to_path_buf(),
            pace,
            simulate_live: false,
        },
        params,
        Target::Service {
            url: url.to_owned(),
            api_key: None,
            fallback: None,
        },
    )
    .chunk_ms(chunk_ms)
    .configure(tweak);
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let started = std::time::Instant::now();
    let collector = std::thread::spawn(move || {
        event_rx
            .iter()
            .filter_map(|e| match e {
                DictationEvent::Session(e) => Some((e, started.elapsed())),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    let dictation = Dictation::start(request, event_tx).expect("the dictation starts");
    let outcome = match dictation.wait().session {
        Ok(summary) => Ok(summary),
        Err(DictationError::Session(e)) => Err(e),
        Err(DictationError::Start(e)) => panic!("the dictation did not start: {e}"),
    };
    let (events, times): (Vec<SessionEvent>, Vec<_>) =
        collector.join().expect("collector").into_iter().unzip();
    let mut transcript = Transcript::default();
    for e in &events {
        transcript.apply(e);
    }
    Run {
        outcome,
        events,
        times,
        transcript,
    }
}

/// Asserts the transcript's word times match where the words were placed (proves no audio was
/// lost, duplicated or reordered on the way).
pub fn assert_word_times(transcript: &Transcript, placed: &[PlacedWord], tolerance: f64) {
    let words: Vec<_> = transcript
        .segments
        .iter()
        .flat_map(|s| s.words.iter())
        .collect();
    assert_eq!(words.len(), placed.len(), "word count");
    for (got, want) in words.iter().zip(placed) {
        assert_eq!(got.word, want.word);
        assert!(
            (got.start - want.start).abs() <= tolerance && (got.end - want.end).abs() <= tolerance,
            "{} at {:.3}-{:.3}, expected {:.3}-{:.3}",
            got.word,
            got.start,
            got.end,
            want.start,
            want.end
        );
    }
}

/// A local server on a free port with these fault switches.
pub fn server_with(
    faults: lightning_dictate::server::Faults,
) -> lightning_dictate::server::BackgroundServer {
    let mut config = lightning_dictate::server::ServerConfig::loopback(0);
    config.faults = faults;
    lightning_dictate::server::BackgroundServer::start(config).expect("server")
}

/// linear16 at 16 kHz, word timestamps on: the parameters the fault tests use.
pub fn timed_params() -> StreamParams {
    StreamParams {
        word_timestamps: true,
        ..StreamParams::default()
    }
}

/// linear16 at 16 kHz: bytes up to `secs` into a session's stream.
pub fn bytes_at(secs: f64) -> u64 {
    (secs * 32000.0) as u64
}

/// A `lightning-dictate serve --port 0 ARGS...` process, killed on drop.
pub struct ServeProcess {
    child: std::process::Child,
    pub url: String,
}

impl ServeProcess {
    pub fn spawn(args: &[&str]) -> ServeProcess {
        Self::spawn_logged(args).0
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Words lost and words added (duplicates) going from `expected` to `got`, by their longest
/// common subsequence.
pub fn lost_and_added<E: AsRef<str>, G: AsRef<str>>(expected: &[E], got: &[G]) -> (usize, usize) {
    // Two rows of the table: memory linear in `got`, for an hour of words too.
    let mut previous = vec![0u32; got.len() + 1];
    let mut current = vec![0u32; got.len() + 1];
    for e in expected {
        for (j, g) in got.iter().enumerate() {
            current[j + 1] = if e.as_ref() == g.as_ref() {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let common = previous[got.len()] as usize;
    (expected.len() - common, got.len() - common)
}

/// About `secs` of tone speech: segments of 2 to 6 vocabulary words picked by a seeded generator.
pub fn long_script(secs: f64, seed: u64) -> Vec<Vec<&'static str>> {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let timing = ToneTiming::default();
    let mut total = timing.lead_in + timing.tail;
    let mut segments = Vec::new();
    while total < secs {
        let len = 2 + next(5) as usize;
        let words: Vec<&'static str> = (0..len)
            .map(|_| tones::VOCABULARY[next(tones::VOCABULARY.len() as u64) as usize])
            .collect();
        total += timing.segment_gap + len as f64 * timing.word + (len - 1) as f64 * timing.word_gap;
        segments.push(words);
    }
    segments
}

/// Writes segments as a 16 kHz linear16 WAV; returns its path and its words in order.
pub fn script_file(
    dir: &Path,
    name: &str,
    segments: &[Vec<&'static str>],
) -> (PathBuf, Vec<String>) {
    let refs: Vec<&[&str]> = segments.iter().map(Vec::as_slice).collect();
    let (path, placed) = tone_wav(dir, name, &refs, 16000, 1, WavFormat::Int(16));
    (path, placed.iter().map(|p| p.word.to_owned()).collect())
}

impl ServeProcess {
    /// Like [`ServeProcess::spawn`], and every later stdout line (the chaos fault log) goes to
    /// the returned channel.
    pub fn spawn_logged(args: &[&str]) -> (ServeProcess, crossbeam_channel::Receiver<String>) {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lightning-dictate"))
            .arg("serve")
            .args(if args.contains(&"--port") {
                &[][..]
            } else {
                &["--port", "0"][..]
            })
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().expect("a first line").expect("read");
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (ServeProcess { child, url }, rx)
    }

    /// Kills the server at once (a machine that went away).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lightning-dictate transcribe WAV ARGS...` with no key or URL from the environment.
pub fn transcribe_cli(wav: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lightning-dictate"))
        .arg("transcribe")
        .arg(wav)
        .args(args)
        .env_remove("SMALLEST_API_KEY")
        .env_remove("LIGHTNING_URL")
        .output()
        .expect("run transcribe")
}
