//! The command line: `transcribe`, `serve`, `tones`. Exit codes are a contract: 0 done, 2 usage,
//! 3 key refused, 4 network or server failure, 5 audio input error, 6 some audio could not be
//! transcribed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::audio::capture::{Capture, CaptureEvent, CaptureOptions};
use crate::audio::devices::{DeviceError, list_input_devices};
use crate::audio::wav::{Pace, WavFormat, WavSource, write_wav};
use crate::audio::{AudioChunk, ChunkFormat};
use crate::protocol::{
    ApiKey, DEFAULT_URL, Encoding, KNOWN_PATHS, Language, SampleRate, StreamParams,
};
use crate::server::{Faults, RunningServer, ServerConfig, ToneEngine};
use crate::session::{SessionConfig, SessionError, SessionEvent, run_session};
use crate::tones;
use crate::transcript::Transcript;

/// Exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 2;
    pub const KEY_REFUSED: u8 = 3;
    pub const NETWORK: u8 = 4;
    pub const AUDIO: u8 = 5;
    /// Some audio could not be transcribed (the transcript shows where).
    pub const GAP: u8 = 6;
}

#[derive(Debug, Parser)]
#[command(
    name = "lightning-dictate",
    version,
    about = "Dictation with Smallest AI's Lightning streaming speech-to-text",
    long_about = "Dictation with Smallest AI's Lightning streaming speech-to-text.\n\n\
        Exit codes: 0 done, 2 usage, 3 API key refused, 4 network or server failure, 5 audio input error, \
        6 some audio could not be transcribed (the transcript marks where)."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// More logging on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Window: server URL for this run (overrides the saved setting).
    #[arg(long, env = "LIGHTNING_URL")]
    pub url: Option<String>,
    /// Window: language for this run.
    #[arg(long, value_parser = language_parser())]
    pub language: Option<String>,
    /// Window: input device for this run.
    #[arg(long)]
    pub device: Option<String>,
    /// Window: encoding for this run.
    #[arg(long, value_parser = encoding_parser())]
    pub encoding: Option<String>,
    /// Window: sample rate for this run.
    #[arg(long, value_parser = rate_parser())]
    pub sample_rate: Option<String>,
    /// Window: theme for this run.
    #[arg(long, value_parser = ["system", "light", "dark"])]
    pub theme: Option<String>,
    /// Window: API key (else SMALLEST_API_KEY, else the keyring, else typed in Settings).
    #[arg(long, env = "SMALLEST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Window: recognise on this computer for this run.
    #[arg(long)]
    pub offline: bool,
    /// Window: the offline model folder (a faster-whisper model; default: the fetched tiny.en).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transcribe a WAV file or the microphone by streaming it to the service (or a local server).
    Transcribe(TranscribeArgs),
    /// List the input devices (microphones) of every audio host.
    Devices,
    /// Run a local server that speaks the Lightning protocol on loopback.
    Serve(ServeArgs),
    /// Write a WAV file of tone words, the language the local test engine understands.
    Tones(TonesArgs),
    /// The API key in the OS keyring (what the window uses when SMALLEST_API_KEY is not set).
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Store a key: reads it from standard input (never from the command line).
    Save,
    /// Say whether a key is stored (never prints it).
    Status,
    /// Remove the stored key.
    Forget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Each final segment on its own line, as it arrives.
    Text,
    /// Every server message exactly as received, one per line.
    Jsonl,
    /// SubRip subtitles at the end.
    Srt,
    /// WebVTT subtitles at the end.
    Vtt,
}

fn language_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(Language::all().map(|l| l.code()))
}

fn encoding_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(Encoding::ALL.map(|e| e.as_str()))
}

