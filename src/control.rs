//! The running instance's control socket: `lightning-dictate toggle | start | stop | status` (what
//! a desktop's own key binding runs, e.g. on Wayland) and a second launch asking the first to show
//! its window. A Unix socket in `$XDG_RUNTIME_DIR`, mode 0600, one line in and one line out; only
//! these commands are understood.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::channel::Sink;

/// What the socket accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start a dictation into the focused app, or stop the running one.
    Toggle,
    /// Start one (nothing if one runs).
    Start,
    /// Stop the running one (nothing if none runs).
    Stop,
    /// Say what the instance is doing.
    Status,
    /// Show the window (a second launch sends this).
    Show,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Toggle => "toggle",
            Command::Start => "start",
            Command::Stop => "stop",
            Command::Status => "status",
            Command::Show => "show",
        }
    }

    pub fn parse(word: &str) -> Option<Command> {
        [
            Command::Toggle,
            Command::Start,
            Command::Stop,
            Command::Status,
            Command::Show,
        ]
        .into_iter()
        .find(|c| c.as_str() == word.trim())
    }
}

/// A command for the instance, with where its one-line answer goes.
#[derive(Debug)]
pub struct Request {
    pub command: Command,
    pub reply: Sender<String>,
}

/// Why the socket cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No `XDG_RUNTIME_DIR`: there is no private place for the socket.
    #[error("XDG_RUNTIME_DIR is not set, so there is no private place for the control socket")]
    NoRuntimeDir,
    /// No instance answers at the socket.
    #[error("lightning-dictate is not running")]
    NotRunning,
    /// Another instance owns the socket.
    #[error("another lightning-dictate is already running")]
    AlreadyRunning,
    /// The socket failed.
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The socket's path: `$XDG_RUNTIME_DIR/lightning-dictate.sock`.
pub fn socket_path() -> Result<PathBuf, ControlError> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .map(|dir| dir.join("lightning-dictate.sock"))
        .ok_or(ControlError::NoRuntimeDir)
}

/// Sends `command` to the running instance and returns its answer.
pub fn send(path: &Path, command: Command) -> Result<String, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(|_| ControlError::NotRunning)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    writeln!(stream, "{}", command.as_str()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    if answer.is_empty() {
        return Err(ControlError::NotRunning);
    }
    Ok(answer.trim_end().to_owned())
}

/// The listening side; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
}

impl ControlServer {
    /// Listens at `path` (mode 0600), handing each request to `requests`. A socket left behind by
    /// an instance that died is replaced; one that answers means another instance runs.
    pub fn start(path: &Path, requests: Sink<Request>) -> Result<ControlServer, ControlError> {
        let io = |source| ControlError::Io {
            path: path.to_owned(),
            source,
        };
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::AlreadyRunning);
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        std::thread::Builder::new()
            .name("control".to_owned())
            .spawn(move || serve(&listener, &requests))
            .map_err(io)?;
        Ok(ControlServer {
            path: path.to_owned(),
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: &UnixListener, requests: &Sink<Request>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let mut reader = BufReader::new(&stream);
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let answer = match Command::parse(&line) {
            Some(command) => {
                let (reply, answer) = crossbeam_channel::bounded(1);
                requests.send(Request { command, reply });
                answer
                    .recv_timeout(Duration::from_secs(3))
                    .unwrap_or_else(|_| "error: the instance did not answer".to_owned())
            }
            None => "error: unknown command (use toggle, start, stop, status)".to_owned(),
        };
        let mut stream = &stream;
        let _ = writeln!(stream, "{answer}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_the_socket_is_private() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.sock");
        assert!(matches!(
            send(&path, Command::Status),
            Err(ControlError::NotRunning)
        ));
        let answerer = Sink::from_fn(|request: Request| {
            let _ = request
                .reply
                .send(format!("did {}", request.command.as_str()));
        });
        let server =
            ControlServer::start(&path, answerer.clone()).unwrap_or_else(|e| panic!("{e}"));
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        assert_eq!(
            send(&path, Command::Toggle).ok().as_deref(),
            Some("did toggle")
        );
        assert!(matches!(
            ControlServer::start(&path, answerer),
            Err(ControlError::AlreadyRunning)
        ));
        drop(server);
        assert!(!path.exists());
    }
}
