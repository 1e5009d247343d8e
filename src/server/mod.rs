//! The local Lightning server: the same protocol as the service, on loopback, in front of an
//! [`Engine`]. Validates path, parameters and key before the upgrade (404/400/401), decodes every
//! encoding at every rate, and has fault switches so the client's failure handling can be tested.

mod admission;
pub mod chaos;
mod connection;
pub mod engine;
mod outbox;
pub mod tone_engine;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use tokio::net::TcpListener;

use admission::State;
pub use chaos::{Chaos, ChaosFault, FaultRecord};
use connection::handle_connection;
pub use engine::{AudioWatch, Engine, EngineOutput, EngineSession};
pub use tone_engine::ToneEngine;

use crate::protocol::{ApiKey, KNOWN_PATHS, StreamParams};

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
            .finish_non_exhaustive()
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