fn rate_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(["8000", "16000", "22050", "24000", "44100", "48000"])
}

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// The WAV file (8/16/24/32-bit integer or 32-bit float, 1-8 channels, 8-192 kHz).
    #[arg(required_unless_present = "mic", conflicts_with = "mic")]
    pub file: Option<PathBuf>,
    /// Transcribe the microphone instead of a file (stop with Ctrl+C or --duration).
    #[arg(long)]
    pub mic: bool,
    /// Input device: a name from `lightning-dictate devices` or a unique part of one.
    #[arg(long, requires = "mic")]
    pub device: Option<String>,
    /// Stop the microphone after this many seconds.
    #[arg(long, requires = "mic")]
    pub duration: Option<f64>,
    /// Milliseconds of audio the device callback can hand off before it overflows (a test knob).
    #[arg(long, hide = true, default_value_t = 2000, requires = "mic")]
    pub handoff_ms: u32,
    /// WebSocket URL of the service.
    #[arg(long, env = "LIGHTNING_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Smallest AI API key.
    #[arg(long, env = "SMALLEST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Language code, or `multi` for automatic detection.
    #[arg(long, default_value = "en", value_parser = language_parser())]
    pub language: String,
    /// Encoding on the wire.
    #[arg(long, default_value = "linear16", value_parser = encoding_parser())]
    pub encoding: String,
    /// Sample rate on the wire, in Hz.
    #[arg(long, default_value = "16000", value_parser = rate_parser())]
    pub sample_rate: String,
    /// Ask for word timestamps.
    #[arg(long)]
    pub word_timestamps: bool,
    /// Milliseconds of audio per WebSocket frame.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(10..=500))]
    pub chunk_ms: u32,
    /// Send the file at real time, as a microphone would (default: as fast as possible).
    #[arg(long)]
    pub realtime: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Seconds to wait for the server's last message after the end of the audio.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub finish_timeout: u64,
    /// Recognise on this computer: the offline Whisper recogniser behind a local server on a
    /// loopback port (no key, no network).
    #[arg(long)]
    pub offline: bool,
    /// The offline model: a faster-whisper model folder (default: the fetched tiny.en).
    #[arg(long, requires = "offline")]
    pub model: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Seconds of unconfirmed audio kept for replay (a test knob; default 60 for a file, 3600
    /// for the microphone).
    #[arg(long, hide = true)]
    pub replay_limit_secs: Option<f64>,
    /// Treat the file as a live source: it does not wait for the server, and an outage may go on
    /// offline (a test knob).
    #[arg(long, hide = true, requires = "file")]
    pub simulate_live: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    /// Deterministic tone-word recogniser, for tests and demos.
    Tone,
    /// The offline Whisper recogniser (needs a model: see --model).
    Whisper,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Require this API key (default: accept any).
    #[arg(long, env = "LIGHTNING_SERVE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The recogniser behind the protocol (default: whisper when a model is present, else tone).
    #[arg(long, value_enum)]
    pub engine: Option<EngineChoice>,
    /// The Whisper model: a faster-whisper model folder (default: the fetched tiny.en).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Fault: drop the TCP connection once a session received this many audio bytes.
    #[arg(long, help_heading = "Fault switches (for tests)")]
    pub fault_drop_after_bytes: Option<u64>,
    /// Fault: how many sessions the drop applies to.
    #[arg(long, default_value_t = 1, help_heading = "Fault switches (for tests)")]
    pub fault_drop_sessions: u32,
    /// Fault: stall (no reading, no answers) once a session received this many bytes.
    #[arg(long, help_heading = "Fault switches (for tests)")]
    pub fault_stall_after_bytes: Option<u64>,
    /// Fault: how many sessions stall (0: every session).
    #[arg(long, default_value_t = 0, help_heading = "Fault switches (for tests)")]
    pub fault_stall_sessions: u32,
    /// Fault: how long to stall, in seconds.
    #[arg(
        long,
        default_value_t = 5.0,
        help_heading = "Fault switches (for tests)"
    )]
    pub fault_stall_secs: f64,
    /// Fault: send a garbage text frame and a binary frame before every real message.
    #[arg(long, help_heading = "Fault switches (for tests)")]
    pub fault_garbage: bool,
    /// Fault: refuse the first N handshakes.
    #[arg(long, default_value_t = 0, help_heading = "Fault switches (for tests)")]
    pub fault_refuse: u32,
    /// Fault: HTTP status of the refusals.
    #[arg(long, default_value_t = 503, value_parser = clap::value_parser!(u16).range(400..=599), help_heading = "Fault switches (for tests)")]
    pub fault_refuse_status: u16,
    /// Fault: Retry-After seconds on the refusals.
    #[arg(long, help_heading = "Fault switches (for tests)")]
    pub fault_retry_after: Option<u32>,
    /// Fault: never send the is_last message.
    #[arg(long, help_heading = "Fault switches (for tests)")]
    pub fault_withhold_is_last: bool,
    /// Fault: send an error frame and close once a session received this many bytes.
    #[arg(long, help_heading = "Fault switches (for tests)")]
    pub fault_error_after_bytes: Option<u64>,
    /// Fault: wait this many seconds before answering each handshake.
    #[arg(
        long,
        default_value_t = 0.0,
        help_heading = "Fault switches (for tests)"
    )]
    pub fault_handshake_delay_secs: f64,
    /// Chaos: a seeded random fault after every 5-20 s of received audio (abort, error frame +
    /// close 1011, stall, garbage, refused handshake, half-open, close 1000 without is_last);
    /// each fault is printed on stdout as a JSON line.
    #[arg(long, value_name = "SEED", help_heading = "Fault switches (for tests)")]
    pub chaos: Option<u64>,
    /// Fault: finals carry no word times even when asked for.
    #[arg(long, help_heading = "Fault switches (for tests)")]
    pub fault_no_word_times: bool,
}

