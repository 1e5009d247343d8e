//! `transcribe`: a WAV file or the microphone through one dictation, printed as it goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use lightning_dictate::audio::devices::HostReport;
use lightning_dictate::audio::wav::Pace;
use lightning_dictate::dictation::{
    Dictation, DictationError, DictationRequest, OfflineRecognizer, Source, StartError, Target,
};
use lightning_dictate::protocol::ApiKey;
use lightning_dictate::session::SessionError;

use super::args::StreamArgs;
use super::output::{OutputFormat, print_events};
use super::{advice, exit, fail};

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
    #[command(flatten)]
    pub stream: StreamArgs,
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
    /// The offline model: an installed model's name (tiny.en, base: `lightning-dictate model list`)
    /// or a faster-whisper model folder (default: tiny.en for English, base for other languages).
    #[arg(long, value_name = "NAME|DIR", value_parser = super::args::model_arg)]
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

/// Runs `transcribe`; returns the exit code.
pub fn run(args: TranscribeArgs) -> u8 {
    // Subtitles need times: ask for word timestamps whenever the output is SRT or VTT.
    let word_timestamps =
        args.word_timestamps || matches!(args.format, OutputFormat::Srt | OutputFormat::Vtt);
    let params = args.stream.params(word_timestamps);
    if args.duration.is_some_and(|d| !(d > 0.0 && d.is_finite())) {
        return fail(
            exit::USAGE,
            "--duration must be a positive number of seconds",
        );
    }
    let quiet = args.quiet;
    let recognizer = OfflineRecognizer::new(args.model.clone());
    let target = if args.offline {
        // Loaded before any audio flows: a missing model is a usage error. The key is never sent
        // to the recogniser on this computer.
        if let Err(message) = load(&recognizer, params.language, quiet) {
            return fail(exit::USAGE, message);
        }
        Target::Offline(recognizer)
    } else {
        Target::Service {
            url: args.stream.url(),
            api_key: args.stream.api_key.as_deref().and_then(ApiKey::new),
            // A live dictation goes on offline when the service stays away.
            fallback: Some(recognizer),
        }
    };
    let source = match &args.file {
        Some(path) if !args.mic => Source::File {
            path: path.clone(),
            pace: if args.realtime {
                Pace::Realtime
            } else {
                Pace::AsFastAsPossible
            },
            simulate_live: args.simulate_live,
        },
        _ => {
            say_which_host(args.device.as_deref(), quiet);
            Source::Microphone {
                device: args.device.clone(),
                handoff_ms: args.handoff_ms,
            }
        }
    };
    let replay_limit = args
        .replay_limit_secs
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64);
    let finish_timeout = Duration::from_secs(args.finish_timeout);
    let forward_raw = args.format == OutputFormat::Jsonl;
    let request = DictationRequest::new(source, params, target)
        .chunk_ms(args.chunk_ms)
        .configure(move |config| {
            if let Some(limit) = replay_limit {
                config.replay_limit = limit;
            }
            config.finish_timeout = finish_timeout;
            config.forward_raw = forward_raw;
        });
    let chunks = request.chunk_format();

    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let output_format = args.format;
    let printer = std::thread::Builder::new()
        .name("output".to_owned())
        .spawn(move || print_events(&events_rx, output_format, chunks, quiet));
    let printer = match printer {
        Ok(t) => t,
        Err(e) => {
            return fail(
                exit::NETWORK,
                format!("cannot start the output thread: {e}"),
            );
        }
    };
    let started = Instant::now();
    let mut dictation = match Dictation::start(request, events_tx) {
        Ok(d) => d,
        Err(e) => return fail(start_exit_code(&e), advice::start(&e)),
    };
    let interrupted = on_ctrl_c();
    // The duration counts from the moment the microphone is open (opening it can take a second
    // or two), not from the command's start.
    let capturing_since = Instant::now();
    let limit = args.duration.map(Duration::from_secs_f64);
    // Ctrl+C or the duration stops the source: the session sends `end` and the finals still
    // coming are printed. Checked every 100 ms, the reaction time to Ctrl+C.
    while !dictation.is_finished() {
        if interrupted.load(Ordering::SeqCst)
            || limit.is_some_and(|l| capturing_since.elapsed() >= l)
        {
            dictation.stop();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let outcome = dictation.wait();
    let transcript = printer.join().unwrap_or_default();
    if let Some(stats) = &outcome.capture
        && stats.dropped_frames > 0
        && !quiet
    {
        eprintln!(
            "warning: {} audio frames were dropped (the computer was too busy)",
            stats.dropped_frames
        );
    }
    match outcome.session {
        Ok(summary) => {
            if !quiet {
                eprintln!(
                    "done: {} segment(s), {:.2} s of audio in {:.2} s",
                    transcript.segments.len(),
                    summary.audio_secs_sent,
                    started.elapsed().as_secs_f64()
                );
                if let Some(latency) = summary.handoff_latency {
                    eprintln!(
                        "microphone to WebSocket: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} chunks",
                        latency.p50_ms, latency.p99_ms, latency.max_ms, latency.count
                    );
                }
            }
            match outcome.source {
                Ok(()) if transcript.has_gap() => fail(
                    exit::GAP,
                    "some audio could not be transcribed: the transcript marks where",
                ),
                Ok(()) => exit::OK,
                Err(e) => fail(exit::AUDIO, advice::source(&e)),
            }
        }
        Err(e) => {
            // A lost device explains a broken session better than the session does.
            if let Err(audio) = &outcome.source {
                eprintln!("error: {}", advice::source(audio));
            }
            let code = match &e {
                DictationError::Session(e) => session_exit_code(e),
                DictationError::Start(e) => start_exit_code(e),
            };
            fail(code, advice::dictation(&e))
        }
    }
}

/// Loads the offline model now, saying so unless `quiet`.
fn load(
    recognizer: &OfflineRecognizer,
    language: lightning_dictate::protocol::Language,
    quiet: bool,
) -> Result<(), String> {
    let choice = recognizer
        .choose(language)
        .map_err(|e| advice::offline(&e))?;
    if choice.english_only_automatic {
        // Said even with --quiet: the result would otherwise surprise.
        eprintln!(
            "note: automatic language detection offline needs the multilingual model; this run recognises English only (install it with `lightning-dictate model fetch base`)"
        );
    }
    if !quiet {
        eprintln!("loading the offline model from {}", choice.dir.display());
    }
    let ready = recognizer
        .ready(language)
        .map_err(|e| advice::offline(&e))?;
    if let Some(loaded) = ready.loaded.filter(|_| !quiet) {
        eprintln!(
            "offline model ready in {:.2} s ({})",
            loaded.secs,
            if loaded.multilingual {
                "multilingual"
            } else {
                "English only"
            }
        );
    }
    Ok(())
}

/// A flag set on Ctrl+C.
fn on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    let _ = std::thread::Builder::new()
        .name("ctrl-c".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime
                && runtime.block_on(tokio::signal::ctrl_c()).is_ok()
            {
                set.store(true, Ordering::SeqCst);
            }
        });
    flag
}

/// Exit code for a failed session.
fn session_exit_code(error: &SessionError) -> u8 {
    match error {
        SessionError::Auth { .. } => exit::KEY_REFUSED,
        SessionError::Url(_) => exit::USAGE,
        _ => exit::NETWORK,
    }
}

/// Exit code for a dictation that could not start.
fn start_exit_code(error: &StartError) -> u8 {
    match error {
        StartError::Url(_) | StartError::Offline(_) => exit::USAGE,
        StartError::Source(_) => exit::AUDIO,
        _ => exit::NETWORK,
    }
}

/// Says which audio host the microphone comes through: once on stderr when the app falls back to
/// ALSA because no sound server answered (it still works, through ALSA's plugins), else with -v.
fn say_which_host(device: Option<&str>, quiet: bool) {
    let report = HostReport::now();
    let named_elsewhere = device.is_some_and(|d| !d.to_ascii_lowercase().starts_with("alsa"));
    if report.is_alsa_fallback() && !named_elsewhere && !quiet {
        eprintln!("note: {}", report.summary());
    } else {
        tracing::info!("{}", report.summary());
    }
}
