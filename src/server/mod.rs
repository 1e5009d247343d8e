//! The local Lightning server: the same protocol as the service, on loopback, in front of an
//! [`Engine`]. Validates path, parameters and key before the upgrade (404/400/401), decodes every
//! encoding at every rate, and has fault switches so the client's failure handling can be tested.

pub mod chaos;
pub mod engine;
mod outbox;
pub mod tone_engine;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

pub use chaos::{Chaos, ChaosFault, FaultRecord};
pub use engine::{Engine, EngineOutput, EngineSession};
use outbox::{Outbox, Sent};
pub use tone_engine::ToneEngine;

use crate::audio::encode::Decoder;
use crate::protocol::{
    ApiKey, ClientControl, Dialect, KNOWN_PATHS, StreamParams, parse_client_control,
};

/// Switches that make the server misbehave on purpose, for tests.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Drop the TCP connection (no close frame) once this many audio bytes arrived in a session.
    pub drop_after_bytes: Option<u64>,
    /// How many sessions the drop applies to (the first N that reach the threshold).
    pub drop_sessions: u32,
    /// Stop reading and answering for `stall` once this many audio bytes arrived (once a session).
    pub stall_after_bytes: Option<u64>,
    pub stall: Duration,
    /// How many sessions stall (0: every session).
    pub stall_sessions: u32,
    /// Send a garbage text frame and a garbage binary frame before every real message.
    pub garbage: bool,
    /// Refuse the first N handshakes with `refuse_status` (and `Retry-After` when set).
    pub refuse_first: u32,
    pub refuse_status: u16,
    pub retry_after_secs: Option<u32>,
    /// Never send the `is_last` message (the connection stays open until the client leaves).
    pub withhold_is_last: bool,
    /// Send an error frame and close (1011) once this many audio bytes arrived.
    pub error_after_bytes: Option<u64>,
    /// Wait this long before answering each handshake (a slow network).
    pub handshake_delay: Duration,
    /// Seeded random faults after every 5-20 s of received audio (see [`chaos`]).
    pub chaos: Option<u64>,
    /// One fault of any kind, once: in the first session that has received this many bytes.
    pub once: Option<(u64, ChaosFault)>,
    /// Send finals without word times even when they were asked for (as a server may).
    pub no_word_times: bool,
}

/// What a session received, for tests that check the audio byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub params: StreamParams,
    pub audio: Vec<u8>,
    pub end_received: bool,
}

/// How to run the server.
#[derive(Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// The key clients must present; `None` accepts any (or no) key.
    pub api_key: Option<ApiKey>,
    pub engine: Arc<dyn Engine>,
    pub faults: Faults,
    /// Keep every session's audio and hand it out through [`RunningServer::records`].
    pub record_sessions: bool,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("api_key", &self.api_key)
            .field("engine", &self.engine.name())
            .field("faults", &self.faults)
            .finish()
    }
}

impl ServerConfig {
    /// Loopback on `port` (0 for any free port), no key, the tone engine, no faults.
    pub fn loopback(port: u16) -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            api_key: None,
            engine: Arc::new(ToneEngine),
            faults: Faults::default(),
            record_sessions: false,
        }
    }
}

struct State {
    config: ServerConfig,
    refusals_left: AtomicU32,
    drops_left: AtomicU32,
    stalls_left: AtomicU32,
    sessions: AtomicU64,
    records: Option<crossbeam_channel::Sender<SessionRecord>>,
    chaos: Option<Chaos>,
    fault_log: crossbeam_channel::Sender<FaultRecord>,
    once_left: AtomicU32,
    /// A refusal a fault scheduled for the next handshake.
    refuse_next: std::sync::Mutex<Option<(u16, Option<u32>)>>,
}

