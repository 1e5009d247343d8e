//! The session task: one per dictation. It connects, streams audio chunks from a crossbeam channel
//! as they come, sends `end` when the source ends, waits (bounded) for the `is_last` message and
//! closes cleanly. Everything it learns goes out as [`SessionEvent`]s.
//!
//! It owns the recovery policy: it keeps the audio not yet covered by a final segment (bounded), and
//! after an unexpected close or a dead connection it reconnects with backoff, replays that audio,
//! and carries on; word times of every connection are put on the dictation's timeline. Refusals
//! the user must fix (key, parameters, policy) are never retried.

use std::time::Duration;

use crossbeam_channel::Receiver;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::{self, Message};

mod backoff;
mod connection;
mod error;
mod inbox;
mod replay;
mod summary;

use backoff::{Backoff, Retry};
pub use error::SessionError;
use error::handshake_error;
use inbox::{Flow, Inbox};
use replay::{Coverage, Dedupe, ReplayBuffer, SentChunk};
pub use summary::{LatencySummary, SessionSummary};

use crate::audio::AudioChunk;
use crate::channel::{Sink, WokenReceiver};
use crate::protocol::{ApiKey, Dialect, StreamParams, UrlError, WordTimestamp, build_endpoint};

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
    pub reconnect: ReconnectPolicy,
    pub liveness: Liveness,
    /// Audio kept for replay after a reconnect. A file source waits when this much is
    /// unconfirmed; a live source drops the oldest past it (reported as a gap if it is ever
    /// needed).
    pub replay_limit: Duration,
    /// Where the audio comes from: whether it can wait, and whether an outage may continue
    /// offline.
    pub source: SourceKind,
    /// A file source held back by a full replay window with no final confirming anything for this
    /// long ends the connection with `end` (its `is_last` confirms everything) and goes on in a
    /// new one.
    pub rollover_after: Duration,
    /// A live dictation that cannot reach the service for this long goes on with `fallback`.
    pub offline_after: Duration,
    /// The recogniser on this computer, started on demand when the service stays away.
    pub fallback: Option<Fallback>,
}

/// Where a dictation's audio comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A file: reading can pause, so it never runs ahead of the replay window.
    File,
    /// A microphone: it cannot wait; all unconfirmed audio is kept (up to the replay limit).
    Live,
}

/// A local recogniser that can take over a live dictation: started on first use, kept alive by
/// the guard it returns.
#[derive(Clone)]
pub struct Fallback {
    pub start: std::sync::Arc<
        dyn Fn() -> Result<FallbackTarget, String> + Send + Sync + std::panic::RefUnwindSafe,
    >,
}

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fallback")
    }
}

/// A running fallback recogniser.
pub struct FallbackTarget {
    /// Its WebSocket URL (loopback; no key is sent to it).
    pub url: String,
    /// Keeps it running for as long as the session uses it.
    pub guard: Box<dyn std::any::Any + Send>,
}

/// When and how fast to reconnect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    pub enabled: bool,
    /// First wait; doubles each attempt (with ±20 % jitter) up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Give up once no handshake has succeeded for this long (the service is away).
    pub give_up_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            give_up_after: Duration::from_mins(1),
        }
    }
}

/// How a dead connection is noticed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Liveness {
    /// WebSocket ping interval.
    pub ping_every: Duration,
    /// No pong for this long: the connection is dead.
    pub pong_timeout: Duration,
    /// No frame at all for this long while audio is being sent: the connection is dead.
    pub silence_timeout: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            ping_every: Duration::from_secs(5),
            pong_timeout: Duration::from_secs(15),
            silence_timeout: Duration::from_secs(20),
        }
    }
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
            reconnect: ReconnectPolicy::default(),
            liveness: Liveness::default(),
            replay_limit: Duration::from_mins(1),
            source: SourceKind::File,
            rollover_after: Duration::from_secs(10),
            offline_after: Duration::from_secs(10),
            fallback: None,
        }
    }

    /// For a microphone: an hour of unconfirmed audio is kept through an outage (16 kHz linear16
    /// is 115 MB an hour).
    #[must_use]
    pub fn live(mut self) -> Self {
        self.source = SourceKind::Live;
        self.replay_limit = Duration::from_hours(1);
        self
    }
}