#[derive(Debug, Args)]
pub struct TonesArgs {
    /// Where to write the WAV file.
    pub out: PathBuf,
    /// Segments: each argument is one segment of vocabulary words, e.g. "hello world".
    #[arg(required = true)]
    pub segments: Vec<String>,
    #[arg(long, default_value_t = 16000)]
    pub rate: u32,
    #[arg(long, default_value_t = 1)]
    pub channels: u16,
    /// Bits per sample (8, 16, 24, 32), or 0 for 32-bit float.
    #[arg(long, default_value_t = 16)]
    pub bits: u16,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    init_logging(cli.verbose);
    let code = match cli.command {
        Some(Command::Transcribe(args)) => transcribe(args),
        Some(Command::Devices) => devices(),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Tones(args)) => write_tones(args),
        Some(Command::Key(command)) => key_command(command),
        None => {
            let overrides = crate::ui::Overrides {
                url: cli.url,
                language: cli.language.and_then(|l| l.parse().ok()),
                device: cli.device,
                encoding: cli.encoding.and_then(|e| e.parse().ok()),
                sample_rate: cli.sample_rate.and_then(|r| r.parse().ok()),
                theme: cli.theme.as_deref().map(|t| match t {
                    "light" => crate::ui::Theme::Light,
                    "dark" => crate::ui::Theme::Dark,
                    _ => crate::ui::Theme::System,
                }),
                offline: cli.offline,
                model: cli.model,
            };
            let key = cli.api_key.as_deref().and_then(ApiKey::new);
            match crate::ui::run_window(overrides, key) {
                Ok(()) => exit::OK,
                Err(e) => fail(
                    exit::USAGE,
                    format!(
                        "{e}: is there a display? (the headless commands work without one: see --help)"
                    ),
                ),
            }
        }
    };
    ExitCode::from(code)
}

fn init_logging(verbose: u8) {
    // User-facing messages are printed directly; the log is for -v.
    let default = match verbose {
        0 => "error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    code
}

/// Parses the validated flag strings into stream parameters.
fn stream_params(args: &TranscribeArgs) -> Result<StreamParams, String> {
    let language: Language = args.language.parse().map_err(|e| format!("{e}"))?;
    let encoding: Encoding = args.encoding.parse().map_err(|e| format!("{e}"))?;
    let sample_rate: SampleRate = args.sample_rate.parse().map_err(|e| format!("{e}"))?;
    // Subtitles need times: ask for word timestamps whenever the output is SRT or VTT.
    let word_timestamps =
        args.word_timestamps || matches!(args.format, OutputFormat::Srt | OutputFormat::Vtt);
    Ok(StreamParams {
        language,
        encoding,
        sample_rate,
        word_timestamps,
    })
}

/// Loads the Whisper model once (from `dir`, else the default folder) as an engine.
pub fn load_whisper(
    dir: Option<&std::path::Path>,
    quiet: bool,
) -> Result<Arc<crate::whisper::WhisperEngine>, String> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => crate::whisper::default_model_dir().ok_or_else(|| {
            "cannot find the data folder (neither XDG_DATA_HOME nor HOME is set): pass --model DIR"
                .to_owned()
        })?,
    };
    let started = Instant::now();
    if !quiet {
        eprintln!("loading the offline model from {}", dir.display());
    }
    let recognizer = crate::whisper::Recognizer::load(&dir).map_err(|e| e.to_string())?;
    if !quiet {
        eprintln!(
            "offline model ready in {:.2} s ({})",
            started.elapsed().as_secs_f64(),
            if recognizer.multilingual() {
                "multilingual"
            } else {
                "English only"
            }
        );
    }
    Ok(Arc::new(crate::whisper::WhisperEngine::new(Arc::new(
        recognizer,
    ))))
}

