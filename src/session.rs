//! The session task: one WebSocket connection per dictation. It connects, streams audio chunks
//! from a crossbeam channel as they come, sends `end` when the source ends, waits (bounded) for the
//! `is_last` message and closes cleanly. Everything it learns goes out as [`SessionEvent`]s.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::audio::AudioChunk;
use crate::protocol::{
    ApiKey, END_MESSAGE, ServerMessage, StreamParams, UrlError, WordTimestamp, build_endpoint,
    parse_server_message,
};

/// How to reach the service and what to ask of it.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Base URL; the stream parameters are added to it.
    pub base_url: String,
    pub params: StreamParams,
    pub api_key: Option<ApiKey>,
    /// Bound on TCP + TLS + WebSocket handshake.
    pub connect_timeout: Duration,
    /// Bound on the wait for `is_last` after `end`.
    pub finish_timeout: Duration,
    /// Also emit [`SessionEvent::ServerText`] for every text frame, exactly as received.
    pub forward_raw: bool,
}

impl SessionConfig {
    pub fn new(base_url: impl Into<String>, params: StreamParams, api_key: Option<ApiKey>) -> Self {
        SessionConfig {
            base_url: base_url.into(),
            params,
            api_key,
            connect_timeout: Duration::from_secs(10),
            finish_timeout: Duration::from_secs(15),
            forward_raw: false,
        }
    }
}

/// A closed segment.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalSegment {
    pub text: String,
    pub language: Option<String>,
    pub words: Vec<WordTimestamp>,
    /// Whether this was the terminal message.
    pub is_last: bool,
    /// Seconds of audio sent when it arrived: an upper bound on the segment's end when there are no
    /// word times.
    pub audio_sent_secs: f64,
}

/// What the session reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Connecting to this URL (which carries no secret).
    Connecting { url: String },
    /// The WebSocket is open; audio flows.
    Connected,
    /// The open segment's text so far; replaces the previous interim.
    Interim { text: String },
    /// A segment closed.
    Final(FinalSegment),
    /// A text frame exactly as received (only with `forward_raw`).
    ServerText(String),
    /// The server reported an error in a frame.
    ServerError { message: String },
    /// Something odd but harmless (garbage frames, unknown messages); logged once per kind.
    Notice(String),
    /// `end` was sent; waiting for the last message.
    Finishing,
    /// The session is over; `Ok` after a clean `is_last`.
    Ended(Result<SessionSummary, String>),
}

/// Totals of a finished session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionSummary {
    pub session_id: Option<String>,
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    pub audio_secs_sent: f64,
    pub finals: u64,
    /// For live audio: time from the device delivering the audio that completed a chunk to that
    /// chunk being handed to the WebSocket, over every chunk.
    pub handoff_latency: Option<LatencySummary>,
}

/// Percentiles of a latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises samples in seconds; `None` when there are none.
    pub fn from_secs(mut samples: Vec<f64>) -> Option<LatencySummary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize] * 1000.0;
        Some(LatencySummary {
            count: samples.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: samples[samples.len() - 1] * 1000.0,
        })
    }
}

/// Why a session failed. Each message says what to do; [`SessionError::is_retryable`] says whether
/// trying again can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Url(#[from] UrlError),
    /// 401/403: the key is wrong, missing or not allowed. Retrying will not help.
    #[error("the server refused the API key (HTTP {status}): set SMALLEST_API_KEY or pass --api-key{}", detail_suffix(.detail))]
    Auth { status: u16, detail: String },
    /// 400: a parameter the server does not accept.
    #[error("the server rejected the stream parameters (HTTP 400){}: check --language, --encoding and --sample-rate", detail_suffix(.detail))]
    BadRequest { detail: String },
    /// 429: too many requests; wait `retry_after` (when given) before trying again.
    #[error("the server is rate limiting this key (HTTP 429){}: wait and try again", retry_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx: the service is in trouble; worth retrying later.
    #[error("the server failed (HTTP {status}){}: try again in a moment", detail_suffix(.detail))]
    Server { status: u16, detail: String },
    /// Any other refusal of the upgrade (404: wrong URL path, ...).
    #[error("the server refused the connection (HTTP {status}){}: check --url", detail_suffix(.detail))]
    Refused { status: u16, detail: String },
    /// TCP connect failed or the handshake timed out.
    #[error(
        "cannot reach {host}: {detail}: check --url and the network (or start `lightning-dictate serve`)"
    )]
    Connect { host: String, detail: String },
    /// TLS failed (certificate, protocol).
    #[error("secure connection to {host} failed: {detail}: check the URL and the computer's clock")]
    Tls { host: String, detail: String },
    /// The connection broke mid-stream.
    #[error(
        "the connection to the server was lost: {detail}: the text received so far is kept; try again"
    )]
    Dropped { detail: String },
    /// The server closed before `is_last`.
    #[error("the server closed the stream early (close code {code}{}): the text received so far is kept; try again", detail_suffix(.reason))]
    ClosedEarly { code: u16, reason: String },
    /// The server sent an error frame and closed.
    #[error("the server reported an error: {message}: the text received so far is kept; try again")]
    ServerReported { message: String },
    /// `is_last` did not arrive in time after `end`.
    #[error(
        "the server did not confirm the end of the stream within {secs} s: the text received so far is kept"
    )]
    NoLastMessage { secs: u64 },
}

