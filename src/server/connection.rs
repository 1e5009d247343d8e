//! One connection: the protocol loop (audio in, transcripts out, control messages, faults) and
//! the engine thread behind it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::audio::encode::Decoder;
use crate::protocol::{ClientControl, Dialect, parse_client_control};

use super::SessionRecord;
use super::admission::{State, error_response, take_one};
use super::chaos::{ChaosFault, FaultRecord};
use super::engine::{EngineOutput, EngineSession};
use super::outbox::{Outbox, Sent};
use crate::protocol::websocket_config;

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

pub(super) async fn handle_connection(state: Arc<State>, stream: TcpStream, peer: SocketAddr) {
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
    let mut engine_session = state.config.engine.start(&params);
    // Raised when the client wants the text now: the engine's interim in progress gives way.
    let hurry = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    engine_session.set_hurry(std::sync::Arc::clone(&hurry));
    let mut watch = engine_session.audio_watch();
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
                    if let Some(watch) = watch.as_mut() {
                        watch(&samples);
                    }
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
                        hurry.store(true, std::sync::atomic::Ordering::Relaxed);
                        let _ = engine_tx.send(EngineInput::End);
                    }
                    ClientControl::Finalize => {
                        hurry.store(true, std::sync::atomic::Ordering::Relaxed);
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