/// Starts the offline recogniser behind a local server on an ephemeral loopback port.
pub fn start_offline_server(
    model: Option<&std::path::Path>,
    quiet: bool,
) -> Result<crate::server::BackgroundServer, String> {
    let engine = load_whisper(model, quiet)?;
    let mut config = ServerConfig::loopback(0);
    config.engine = engine;
    crate::server::BackgroundServer::start(config)
        .map_err(|e| format!("cannot start the offline recogniser on loopback: {e}"))
}

fn transcribe(mut args: TranscribeArgs) -> u8 {
    // The offline recogniser: a local server in this process; the key is never sent to it.
    let _offline_server = if args.offline {
        match start_offline_server(args.model.as_deref(), args.quiet) {
            Ok(server) => {
                args.url = server.url().to_owned();
                args.api_key = None;
                Some(server)
            }
            Err(e) => return fail(exit::USAGE, e),
        }
    } else {
        None
    };
    let params = match stream_params(&args) {
        Ok(p) => p,
        Err(e) => return fail(exit::USAGE, e),
    };
    let format = ChunkFormat {
        encoding: params.encoding,
        sample_rate: params.sample_rate,
        chunk_ms: args.chunk_ms,
    };
    let api_key = args.api_key.as_deref().and_then(ApiKey::new);
    if let Err(e) = crate::protocol::build_endpoint(&args.url, &params, api_key.is_some()) {
        return fail(exit::USAGE, e);
    }
    if args.duration.is_some_and(|d| !(d > 0.0 && d.is_finite())) {
        return fail(
            exit::USAGE,
            "--duration must be a positive number of seconds",
        );
    }
    let quiet = args.quiet;
    let status = move |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    // The microphone's channel holds a minute of audio: it queues while connecting, and a slow
    // network never blocks the capture thread. A file's holds 10 s and simply waits.
    let queue = if args.mic {
        (60_000 / args.chunk_ms) as usize
    } else {
        500
    };
    let (audio_tx, audio_rx) = crossbeam_channel::bounded::<AudioChunk>(queue);
    let source = if args.mic {
        start_mic(&args, format, audio_tx, &stop)
    } else {
        start_file(&args, format, audio_tx, &stop)
    };
    let source = match source {
        Ok(s) => s,
        Err(e) => return fail(exit::AUDIO, e),
    };

    let mut config = SessionConfig::new(args.url.clone(), params, api_key);
    let live = args.mic || args.simulate_live;
    if live {
        config = config.live();
        if !args.offline {
            config.fallback = offline_fallback(None);
        }
    }
    if let Some(secs) = args.replay_limit_secs.filter(|s| s.is_finite() && *s > 0.0) {
        config.replay_limit = Duration::from_secs_f64(secs);
    }
    config.finish_timeout = Duration::from_secs(args.finish_timeout);
    config.forward_raw = args.format == OutputFormat::Jsonl;
    let (event_tx, event_rx) = crossbeam_channel::unbounded::<SessionEvent>();
    let output_format = args.format;
    let printer = std::thread::Builder::new()
        .name("output".to_owned())
        .spawn(move || print_events(event_rx, output_format, quiet));
    let printer = match printer {
        Ok(t) => t,
        Err(e) => {
            return fail(
                exit::NETWORK,
                format!("cannot start the output thread: {e}"),
            );
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(
                exit::NETWORK,
                format!("cannot start the network runtime: {e}"),
            );
        }
    };
    let ctrl_c_stop = Arc::clone(&stop);
    let outcome = runtime.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                // Stop the source: the session sends `end` and prints the finals still coming.
                ctrl_c_stop.store(true, Ordering::SeqCst);
            }
        });
        run_session(config, audio_rx, event_tx).await
    });
    stop.store(true, Ordering::SeqCst);
    let source_result = source
        .join()
        .unwrap_or_else(|_| Err("the audio thread failed".to_owned()));
    let transcript = printer.join().unwrap_or_default();

    match outcome {
        Ok(summary) => {
            status(format!(
                "done: {} segment(s), {:.2} s of audio in {:.2} s",
                transcript.segments.len(),
                summary.audio_secs_sent,
                started.elapsed().as_secs_f64()
            ));
            if let Some(latency) = summary.handoff_latency {
                status(format!(
                    "microphone to WebSocket: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} chunks",
                    latency.p50_ms, latency.p99_ms, latency.max_ms, latency.count
                ));
            }
            match source_result {
                Ok(()) if transcript.has_gap() => fail(
                    exit::GAP,
                    "some audio could not be transcribed: the transcript marks where",
                ),
                Ok(()) => exit::OK,
                Err(e) => fail(exit::AUDIO, e),
            }
        }
        Err(e) => {
            // A lost device explains a broken session better than the session does.
            if let Err(audio) = source_result {
                eprintln!("error: {audio}");
            }
            fail(session_exit_code(&e), e)
        }
    }
}

