//! The command line: the window (no subcommand), `transcribe`, `devices`, `serve`, `tones`, `key`,
//! `model`.
//! Exit codes are a contract: 0 done, 2 usage, 3 key refused, 4 network or server failure, 5 audio
//! input error, 6 some audio could not be transcribed.
//!
//! This is the binary's front end: it turns flags into requests for the library (a
//! [`lightning_dictate::dictation::DictationRequest`], a server config) and the library's typed
//! errors into one-line messages in terminal words ([`advice`]). Nothing in the library uses it.

mod advice;
mod args;
mod devices;
mod key;
mod model;
mod output;
mod serve;
mod tones;
mod transcribe;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lightning_dictate::protocol::ApiKey;

pub use args::WindowArgs;

/// Exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 2;
    pub const KEY_REFUSED: u8 = 3;
    pub const NETWORK: u8 = 4;
    pub const AUDIO: u8 = 5;
    /// Some audio could not be transcribed (the transcript shows where).
    pub const GAP: u8 = 6;
    /// `toggle | start | stop | status` found no running app to talk to.
    pub const NOT_RUNNING: u8 = 1;
}

#[derive(Debug, Parser)]
#[command(
    name = "lightning-dictate",
    version,
    about = "Dictation with Smallest AI's Lightning streaming speech-to-text",
    long_about = "Dictation with Smallest AI's Lightning streaming speech-to-text.\n\n\
        Exit codes: 0 done, 1 no running app (toggle, start, stop, status), 2 usage, 3 API key refused, \
        4 network or server failure, 5 audio input error, 6 some audio could not be transcribed (the \
        transcript marks where)."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// More logging on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub window: WindowArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transcribe a WAV file or the microphone by streaming it to the service (or a local server).
    Transcribe(transcribe::TranscribeArgs),
    /// List the input devices (microphones) of every audio host.
    Devices,
    /// Run a local server that speaks the Lightning protocol on loopback.
    Serve(serve::ServeArgs),
    /// Write a WAV file of tone words, the language the local test engine understands.
    Tones(tones::TonesArgs),
    /// The API key in the OS keyring (what the window uses when SMALLEST_API_KEY is not set).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// The offline models: list, fetch (download and install), remove.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Start a dictation into the focused app, or stop the running one (in the running app).
    Toggle,
    /// Start a dictation into the focused app (in the running app).
    Start,
    /// Stop the running dictation (in the running app).
    Stop,
    /// Say what the running app is doing.
    Status,
    /// Put the app in the desktop's launcher (a .desktop entry and the icon, for this user).
    InstallDesktop,
    /// Remove it from the launcher and from login.
    UninstallDesktop,
    /// Type TEXT into the focused app, as a dictation by the shortcut would (a test knob).
    #[command(hide = true)]
    Type { text: String },
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
        Some(Command::Transcribe(args)) => transcribe::run(args),
        Some(Command::Devices) => devices::run(),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Tones(args)) => tones::run(&args),
        Some(Command::Key(command)) => key::run(command),
        Some(Command::Model(command)) => model::run(command),
        Some(Command::Toggle) => control(lightning_dictate::control::Command::Toggle),
        Some(Command::Start) => control(lightning_dictate::control::Command::Start),
        Some(Command::Stop) => control(lightning_dictate::control::Command::Stop),
        Some(Command::Status) => control(lightning_dictate::control::Command::Status),
        Some(Command::InstallDesktop) => install_desktop(),
        Some(Command::UninstallDesktop) => uninstall_desktop(),
        Some(Command::Type { text }) => type_text(&text),
        None => window(cli.window),
    };
    ExitCode::from(code)
}

fn window(args: WindowArgs) -> u8 {
    let key = args.stream.api_key.as_deref().and_then(ApiKey::new);
    match lightning_dictate::ui::run_window(args.overrides(), key) {
        Ok(lightning_dictate::ui::Launch::Closed) => exit::OK,
        Ok(lightning_dictate::ui::Launch::ShownRunning) => {
            eprintln!("lightning-dictate is already running: its window is shown");
            exit::OK
        }
        Err(e) => fail(
            exit::USAGE,
            format!(
                "{e}: is there a display? (the headless commands work without one: see --help)"
            ),
        ),
    }
}

/// `toggle | start | stop | status`: one line to the running app, its answer printed.
fn control(command: lightning_dictate::control::Command) -> u8 {
    use lightning_dictate::control::{ControlError, send, socket_path};
    let answer = socket_path().and_then(|path| send(&path, command));
    match answer {
        Ok(answer) if answer.starts_with("error:") => {
            eprintln!("{answer}");
            exit::NOT_RUNNING
        }
        Ok(answer) => {
            println!("{answer}");
            exit::OK
        }
        Err(ControlError::NotRunning) => fail(
            exit::NOT_RUNNING,
            "lightning-dictate is not running: start it with `lightning-dictate` (or `lightning-dictate --background`)",
        ),
        Err(e) => fail(exit::NOT_RUNNING, e),
    }
}

fn type_text(text: &str) -> u8 {
    use lightning_dictate::desktop::{InsertMethod, Inserter};
    match Inserter::start_on(None, InsertMethod::Type) {
        Ok(inserter) => {
            inserter.insert(text);
            match inserter.finish() {
                Ok(()) => exit::OK,
                Err(e) => fail(exit::USAGE, e),
            }
        }
        Err(e) => fail(exit::USAGE, e),
    }
}

fn install_desktop() -> u8 {
    let exec = match std::env::current_exe() {
        Ok(exec) => exec,
        Err(e) => {
            return fail(
                exit::USAGE,
                format!("cannot tell where this program is: {e}"),
            );
        }
    };
    match lightning_dictate::desktop::entry::install(&exec) {
        Ok(files) => {
            for file in files {
                println!("wrote {}", file.display());
            }
            println!(
                "Lightning Dictate is in your desktop's launcher (it runs {})",
                exec.display()
            );
            exit::OK
        }
        Err(e) => fail(exit::USAGE, e),
    }
}

fn uninstall_desktop() -> u8 {
    match lightning_dictate::desktop::entry::uninstall() {
        Ok(files) => {
            for file in &files {
                println!("removed {}", file.display());
            }
            if files.is_empty() {
                println!("nothing to remove: Lightning Dictate was not in the launcher");
            }
            exit::OK
        }
        Err(e) => fail(exit::USAGE, e),
    }
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

/// Prints `error: MESSAGE` and returns `code`.
fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    code
}