impl State {
    /// Decides on the handshake. Returns the stream parameters or the HTTP refusal.
    fn admit(&self, request: &Request) -> Result<(StreamParams, Dialect), Refusal> {
        let path = request.uri().path();
        if !KNOWN_PATHS.contains(&path) {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                &format!("unknown path {path}; use {}", KNOWN_PATHS[0]),
                None,
            ));
        }
        let dialect = Dialect::of_path(path);
        let query = request.uri().query().unwrap_or("");
        let scheduled = self.refuse_next.lock().ok().and_then(|mut r| r.take());
        if let Some((status, retry_after)) = scheduled {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Err(refusal(status, "refused by chaos", retry_after));
        }
        if take_one(&self.refusals_left) {
            let status = StatusCode::from_u16(self.config.faults.refuse_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Err(refusal(
                status,
                "refused by the fault switch",
                self.config.faults.retry_after_secs,
            ));
        }
        if let Some(key) = &self.config.api_key {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                });
            if presented != Some(key.expose()) {
                return Err(refusal(
                    StatusCode::UNAUTHORIZED,
                    "invalid or missing API key",
                    None,
                ));
            }
        }
        let params = StreamParams::from_query(query)
            .map_err(|e| refusal(StatusCode::BAD_REQUEST, &e.to_string(), None))?;
        if path.ends_with("/stt/live") {
            // As the 2026 documents describe the unified endpoint.
            let has_model = query.split('&').any(|p| {
                p.split_once('=')
                    .is_some_and(|(k, v)| k == "model" && !v.is_empty())
            });
            if !has_model {
                return Err(Refusal {
                    code: Some("MODEL_REQUIRED"),
                    ..refusal(StatusCode::BAD_REQUEST, "model is required", None)
                });
            }
            if params.language.is_multi() {
                return Err(Refusal {
                    code: Some("LANGUAGE_NOT_ENABLED_IN_REGION"),
                    ..refusal(
                        StatusCode::BAD_REQUEST,
                        "Language 'multi' has not been enabled in this region",
                        None,
                    )
                });
            }
        }
        self.config
            .engine
            .check_params(&params)
            .map_err(|e| refusal(StatusCode::BAD_REQUEST, &e, None))?;
        Ok((params, dialect))
    }
}

/// Decrements a counter that is above zero; tells whether it did.
fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// An HTTP answer instead of the upgrade.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
    retry_after: Option<u32>,
    /// The current dialect's `error_code`: the body is then `{"status":"error","error_code",
    /// "message"}` as the live endpoint sends it.
    code: Option<&'static str>,
}

fn refusal(status: StatusCode, message: &str, retry_after: Option<u32>) -> Refusal {
    Refusal {
        status,
        message: message.to_owned(),
        retry_after,
        code: None,
    }
}