/// The recogniser on this computer as a fallback for a live dictation, when a model is installed.
pub fn offline_fallback(model: Option<std::path::PathBuf>) -> Option<crate::session::Fallback> {
    let dir = model.or_else(crate::whisper::default_model_dir)?;
    if !crate::whisper::looks_like_model(&dir) {
        return None;
    }
    Some(crate::session::Fallback {
        start: Arc::new(move || {
            let server = start_offline_server(Some(&dir), true)?;
            Ok(crate::session::FallbackTarget {
                url: server.url().to_owned(),
                guard: Box::new(server),
            })
        }),
    })
}

/// A running source: its thread ends when the audio does, with an error to report (exit 5).
type SourceThread = std::thread::JoinHandle<Result<(), String>>;

fn start_file(
    args: &TranscribeArgs,
    format: ChunkFormat,
    audio_tx: crossbeam_channel::Sender<AudioChunk>,
    stop: &Arc<AtomicBool>,
) -> Result<SourceThread, String> {
    let Some(path) = args.file.clone() else {
        return Err("no file given: pass FILE.wav or --mic".to_owned());
    };
    let source = WavSource::open(&path).map_err(|e| e.to_string())?;
    if !args.quiet {
        eprintln!(
            "streaming {} ({}) as {} at {} Hz in {} ms chunks{}",
            path.display(),
            source.info(),
            format.encoding,
            format.sample_rate,
            format.chunk_ms,
            if args.realtime { ", at real time" } else { "" }
        );
    }
    let pace = if args.realtime {
        Pace::Realtime
    } else {
        Pace::AsFastAsPossible
    };
    let stop = Arc::clone(stop);
    std::thread::Builder::new()
        .name("wav-source".to_owned())
        .spawn(move || {
            source
                .stream(format, pace, &audio_tx, &stop)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .map_err(|e| format!("cannot start the audio thread: {e}"))
}

fn start_mic(
    args: &TranscribeArgs,
    format: ChunkFormat,
    audio_tx: crossbeam_channel::Sender<AudioChunk>,
    stop: &Arc<AtomicBool>,
) -> Result<SourceThread, String> {
    let mut options = CaptureOptions::new(args.device.clone(), format);
    options.handoff_secs = args.handoff_ms.max(1) as f32 / 1000.0;
    let capture = Capture::start(options, audio_tx).map_err(|e| e.to_string())?;
    let events = capture.events().clone();
    let quiet = args.quiet;
    let verbose_levels = tracing::enabled!(tracing::Level::DEBUG);
    let limit = args.duration.map(Duration::from_secs_f64);
    let stop = Arc::clone(stop);
    std::thread::Builder::new()
        .name("mic-control".to_owned())
        .spawn(move || {
            let started = Instant::now();
            let mut lost = None;
            loop {
                // Sleep until something happens, the duration ends, or (at most) 100 ms, the
                // reaction time to Ctrl+C.
                let wait = limit
                    .map(|l| l.saturating_sub(started.elapsed()))
                    .unwrap_or(Duration::from_millis(100))
                    .min(Duration::from_millis(100));
                if let Ok(event) = events.recv_timeout(wait) {
                    handle_capture_event(&event, &mut lost, quiet, verbose_levels);
                }
                for event in events.try_iter() {
                    handle_capture_event(&event, &mut lost, quiet, verbose_levels);
                }
                let timed_out = limit.is_some_and(|l| started.elapsed() >= l);
                if timed_out || stop.load(Ordering::SeqCst) || lost.is_some() || capture.has_ended()
                {
                    break;
                }
            }
            let stats = capture.stop();
            if let Some(detail) = stats.device_lost.as_ref().filter(|_| lost.is_none()) {
                lost = Some(format!(
                    "the input device failed ({detail}): the text so far is kept"
                ));
            }
            if stats.dropped_frames > 0 && !quiet {
                eprintln!(
                    "warning: {} audio frames were dropped (the computer was too busy)",
                    stats.dropped_frames
                );
            }
            match lost {
                Some(message) => Err(message),
                None => Ok(()),
            }
        })
        .map_err(|e| format!("cannot start the capture control thread: {e}"))
}

fn handle_capture_event(
    event: &CaptureEvent,
    lost: &mut Option<String>,
    quiet: bool,
    levels: bool,
) {
    if let CaptureEvent::DeviceLost { device, detail } = event {
        *lost = Some(format!(
            "the input device `{device}` failed ({detail}): reconnect it or pick another with --device; the text so far is kept"
        ));
    }
    if !quiet {
        print_capture_event(event, levels);
    }
}

fn print_capture_event(event: &CaptureEvent, levels: bool) {
    match event {
        CaptureEvent::Opened {
            device,
            rate,
            channels,
            format,
        } => eprintln!("microphone: {device} ({rate} Hz, {channels} ch, {format})"),
        CaptureEvent::Listening => eprintln!("listening"),
        CaptureEvent::Silent { secs } => eprintln!(
            "warning: only silence for {secs:.0} s: is the microphone muted, or the wrong device? (`lightning-dictate devices` lists them)"
        ),
        CaptureEvent::SoundBack => eprintln!("sound is back"),
        CaptureEvent::Overflow { dropped_frames } => {
            eprintln!(
                "warning: the computer fell behind the microphone: {dropped_frames} frames dropped"
            )
        }
        CaptureEvent::Backlog { dropped_chunks } => eprintln!(
            "warning: the network fell a minute behind: {dropped_chunks} chunks of audio dropped"
        ),
        CaptureEvent::DeviceLost { .. } => {}
        CaptureEvent::Level {
            rms_dbfs,
            peak_dbfs,
        } => {
            if levels {
                eprintln!("level: rms {rms_dbfs:.1} dBFS, peak {peak_dbfs:.1} dBFS");
            }
        }
    }
}

fn devices() -> u8 {
    let (devices, problems) = list_input_devices();
    for problem in &problems {
        eprintln!("note: {problem}");
    }
    if devices.is_empty() {
        return fail(exit::AUDIO, DeviceError::NoInput);
    }
    for d in &devices {
        let native = d
            .native
            .as_ref()
            .map(|(rate, ch, fmt)| format!("{rate} Hz, {ch} ch, {fmt}"))
            .unwrap_or_else(|| "unknown".to_owned());
        let rates = d
            .rates
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "{} {}\n    native: {native}; rates: {}; formats: {}",
            if d.is_default { "*" } else { " " },
            d.full_name(),
            if rates.is_empty() {
                "?".to_owned()
            } else {
                rates
            },
            d.formats.join(" ")
        );
    }
    exit::OK
}

/// Exit code for a failed session.
pub fn session_exit_code(error: &SessionError) -> u8 {
    match error {
        SessionError::Auth { .. } => exit::KEY_REFUSED,
        SessionError::Url(_) => exit::USAGE,
        _ => exit::NETWORK,
    }
}

/// Prints events as they come; returns the transcript for formats written at the end.
fn print_events(
    events: crossbeam_channel::Receiver<SessionEvent>,
    format: OutputFormat,
    quiet: bool,
) -> Transcript {
    let mut transcript = Transcript::default();
    let stdout = std::io::stdout();
    let mut overflowed_secs = 0.0;
    for event in events.iter() {
        transcript.apply(&event);
        let mut out = stdout.lock();
        match &event {
            SessionEvent::ServerText(raw) if format == OutputFormat::Jsonl => {
                // One message a line: a frame that itself holds newlines is re-encoded compactly.
                if raw.contains('\n') {
                    match serde_json::from_str::<serde_json::Value>(raw) {
                        Ok(v) => {
                            let _ = writeln!(out, "{v}");
                        }
                        Err(_) => {
                            let _ = writeln!(out, "{}", raw.replace('\n', " "));
                        }
                    }
                } else {
                    let _ = writeln!(out, "{raw}");
                }
            }
            SessionEvent::Final(segment)
                if format == OutputFormat::Text && !segment.text.trim().is_empty() =>
            {
                let _ = writeln!(out, "{}", segment.text.trim());
                if segment.unconfirmed {
                    eprintln!(
                        "note: the server never confirmed that last line; it is the last text it sent"
                    );
                }
            }
            SessionEvent::Reconnecting {
                attempt,
                delay,
                reason,
                kept_secs,
            } if !quiet => eprintln!(
                "reconnecting (attempt {attempt}, in {:.1} s, {kept_secs:.0} s of audio kept): {reason}",
                delay.as_secs_f64()
            ),
            SessionEvent::Gap { secs, .. } => {
                if format == OutputFormat::Text {
                    let _ = writeln!(out, "{}", crate::transcript::gap_marker(*secs));
                }
                eprintln!(
                    "warning: {secs:.1} s of audio could not be transcribed (the connection stayed down longer than the audio kept)"
                );
            }
            SessionEvent::WentOffline { reason } => {
                eprintln!("{reason}: continuing with the recogniser on this computer");
            }
            SessionEvent::Reconnected {
                attempt,
                replayed_secs,
            } if !quiet => eprintln!(
                "reconnected after {attempt} attempt(s); {replayed_secs:.1} s of audio sent again"
            ),
            SessionEvent::ReplayOverflow { dropped_secs } => {
                // Once, not once per chunk: it only matters if the link drops (then a gap says so).
                if overflowed_secs == 0.0 && !quiet {
                    eprintln!(
                        "warning: the server is far behind: the oldest unconfirmed audio could not be sent again if the connection dropped"
                    );
                }
                overflowed_secs += dropped_secs;
            }
            SessionEvent::Connecting { url } if !quiet => eprintln!("connecting to {url}"),
            SessionEvent::Connected if !quiet => eprintln!("connected"),
            SessionEvent::Finishing if !quiet => {
                eprintln!("audio sent; waiting for the last transcript")
            }
            SessionEvent::ServerError { message } => eprintln!("server error: {message}"),
            SessionEvent::Notice(notice) if !quiet => eprintln!("note: {notice}"),
            SessionEvent::Ended(_) => break,
            _ => {}
        }
        let _ = out.flush();
    }
    let tail = match format {
        OutputFormat::Srt => transcript.to_srt(),
        OutputFormat::Vtt => transcript.to_vtt(),
        OutputFormat::Text | OutputFormat::Jsonl => String::new(),
    };
    if !tail.is_empty() {
        let mut out = stdout.lock();
        let _ = out.write_all(tail.as_bytes());
        let _ = out.flush();
    }
    transcript
}

fn serve(args: ServeArgs) -> u8 {
    let faults = Faults {
        drop_after_bytes: args.fault_drop_after_bytes,
        drop_sessions: args.fault_drop_sessions,
        stall_after_bytes: args.fault_stall_after_bytes,
        stall: Duration::from_secs_f64(args.fault_stall_secs.clamp(0.0, 3600.0)),
        stall_sessions: args.fault_stall_sessions,
        garbage: args.fault_garbage,
        refuse_first: args.fault_refuse,
        refuse_status: args.fault_refuse_status,
        retry_after_secs: args.fault_retry_after,
        withhold_is_last: args.fault_withhold_is_last,
        error_after_bytes: args.fault_error_after_bytes,
        handshake_delay: Duration::from_secs_f64(
            args.fault_handshake_delay_secs.clamp(0.0, 3600.0),
        ),
        chaos: args.chaos,
        once: None,
        no_word_times: args.fault_no_word_times,
    };
    let mut config = ServerConfig::loopback(args.port);
    config.api_key = args.api_key.as_deref().and_then(ApiKey::new);
    let choice = args.engine.unwrap_or_else(|| {
        let present = args
            .model
            .clone()
            .or_else(crate::whisper::default_model_dir)
            .is_some_and(|dir| crate::whisper::looks_like_model(&dir));
        if present {
            EngineChoice::Whisper
        } else {
            EngineChoice::Tone
        }
    });
    config.engine = match choice {
        EngineChoice::Tone => Arc::new(ToneEngine),
        EngineChoice::Whisper => match load_whisper(args.model.as_deref(), false) {
            Ok(engine) => engine,
            Err(e) => return fail(exit::USAGE, e),
        },
    };
    config.faults = faults;
    let result: anyhow::Result<()> =
        (|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the server runtime")?;
            runtime.block_on(async {
                let server = RunningServer::start(config.clone()).await.with_context(|| {
                format!(
                    "cannot listen on {}: is another server on that port? pick one with --port",
                    config.addr
                )
            })?;
                let addr = server.local_addr();
                println!("listening on ws://{addr}{}", KNOWN_PATHS[0]);
                let _ = std::io::stdout().flush();
                let fault_log = server.fault_log().clone();
                let _ = std::thread::Builder::new()
                    .name("fault-log".to_owned())
                    .spawn(move || {
                        for record in fault_log.iter() {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "{}", record.to_json());
                            let _ = out.flush();
                        }
                    });
                eprintln!(
                    "engine: {}; key required: {}; press Ctrl+C to stop",
                    config.engine.name(),
                    if config.api_key.is_some() {
                        "yes"
                    } else {
                        "no"
                    }
                );
                let _ = tokio::signal::ctrl_c().await;
                server.stop().await;
                Ok(())
            })
        })();
    match result {
        Ok(()) => exit::OK,
        Err(e) => fail(exit::NETWORK, format!("{e:#}")),
    }
}