/// A closed segment.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalSegment {
    pub text: String,
    pub language: Option<String>,
    pub words: Vec<WordTimestamp>,
    /// Where the segment lies on the dictation's timeline (from its word times), also when the
    /// words themselves were not asked for.
    pub span: Option<(f64, f64)>,
    /// Whether this was the terminal message.
    pub is_last: bool,
    /// Seconds of audio sent when it arrived: an upper bound on the segment's end when there are no
    /// word times.
    pub audio_sent_secs: f64,
    /// The server never confirmed it: the last interim text, kept when `is_last` did not come.
    pub unconfirmed: bool,
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
    /// The connection was lost; trying again after `delay` (attempt 1, 2, ...).
    Reconnecting {
        attempt: u32,
        delay: Duration,
        reason: String,
        /// Seconds of unconfirmed audio kept for the next connection.
        kept_secs: f64,
    },
    /// Connected again; `replayed_secs` of audio not yet covered by a final were sent again.
    Reconnected { attempt: u32, replayed_secs: f64 },
    /// The replay buffer overflowed: this much of the oldest unconfirmed audio can no longer be
    /// replayed if the connection drops.
    ReplayOverflow { dropped_secs: f64 },
    /// Audio that will never be transcribed: `secs` seconds from `start_secs` on the dictation's
    /// timeline (a replay limit hit during an outage). The transcript shows a marker there.
    Gap { start_secs: f64, secs: f64 },
    /// The service is no longer at the configured URL (404/410 at the API document's path);
    /// `suggested_url` is its current endpoint.
    ServiceMoved { suggested_url: String },
    /// The service stayed away: the dictation goes on with the recogniser on this computer,
    /// from the first unconfirmed sample.
    WentOffline { reason: String },
    /// The session is over; `Ok` after a clean `is_last`.
    Ended(Result<SessionSummary, SessionError>),
}

/// Runs a session on chunks from a plain crossbeam channel (a thread moves them into a
/// [`WokenReceiver`]), then reports [`SessionEvent::Ended`]. Returns the same outcome.
pub async fn run_session(
    config: SessionConfig,
    audio: Receiver<AudioChunk>,
    events: impl Into<Sink<SessionEvent>>,
) -> Result<SessionSummary, SessionError> {
    let events = events.into();
    let audio = match WokenReceiver::forwarded(audio, FORWARDED_CHUNKS) {
        Ok(audio) => audio,
        Err(e) => {
            let outcome = Err(SessionError::Dropped {
                detail: format!("cannot start a thread: {e}"),
            });
            events.send(SessionEvent::Ended(outcome.clone()));
            return outcome;
        }
    };
    run_session_woken(config, audio, events).await
}

/// Chunks a [`run_session`] forwarding thread holds beyond its source's channel.
const FORWARDED_CHUNKS: usize = 64;

/// Runs a session on chunks that wake it as they are sent (what the dictation core does: no
/// thread between the capture and the session), then reports [`SessionEvent::Ended`].
pub async fn run_session_woken(
    config: SessionConfig,
    audio: WokenReceiver<AudioChunk>,
    events: impl Into<Sink<SessionEvent>>,
) -> Result<SessionSummary, SessionError> {
    let events = events.into();
    let outcome = stream_session(&config, audio, &events).await;
    if let Err(SessionError::Moved { .. }) = &outcome {
        events.send(SessionEvent::ServiceMoved {
            suggested_url: crate::protocol::PULSE_LIVE_URL.to_owned(),
        });
    }
    events.send(SessionEvent::Ended(outcome.clone()));
    outcome
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What one connection ended with.
enum ConnectionEnd {
    /// `is_last` arrived: the dictation is complete.
    Done,
    /// `is_last` arrived for an `end` sent to confirm a full replay window: go on in a new
    /// connection.
    RolledOver,
    /// It failed; `progressed` tells whether it got anywhere (resets the outage clock).
    Failed {
        error: SessionError,
        progressed: bool,
    },
}

/// The state of a dictation across its connections.
struct Dictation<'a> {
    config: &'a SessionConfig,
    events: &'a Sink<SessionEvent>,
    rate: u32,
    replay: ReplayBuffer,
    coverage: Coverage,
    summary: SessionSummary,
    latencies: Vec<f64>,
    /// The source has ended (`end` must be sent).
    source_done: bool,
    /// Sample index after the newest chunk received from the source.
    live_sample: u64,
    last_interim: String,
    noticed: Noticed,
    /// When a final last released audio from the replay buffer (or the connection began).
    last_release: Instant,
}

