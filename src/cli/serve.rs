//! `serve`: the service's protocol on loopback, in front of the tone engine or the offline
//! recogniser, with fault switches for tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};

use lightning_dictate::protocol::{ApiKey, KNOWN_PATHS};
use lightning_dictate::server::{Faults, RunningServer, ServerConfig, ToneEngine};
use lightning_dictate::whisper::WhisperEngine;

use super::{exit, fail};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
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
    pub engine: Option<EngineArg>,
    /// The Whisper model: an installed model's name (tiny.en, base) or a faster-whisper model
    /// folder (default: tiny.en).
    #[arg(long, value_name = "NAME|DIR", value_parser = super::args::model_arg)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// The fault switches, one flag each.
#[derive(Debug, Args)]
pub struct FaultArgs {
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

impl From<FaultArgs> for Faults {
    fn from(args: FaultArgs) -> Self {
        Faults {
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
        }
    }
}

/// Loads the Whisper model (from `dir`, else the default folder), saying so on stderr.
fn load_whisper(dir: Option<&Path>) -> Result<Arc<WhisperEngine>, String> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => lightning_dictate::whisper::default_model_dir().ok_or_else(|| {
            super::advice::offline(&lightning_dictate::dictation::OfflineError::NoDataDir)
        })?,
    };
    let started = Instant::now();
    eprintln!("loading the offline model from {}", dir.display());
    let engine = lightning_dictate::dictation::offline::load_engine(&dir)
        .map_err(|e| super::advice::model(&e))?;
    eprintln!(
        "offline model ready in {:.2} s ({})",
        started.elapsed().as_secs_f64(),
        if engine.recognizer().multilingual() {
            "multilingual"
        } else {
            "English only"
        }
    );
    Ok(engine)
}

pub fn run(args: ServeArgs) -> u8 {
    let mut config = ServerConfig::loopback(args.port);
    config.api_key = args.api_key.as_deref().and_then(ApiKey::new);
    let choice = args.engine.unwrap_or_else(|| {
        let present = args
            .model
            .clone()
            .or_else(lightning_dictate::whisper::default_model_dir)
            .is_some_and(|dir| lightning_dictate::whisper::looks_like_model(&dir));
        if present {
            EngineArg::Whisper
        } else {
            EngineArg::Tone
        }
    });
    config.engine = match choice {
        EngineArg::Tone => Arc::new(ToneEngine),
        EngineArg::Whisper => match load_whisper(args.model.as_deref()) {
            Ok(engine) => engine,
            Err(message) => return fail(exit::USAGE, message),
        },
    };
    config.faults = Faults::from(args.faults);
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
                        for record in &fault_log {
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