fn key_command(command: KeyCommand) -> u8 {
    use crate::keystore;
    let result = match command {
        KeyCommand::Save => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                return fail(
                    exit::USAGE,
                    format!("cannot read the key from standard input: {e}"),
                );
            }
            let Some(key) = ApiKey::new(&line) else {
                return fail(
                    exit::USAGE,
                    "no key on standard input: pipe it in, e.g. `lightning-dictate key save < keyfile`",
                );
            };
            keystore::save(&key).map(|()| "the key is stored in the system keyring".to_owned())
        }
        KeyCommand::Status => keystore::load().map(|key| match key {
            Some(_) => "a key is stored in the system keyring".to_owned(),
            None => "no key is stored in the system keyring".to_owned(),
        }),
        KeyCommand::Forget => {
            keystore::delete().map(|()| "no key is stored in the system keyring".to_owned())
        }
    };
    match result {
        Ok(message) => {
            println!("{message}");
            exit::OK
        }
        Err(e) => fail(exit::USAGE, e),
    }
}

fn write_tones(args: TonesArgs) -> u8 {
    let segments: Vec<Vec<&str>> = args
        .segments
        .iter()
        .map(|s| s.split_whitespace().collect())
        .collect();
    for word in segments.iter().flatten() {
        if tones::word_index(word).is_none() {
            return fail(
                exit::USAGE,
                format!(
                    "`{word}` is not a tone word; use: {}",
                    tones::VOCABULARY.join(", ")
                ),
            );
        }
    }
    let refs: Vec<&[&str]> = segments.iter().map(Vec::as_slice).collect();
    let format = match args.bits {
        0 => WavFormat::Float32,
        8 | 16 | 24 | 32 => WavFormat::Int(args.bits),
        other => {
            return fail(
                exit::USAGE,
                format!("--bits {other}: use 8, 16, 24, 32 or 0"),
            );
        }
    };
    if !(8000..=192_000).contains(&args.rate) || !(1..=8).contains(&args.channels) {
        return fail(exit::USAGE, "use --rate 8000..192000 and --channels 1..8");
    }
    let (samples, _) = tones::synthesize(&refs, args.rate, tones::ToneTiming::default());
    match write_wav(&args.out, &samples, args.rate, args.channels, format) {
        Ok(()) => exit::OK,
        Err(e) => fail(
            exit::AUDIO,
            format!("cannot write {}: {e}", args.out.display()),
        ),
    }
}