/// Where the session connects: the service, or the recogniser on this computer after a fallback.
struct Target {
    url: String,
    dialect: Dialect,
    host: String,
    api_key: Option<ApiKey>,
}

impl Target {
    fn request(&self) -> Result<tungstenite::handshake::client::Request, SessionError> {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| UrlError::Invalid(self.url.clone()))?;
        if let Some(key) = &self.api_key {
            let mut value =
                HeaderValue::from_str(&key.bearer()).map_err(|_| SessionError::Auth {
                    status: 401,
                    detail: "the key contains characters a header cannot carry".to_owned(),
                })?;
            value.set_sensitive(true);
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        Ok(request)
    }
}

/// The parameters asked of the server: always with word times, whatever the user chose to see,
/// so that every final says which audio it covers.
fn wire_params(params: &StreamParams) -> StreamParams {
    StreamParams {
        word_timestamps: true,
        ..*params
    }
}

async fn stream_session(
    config: &SessionConfig,
    audio: WokenReceiver<AudioChunk>,
    events: &Sink<SessionEvent>,
) -> Result<SessionSummary, SessionError> {
    let wire = wire_params(&config.params);
    let endpoint = build_endpoint(&config.base_url, &wire, config.api_key.is_some())?;
    let mut target = Target {
        url: endpoint.url.clone(),
        dialect: endpoint.dialect,
        host: endpoint.host.clone(),
        api_key: config.api_key.clone(),
    };
    target.request()?;
    events.send(SessionEvent::Connecting {
        url: endpoint.url.clone(),
    });

    let mut chunk_rx = audio;
    let rate = config.params.sample_rate.hz();
    let mut dictation = Dictation {
        config,
        events,
        rate,
        replay: ReplayBuffer::new((config.replay_limit.as_secs_f64() * f64::from(rate)) as u64),
        coverage: Coverage::default(),
        summary: SessionSummary::default(),
        latencies: Vec::new(),
        source_done: false,
        live_sample: 0,
        last_interim: String::new(),
        noticed: Noticed::default(),
        last_release: Instant::now(),
    };
    let mut backoff = Backoff::new(config.reconnect);
    // The local recogniser, once the dictation went offline: kept alive until the session ends.
    let mut fallback_guard = OffThreadDrop(None);
    loop {
        let connected = match tokio::time::timeout(
            config.connect_timeout,
            tokio_tungstenite::connect_async_with_config(
                target.request()?,
                Some(crate::protocol::websocket_config()),
                true,
            ),
        )
        .await
        {
            Err(_) => Err(SessionError::Connect {
                host: target.host.clone(),
                detail: format!(
                    "no answer within {} s",
                    config.connect_timeout.as_secs_f32()
                ),
            }),
            Ok(Err(e)) => Err(handshake_error(e, &target.host, target.dialect)),
            Ok(Ok((ws, _response))) => Ok(ws),
        };
        let accepted = connected.is_ok();
        let end = match connected {
            Ok(ws) => {
                if let Some(attempt) = backoff.connected() {
                    dictation.summary.reconnects += 1;
                    let replayed_secs = dictation.replay.samples() as f64 / f64::from(rate);
                    tracing::info!(attempt, replayed_secs, "reconnected");
                    events.send(SessionEvent::Reconnected {
                        attempt,
                        replayed_secs,
                    });
                } else {
                    tracing::info!(url = %target.url, "connected");
                }
                dictation.report_gap();
                events.send(SessionEvent::Connected);
                dictation
                    .run_connection(ws, &mut chunk_rx, target.dialect.end_message())
                    .await
            }
            Err(error) => {
                backoff.handshake_failed(Instant::now());
                ConnectionEnd::Failed {
                    error,
                    progressed: false,
                }
            }
        };
        let error = match end {
            ConnectionEnd::Done => {
                dictation.summary.handoff_latency =
                    LatencySummary::from_secs(std::mem::take(&mut dictation.latencies));
                drop(fallback_guard);
                return Ok(dictation.summary);
            }
            ConnectionEnd::RolledOver => {
                backoff.rolled_over();
                continue;
            }
            ConnectionEnd::Failed { error, progressed } => {
                backoff.connection_failed(progressed, accepted);
                error
            }
        };
        // Before the first connection, nobody answering is reported at once (a wrong URL, a
        // server not started); a server that answers "later" (429, 5xx) is waited for.
        let never_connected = dictation.summary.session_id.is_none() && !backoff.in_outage();
        let unreachable = matches!(
            error,
            SessionError::Connect { .. } | SessionError::Tls { .. }
        );
        let retryable = config.reconnect.enabled && error.is_retryable();
        if !retryable || (never_connected && unreachable) {
            return Err(dictation.give_up(error));
        }
        let Retry {
            attempt,
            mut delay,
            down_for,
            give_up: giving_up,
        } = backoff.next(&error, Instant::now());
        // A live dictation with a recogniser to fall back on tries the service once more when it
        // has been away for `offline_after`, not after a doubled delay well past it.
        if config.source == SourceKind::Live
            && config.fallback.is_some()
            && fallback_guard.0.is_none()
        {
            delay = delay.min(
                config
                    .offline_after
                    .saturating_sub(down_for)
                    .max(Duration::from_millis(100)),
            );
        }
        // A live dictation does not wait for the service for long: the words keep coming.
        if fallback_guard.0.is_none()
            && config.source == SourceKind::Live
            && (giving_up || down_for >= config.offline_after || backoff.barren() >= 3)
            && let Some(fallback) = &config.fallback
        {
            let start = std::sync::Arc::clone(&fallback.start);
            match tokio::task::spawn_blocking(move || start()).await {
                Ok(Ok(local)) => {
                    let reason = format!(
                        "the service has been unreachable for {} s ({error})",
                        down_for.as_secs()
                    );
                    tracing::warn!("{reason}: continuing offline");
                    events.send(SessionEvent::WentOffline { reason });
                    let endpoint = build_endpoint(&local.url, &wire, false)?;
                    target = Target {
                        host: endpoint.host,
                        url: endpoint.url,
                        dialect: endpoint.dialect,
                        api_key: None,
                    };
                    fallback_guard = OffThreadDrop(Some(local.guard));
                    continue;
                }
                Ok(Err(e)) => dictation.notice(
                    "fallback",
                    &format!("the recogniser on this computer cannot take over: {e}"),
                ),
                Err(_) => dictation.notice("fallback", "the recogniser on this computer failed"),
            }
        }
        if giving_up {
            return Err(dictation.give_up(error));
        }
        if config.source == SourceKind::Live
            && config.fallback.is_none()
            && down_for >= config.offline_after
        {
            dictation.notice(
                "down-no-fallback",
                &format!(
                    "the service has been unreachable for {} s: the audio is kept until it is back (with an offline model installed, the dictation would go on on this computer)",
                    down_for.as_secs()
                ),
            );
        }
        tracing::warn!(attempt, ?delay, "connection lost: {error}");
        events.send(SessionEvent::Reconnecting {
            attempt,
            delay,
            reason: error.to_string(),
            kept_secs: dictation.replay.samples() as f64 / f64::from(rate),
        });
        dictation.collect_for(delay, &mut chunk_rx).await;
    }
}

/// Holds the fallback recogniser; drops it on a thread of its own, as a server with its own
/// runtime cannot be stopped from inside the session's runtime.
struct OffThreadDrop(Option<Box<dyn std::any::Any + Send>>);

impl Drop for OffThreadDrop {
    fn drop(&mut self) {
        if let Some(guard) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("fallback-stop".to_owned())
                .spawn(move || drop(guard));
        }
    }
}

impl Dictation<'_> {
    fn notice(&mut self, kind: &str, message: &str) {
        if self.noticed.first(kind) {
            tracing::warn!("{message}");
            self.events.send(SessionEvent::Notice(message.to_owned()));
        }
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