fn error_response(refusal: Refusal) -> ErrorResponse {
    let Refusal {
        status,
        message,
        retry_after,
        code,
    } = refusal;
    let body = match code {
        Some(code) => {
            serde_json::json!({ "status": "error", "error_code": code, "message": message })
        }
        None => serde_json::json!({ "error": message }),
    }
    .to_string();
    let mut response = ErrorResponse::new(Some(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Frame and message caps: generous for audio, small enough that a hostile peer cannot make us
/// buffer without bound.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(4 << 20))
        .max_frame_size(Some(4 << 20))
}

/// A server accepting connections in the background.
pub struct RunningServer {
    local_addr: SocketAddr,
    records: crossbeam_channel::Receiver<SessionRecord>,
    fault_log: crossbeam_channel::Receiver<FaultRecord>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Binds and starts accepting on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> std::io::Result<RunningServer> {
        let listener = TcpListener::bind(config.addr).await?;
        let local_addr = listener.local_addr()?;
        let (record_tx, records) = crossbeam_channel::unbounded();
        let (fault_tx, fault_log) = crossbeam_channel::unbounded();
        let state = Arc::new(State {
            chaos: config.faults.chaos.map(Chaos::new),
            refuse_next: std::sync::Mutex::new(None),
            once_left: AtomicU32::new(u32::from(config.faults.once.is_some())),
            fault_log: fault_tx,
            refusals_left: AtomicU32::new(config.faults.refuse_first),
            drops_left: AtomicU32::new(config.faults.drop_sessions),
            stalls_left: AtomicU32::new(config.faults.stall_sessions),
            sessions: AtomicU64::new(0),
            records: config.record_sessions.then_some(record_tx),
            config,
        });
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let state = Arc::clone(&state);
                            tokio::spawn(async move { handle_connection(state, stream, peer).await });
                        }
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        });
        Ok(RunningServer {
            local_addr,
            records,
            fault_log,
            shutdown: Some(shutdown),
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL a client connects to (the API document's path).
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.local_addr, KNOWN_PATHS[0])
    }

    /// Finished sessions, when the config asked to record them.
    pub fn records(&self) -> &crossbeam_channel::Receiver<SessionRecord> {
        &self.records
    }

    /// The faults fired by `chaos`, as they fire.
    pub fn fault_log(&self) -> &crossbeam_channel::Receiver<FaultRecord> {
        &self.fault_log
    }

    /// Stops accepting (sessions in progress finish on their own).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the accept loop ends (it only ends through [`RunningServer::stop`]).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// A server with its own runtime on a background thread, for synchronous callers (tests,
/// benchmarks, the CLI's in-process use).
pub struct BackgroundServer {
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<RunningServer>,
    url: String,
    records: crossbeam_channel::Receiver<SessionRecord>,
    fault_log: crossbeam_channel::Receiver<FaultRecord>,
}

impl BackgroundServer {
    pub fn start(config: ServerConfig) -> std::io::Result<BackgroundServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("local-server")
            .enable_all()
            .build()?;
        let server = runtime.block_on(RunningServer::start(config))?;
        Ok(BackgroundServer {
            url: server.url(),
            records: server.records().clone(),
            fault_log: server.fault_log().clone(),
            server: Some(server),
            runtime: Some(runtime),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn records(&self) -> &crossbeam_channel::Receiver<SessionRecord> {
        &self.records
    }

    /// The faults fired by `chaos`, as they fire.
    pub fn fault_log(&self) -> &crossbeam_channel::Receiver<FaultRecord> {
        &self.fault_log
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let (Some(runtime), Some(server)) = (self.runtime.take(), self.server.take()) {
            runtime.block_on(server.stop());
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

enum EngineInput {
    Audio(Vec<f32>),
    Finalize,
    End,
    /// Answered once everything before it is processed and its outputs are sent.
    Sync(std::sync::mpsc::SyncSender<()>),
}

/// Runs one engine session on its own thread until the stream ends or the connection goes.
fn run_engine(
    mut session: Box<dyn EngineSession>,
    max_batch: usize,
    input: crossbeam_channel::Receiver<EngineInput>,
    output: tokio::sync::mpsc::UnboundedSender<EngineOutput>,
) {
    let mut next = None;
    loop {
        let message = match next.take() {
            Some(message) => message,
            None => match input.recv() {
                Ok(message) => message,
                Err(_) => return,
            },
        };
        let outputs = match message {
            EngineInput::Audio(mut samples) => {
                // A slow engine (a real recogniser) gets what queued up meanwhile in one call
                // (up to `max_batch` samples, so its results still flow while it catches up),
                // and is told when it is behind.
                while samples.len() < max_batch {
                    match input.try_recv() {
                        Ok(EngineInput::Audio(more)) => samples.extend_from_slice(&more),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                session.set_behind(next.is_some() || !input.is_empty());
                session.push(&samples)
            }
            EngineInput::Finalize => session.finalize(),
            EngineInput::Sync(done) => {
                let _ = done.send(());
                continue;
            }
            EngineInput::End => {
                let mut outputs = session.finish();
                match outputs.last_mut() {
                    Some(last) if last.is_final => last.is_last = true,
                    _ => outputs.push(EngineOutput {
                        is_final: true,
                        is_last: true,
                        ..EngineOutput::default()
                    }),
                }
                for out in outputs {
                    let _ = output.send(out);
                }
                return;
            }
        };
        for out in outputs {
            if output.send(out).is_err() {
                return;
            }
        }
    }
}

async fn handle_connection(state: Arc<State>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    if !state.config.faults.handshake_delay.is_zero() {
        tokio::time::sleep(state.config.faults.handshake_delay).await;
    }
    let mut admitted = None;
    // The callback's signature is tungstenite's; the large error type is theirs too.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| match state.admit(request) {
        Ok(admission) => {
            admitted = Some(admission);
            Ok(response)
        }
        Err(refused) => {
            tracing::info!(%peer, status = %refused.status, "handshake refused");
            Err(error_response(refused))
        }
    };
    let ws = match tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(websocket_config()),
    )
    .await
    {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(%peer, "handshake ended: {e}");
            return;
        }
    };
    let Some((params, dialect)) = admitted else {
        return;
    };
    let number = state.sessions.fetch_add(1, Ordering::SeqCst);
    let session_id = format!("sess_{:08x}{:04x}", std::process::id(), number);
    tracing::info!(%peer, %session_id, query = %params.query(), "session started");
    let faults = &state.config.faults;
    let drop_at = faults
        .drop_after_bytes
        .filter(|_| faults.drop_sessions > 0)
        .filter(|_| take_one(&state.drops_left));

    let stall_at = faults
        .stall_after_bytes
        .filter(|_| faults.stall_sessions == 0 || take_one(&state.stalls_left));

    let (engine_tx, engine_rx) = crossbeam_channel::unbounded();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel();
    let engine_session = state.config.engine.start(&params);
    // One second of audio at most per engine call.
    let max_batch = params.sample_rate.hz() as usize;
    let engine_thread = std::thread::Builder::new()
        .name("engine-session".to_owned())
        .spawn(move || run_engine(engine_session, max_batch, engine_rx, out_tx));
    if let Err(e) = engine_thread {
        tracing::error!("cannot start an engine thread: {e}");
        return;
    }

    let (sink, mut incoming) = ws.split();
    let mut out = Outbox {
        sink,
        session_id: session_id.clone(),
        params,
        garbage: faults.garbage,
        withhold_is_last: faults.withhold_is_last,
        no_word_times: faults.no_word_times,
        dialect,
        finals_text: String::new(),
    };
    let mut decoder = Decoder::new(params.encoding);
    let mut bytes_in: u64 = 0;
    let mut stalled = false;
    let mut end_received = false;
    let mut engine_done = false;
    let mut recorded = state.records.as_ref().map(|_| Vec::new());

    loop {
        tokio::select! {
            frame = incoming.next() => match frame {
                Some(Ok(Message::Binary(bytes))) => {
                    if end_received {
                        continue;
                    }
                    bytes_in += bytes.len() as u64;
                    if let Some(log) = recorded.as_mut() {
                        log.extend_from_slice(&bytes);
                    }
                    let mut samples = Vec::with_capacity(bytes.len());
                    decoder.decode_into(&bytes, &mut samples);
                    let _ = engine_tx.send(EngineInput::Audio(samples));
                    let once = faults
                        .once
                        .filter(|(limit, _)| bytes_in >= *limit && take_one(&state.once_left))
                        .map(|(_, fault)| (fault, bytes_in as f64 / params.bytes_per_second().max(1) as f64));
                    let chaotic = state.chaos.as_ref().and_then(|chaos| {
                        chaos.on_audio(bytes.len() as f64 / params.bytes_per_second().max(1) as f64)
                    });
                    {
                        if let Some((fault, received_secs)) = once.or(chaotic) {
                            let record = FaultRecord { fault, session_id: session_id.clone(), received_secs };
                            tracing::info!(%session_id, "chaos: {}", record.to_json());
                            let _ = state.fault_log.send(record);
                            if let ChaosFault::RefuseNext { status, retry_after } = fault
                                && let Ok(mut next) = state.refuse_next.lock()
                            {
                                *next = Some((status, retry_after));
                            }
                            match chaos_fault(fault, &mut out, &mut incoming).await {
                                ChaosOutcome::Continue => {}
                                ChaosOutcome::Closed => break,
                                // Like an abort: no close frame, the engine's pending words lost.
                                ChaosOutcome::Abort => return,
                            }
                        }
                    }
                    let drop_now = drop_at.is_some_and(|limit| bytes_in >= limit);
                    let error_now = faults.error_after_bytes.is_some_and(|limit| bytes_in >= limit);
                    if error_now {
                        // The error fault fires at a byte position: first deliver everything the
                        // engine makes of the audio before it, so its tests are deterministic.
                        // A drop does not wait: a real connection that breaks takes the words
                        // still being recognised with it.
                        sync_engine(&engine_tx, &mut out_rx, &mut out).await;
                    }
                    if drop_now {
                        tracing::info!(%session_id, bytes_in, "fault: dropping the connection");
                        // Dropping both halves closes the socket with no close frame.
                        return;
                    }
                    if error_now {
                        let frame = serde_json::json!({
                            "type": "error",
                            "message": "internal error (fault switch)",
                        });
                        let _ = out.sink.send(Message::text(frame.to_string())).await;
                        let _ = out.sink.send(Message::Close(Some(CloseFrame {
                            code: CloseCode::Error,
                            reason: "internal error".into(),
                        }))).await;
                        // Closing the socket with the client's audio still unread would reset
                        // the connection, and a reset can discard the error frame before the
                        // client reads it: finish the close handshake like a real server.
                        await_client_close(&mut incoming).await;
                        break;
                    }
                    if !stalled && stall_at.is_some_and(|limit| bytes_in >= limit) {
                        stalled = true;
                        tracing::info!(%session_id, "fault: stalling for {:?}", faults.stall);
                        tokio::time::sleep(faults.stall).await;
                    }
                }
                Some(Ok(Message::Text(text))) => match parse_client_control(&text) {
                    // The live endpoint documents `close_stream` only: `end` means nothing there.
                    ClientControl::End
                        if dialect == Dialect::Current && text.contains("\"end\"") =>
                    {
                        tracing::debug!(%session_id, "ignored `end` (this endpoint wants close_stream)");
                    }
                    ClientControl::End => {
                        end_received = true;
                        let _ = engine_tx.send(EngineInput::End);
                    }
                    ClientControl::Finalize => {
                        let _ = engine_tx.send(EngineInput::Finalize);
                    }
                    ClientControl::Unknown => {
                        tracing::debug!(%session_id, "ignored a text frame");
                    }
                },
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::debug!(%session_id, "read failed: {e}");
                    break;
                }
                Some(Ok(_)) => {}
            },
            output = out_rx.recv(), if !engine_done => {
                let Some(output) = output else {
                    // The engine finished; the connection stays until the client leaves.
                    engine_done = true;
                    continue;
                };
                match out.send(&output).await {
                    Sent::More => {}
                    Sent::Gone => break,
                    Sent::Last => {
                        // Give the client a moment to answer the close before the socket goes.
                        await_client_close(&mut incoming).await;
                        break;
                    }
                }
            }
        }
    }
    drop(engine_tx);
    tracing::info!(%session_id, bytes_in, end_received, "session ended");
    if let (Some(records), Some(audio)) = (&state.records, recorded) {
        let _ = records.send(SessionRecord {
            params,
            audio,
            end_received,
        });
    }
}

/// What a chaos fault left of the connection.
enum ChaosOutcome {
    Continue,
    /// Closed with a close frame (the handshake finished).
    Closed,
    /// Dropped without a word.
    Abort,
}

async fn chaos_fault<S>(fault: ChaosFault, out: &mut Outbox, incoming: &mut S) -> ChaosOutcome
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    match fault {
        ChaosFault::Abort | ChaosFault::RefuseNext { .. } => ChaosOutcome::Abort,
        ChaosFault::ErrorClose => {
            let frame = serde_json::json!({"type": "error", "message": "internal error (chaos)"});
            let _ = out.sink.send(Message::text(frame.to_string())).await;
            let _ = out
                .sink
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Error,
                    reason: "internal error".into(),
                })))
                .await;
            await_client_close(incoming).await;
            ChaosOutcome::Closed
        }
        ChaosFault::Stall(duration) => {
            tokio::time::sleep(duration).await;
            ChaosOutcome::Continue
        }
        ChaosFault::Garbage => {
            let _ = out
                .sink
                .send(Message::text("{\"transcript\": garbage]"))
                .await;
            let _ = out
                .sink
                .send(Message::Binary(Bytes::from_static(&[
                    0xde, 0xad, 0xbe, 0xef,
                ])))
                .await;
            let _ = out
                .sink
                .send(Message::text(r#"{"type":"mystery","value":42}"#))
                .await;
            ChaosOutcome::Continue
        }
        ChaosFault::HalfOpen => {
            // Hold the socket, read nothing, write nothing: the client's timers must notice.
            tokio::time::sleep(Duration::from_secs(90)).await;
            ChaosOutcome::Abort
        }
        ChaosFault::CleanClose => {
            let _ = out
                .sink
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                })))
                .await;
            await_client_close(incoming).await;
            ChaosOutcome::Closed
        }
    }
}

/// After our close frame: reads (and discards) what the client still sends until its close
/// arrives or the socket ends, for at most 2 s.
async fn await_client_close<S>(incoming: &mut S)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = incoming.next().await {}
    })
    .await;
}

/// Waits until the engine has processed everything sent so far, sending its outputs.
async fn sync_engine(
    engine_tx: &crossbeam_channel::Sender<EngineInput>,
    out_rx: &mut tokio::sync::mpsc::UnboundedReceiver<EngineOutput>,
    out: &mut Outbox,
) {
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
    if engine_tx.send(EngineInput::Sync(done_tx)).is_err() {
        return;
    }
    let waited = tokio::task::spawn_blocking(move || done_rx.recv_timeout(Duration::from_secs(30)));
    let _ = waited.await;
    while let Ok(output) = out_rx.try_recv() {
        if !matches!(out.send(&output).await, Sent::More) {
            return;
        }
    }
}