fn detail_suffix(detail: &str) -> String {
    let detail = detail.trim();
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {}", truncate(detail, 200))
    }
}

fn retry_suffix(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {} s", d.as_secs()))
        .unwrap_or_default()
}

fn truncate(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

impl SessionError {
    /// Whether an automatic retry can help (429, 5xx, network trouble), as opposed to something the
    /// user must fix (key, parameters, URL).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SessionError::RateLimited { .. }
                | SessionError::Server { .. }
                | SessionError::Connect { .. }
                | SessionError::Dropped { .. }
                | SessionError::ClosedEarly { .. }
        )
    }

    /// Whether the key was refused (the CLI's exit code 3).
    pub fn is_auth(&self) -> bool {
        matches!(self, SessionError::Auth { .. })
    }
}

/// Runs a session, then reports [`SessionEvent::Ended`]. Returns the same outcome.
pub async fn run_session(
    config: SessionConfig,
    audio: Receiver<AudioChunk>,
    events: Sender<SessionEvent>,
) -> Result<SessionSummary, SessionError> {
    let outcome = stream_session(&config, audio, &events).await;
    let _ = events.send(SessionEvent::Ended(
        outcome.clone().map_err(|e| e.to_string()),
    ));
    outcome
}

async fn stream_session(
    config: &SessionConfig,
    audio: Receiver<AudioChunk>,
    events: &Sender<SessionEvent>,
) -> Result<SessionSummary, SessionError> {
    let endpoint = build_endpoint(&config.base_url, &config.params, config.api_key.is_some())?;
    let _ = events.send(SessionEvent::Connecting {
        url: endpoint.url.clone(),
    });
    let mut request = endpoint
        .url
        .as_str()
        .into_client_request()
        .map_err(|_| UrlError::Invalid(config.base_url.clone()))?;
    if let Some(key) = &config.api_key {
        let mut value = HeaderValue::from_str(&key.bearer()).map_err(|_| SessionError::Auth {
            status: 401,
            detail: "the key contains characters a header cannot carry".to_owned(),
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }

    let connect = tokio_tungstenite::connect_async_with_config(
        request,
        Some(crate::server::websocket_config()),
        true,
    );
    let (ws, _response) = match tokio::time::timeout(config.connect_timeout, connect).await {
        Err(_) => {
            return Err(SessionError::Connect {
                host: endpoint.host.clone(),
                detail: format!(
                    "no answer within {} s",
                    config.connect_timeout.as_secs_f32()
                ),
            });
        }
        Ok(Err(e)) => return Err(handshake_error(e, &endpoint.host)),
        Ok(Ok(ok)) => ok,
    };
    let _ = events.send(SessionEvent::Connected);
    tracing::info!(url = %endpoint.url, "connected");

    // The crossbeam receiver blocks; a small thread moves chunks into the async world. It ends
    // when the source ends (channel disconnected) or this task is gone.
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<AudioChunk>(64);
    std::thread::Builder::new()
        .name("audio-forward".to_owned())
        .spawn(move || {
            for chunk in audio.iter() {
                if chunk_tx.blocking_send(chunk).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| SessionError::Dropped {
            detail: format!("cannot start a thread: {e}"),
        })?;

    let (mut sink, mut stream) = ws.split();
    let rate = config.params.sample_rate;
    let mut inbox = Inbox {
        events,
        forward_raw: config.forward_raw,
        summary: SessionSummary::default(),
        error_message: None,
        noticed: Noticed::default(),
    };
    let mut audio_open = true;
    let mut finish_deadline: Option<Instant> = None;
    let mut latencies: Vec<f64> = Vec::new();

    loop {
        let deadline = finish_deadline;
        tokio::select! {
            // Read before sending: a final or an error frame waiting in the socket is never
            // left behind by a send that fails.
            biased;
            frame = stream.next() => {
                match inbox.on_frame(frame) {
                    Flow::Continue => {}
                    Flow::Last => {
                        let _ = sink.send(Message::Close(None)).await;
                        // Read the server's close (bounded), then we are done.
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            while let Some(Ok(_)) = stream.next().await {}
                        }).await;
                        inbox.summary.handoff_latency = LatencySummary::from_secs(latencies);
                        return Ok(inbox.summary);
                    }
                    Flow::Failed(e) => return Err(e),
                }
            }
            chunk = chunk_rx.recv(), if audio_open => {
                let sent = match chunk {
                    Some(chunk) => {
                        let secs = chunk.end_secs(rate);
                        let len = chunk.bytes.len() as u64;
                        if let Some(at) = chunk.captured_at {
                            latencies.push(at.elapsed().as_secs_f64());
                        }
                        let sent = sink.send(Message::Binary(chunk.bytes.into())).await;
                        if sent.is_ok() {
                            inbox.summary.chunks_sent += 1;
                            inbox.summary.bytes_sent += len;
                            inbox.summary.audio_secs_sent = secs;
                        }
                        sent
                    }
                    None => {
                        audio_open = false;
                        let sent = sink.send(Message::text(END_MESSAGE)).await;
                        if sent.is_ok() {
                            let _ = events.send(SessionEvent::Finishing);
                            finish_deadline = Some(Instant::now() + config.finish_timeout);
                        }
                        sent
                    }
                };
                if let Err(e) = sent {
                    // The socket broke while sending: whatever the server sent before that is
                    // still worth reading (finals, an error frame saying why).
                    let drained = tokio::time::timeout(Duration::from_millis(500), async {
                        loop {
                            match inbox.on_frame(stream.next().await) {
                                Flow::Continue => {}
                                Flow::Last => return Ok(()),
                                Flow::Failed(e) => return Err(e),
                            }
                        }
                    }).await;
                    return match drained {
                        Ok(Ok(())) => Ok(inbox.summary),
                        Ok(Err(SessionError::ServerReported { message })) => Err(SessionError::ServerReported { message }),
                        _ => Err(match inbox.error_message {
                            Some(message) => SessionError::ServerReported { message },
                            None => SessionError::Dropped { detail: e.to_string() },
                        }),
                    };
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let _ = sink.send(Message::Close(None)).await;
                return Err(SessionError::NoLastMessage { secs: config.finish_timeout.as_secs() });
            }
        }
    }
}

/// What a received frame means for the session.
enum Flow {
    Continue,
    /// The terminal `is_last` message arrived.
    Last,
    Failed(SessionError),
}

/// The receiving side: turns frames into events and remembers what the outcome needs.
struct Inbox<'a> {
    events: &'a Sender<SessionEvent>,
    forward_raw: bool,
    summary: SessionSummary,
    error_message: Option<String>,
    noticed: Noticed,
}

impl Inbox<'_> {
    fn on_frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>) -> Flow {
        let frame = match frame {
            None => {
                return Flow::Failed(
                    self.broken("the server went away without closing".to_owned()),
                );
            }
            Some(Err(e)) => return Flow::Failed(self.broken(e.to_string())),
            Some(Ok(frame)) => frame,
        };
        match frame {
            Message::Text(text) => self.on_text(&text),
            Message::Binary(_) => {
                self.notice("binary", "ignored a binary frame from the server");
                Flow::Continue
            }
            Message::Close(close) => {
                if let Some(message) = self.error_message.take() {
                    return Flow::Failed(SessionError::ServerReported { message });
                }
                let (code, reason) = close
                    .map(|c| (u16::from(c.code), c.reason.to_string()))
                    .unwrap_or((u16::from(CloseCode::Status), String::new()));
                Flow::Failed(SessionError::ClosedEarly { code, reason })
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Flow::Continue,
        }
    }

    fn on_text(&mut self, text: &str) -> Flow {
        if self.forward_raw {
            let _ = self.events.send(SessionEvent::ServerText(text.to_owned()));
        }
        match parse_server_message(text) {
            Ok(ServerMessage::Transcript(message)) => {
                if self.summary.session_id.is_none() {
                    self.summary.session_id = message.session_id.clone();
                }
                if message.is_final || message.is_last {
                    self.summary.finals += 1;
                    let _ = self.events.send(SessionEvent::Final(FinalSegment {
                        text: message.transcript.trim().to_owned(),
                        language: message.language,
                        words: message.word_timestamps.unwrap_or_default(),
                        is_last: message.is_last,
                        audio_sent_secs: self.summary.audio_secs_sent,
                    }));
                } else {
                    let _ = self.events.send(SessionEvent::Interim {
                        text: message.transcript,
                    });
                }
                if message.is_last {
                    Flow::Last
                } else {
                    Flow::Continue
                }
            }
            Ok(ServerMessage::Error { message }) => {
                tracing::warn!("server error frame: {message}");
                let _ = self.events.send(SessionEvent::ServerError {
                    message: message.clone(),
                });
                self.error_message = Some(message);
                Flow::Continue
            }
            Ok(ServerMessage::Event { kind }) => {
                if self.noticed.first(&kind) {
                    tracing::debug!("ignoring server event `{kind}`");
                }
                Flow::Continue
            }
            Err(e) => {
                self.notice(
                    "malformed",
                    &format!("ignored a malformed message from the server ({e})"),
                );
                Flow::Continue
            }
        }
    }

    fn notice(&mut self, kind: &str, message: &str) {
        if self.noticed.first(kind) {
            tracing::warn!("{message}");
            let _ = self.events.send(SessionEvent::Notice(message.to_owned()));
        }
    }

    /// The error for a broken connection: the server's own words when it sent an error frame.
    fn broken(&mut self, detail: String) -> SessionError {
        match self.error_message.take() {
            Some(message) => SessionError::ServerReported { message },
            None => SessionError::Dropped { detail },
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Kinds of oddity already reported, so each is reported once.
#[derive(Default)]
struct Noticed(Vec<String>);

impl Noticed {
    fn first(&mut self, kind: &str) -> bool {
        if self.0.iter().any(|k| k == kind) {
            return false;
        }
        self.0.push(kind.to_owned());
        true
    }
}

/// Maps a failed handshake to what the user must do.
fn handshake_error(error: tungstenite::Error, host: &str) -> SessionError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let detail = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .map(|b| body_message(&b))
                .unwrap_or_default();
            match status {
                401 | 403 => SessionError::Auth { status, detail },
                400 => SessionError::BadRequest { detail },
                429 => SessionError::RateLimited {
                    retry_after: response
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs),
                },
                500..=599 => SessionError::Server { status, detail },
                _ => SessionError::Refused { status, detail },
            }
        }
        tungstenite::Error::Tls(e) => SessionError::Tls {
            host: host.to_owned(),
            detail: e.to_string(),
        },
        tungstenite::Error::Io(e) => SessionError::Connect {
            host: host.to_owned(),
            detail: e.to_string(),
        },
        tungstenite::Error::Url(e) => SessionError::Connect {
            host: host.to_owned(),
            detail: e.to_string(),
        },
        other => SessionError::Connect {
            host: host.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// The message of a JSON error body (`{"error": ...}`, `{"message": ...}`), or the body itself.
fn body_message(body: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["error", "message", "detail"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
    }
    body.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do_on_one_line() {
        let errors = [
            SessionError::Auth {
                status: 401,
                detail: "invalid or missing API key".into(),
            },
            SessionError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
            SessionError::Connect {
                host: "127.0.0.1".into(),
                detail: "Connection refused".into(),
            },
            SessionError::Server {
                status: 503,
                detail: "line one\nline two".into(),
            },
        ];
        for e in &errors {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
        }
        assert!(errors[0].to_string().starts_with(
            "the server refused the API key (HTTP 401): set SMALLEST_API_KEY or pass --api-key"
        ));
        assert!(errors[1].to_string().contains("retry after 3 s"));
        assert!(!errors[0].is_retryable() && errors[1].is_retryable());
    }

    #[test]
    fn body_messages() {
        assert_eq!(body_message(r#"{"error":"bad key"}"#), "bad key");
        assert_eq!(body_message(" plain "), "plain");
    }
}
