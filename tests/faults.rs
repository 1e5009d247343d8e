//! The client against the local server's fault switches, and the server's handshake rules.
//! Real sockets on loopback throughout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use lightning_dictate::audio::wav::WavFormat;
use lightning_dictate::server::{BackgroundServer, Faults, ServerConfig};
use lightning_dictate::session::{SessionError, SessionEvent};
use tokio_tungstenite::tungstenite;

fn wav(dir: &tempfile::TempDir) -> std::path::PathBuf {
    tone_wav(dir.path(), "s.wav", &SCRIPT, 16000, 1, WavFormat::Int(16)).0
}

#[test]
fn garbage_between_messages_is_ignored_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(Faults {
        garbage: true,
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav(&dir), timed_params(), 20, |_| {});
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(run.finals(), script_text());
    let notices: Vec<_> = run
        .events
        .iter()
        .filter(|e| matches!(e, SessionEvent::Notice(_)))
        .collect();
    // Reported once per kind (malformed JSON, binary frame), not once per frame.
    assert_eq!(notices.len(), 2, "{notices:?}");
}

#[test]
fn an_error_frame_then_close_keeps_the_finals_so_far() {
    let dir = tempfile::tempdir().unwrap();
    // After the second segment's final (3.56 s), before the third segment (3.96 s).
    let server = server_with(Faults {
        error_after_bytes: Some(bytes_at(3.9)),
        ..Faults::default()
    });
    let run = run_client(server.url(), &wav(&dir), timed_params(), 20, |c| {
        c.reconnect.enabled = false;
    });
    match &run.outcome {
        Err(SessionError::ServerReported { message }) => {
            assert!(message.contains("internal error"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, SessionEvent::ServerError { .. }))
    );
    assert_eq!(run.finals(), script_text()[..2]);
}

#[test]
fn a_dropped_connection_is_reported_and_keeps_the_finals_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(Faults {
        drop_after_bytes: Some(bytes_at(3.9)),
        drop_sessions: 1,
        ..Faults::default()
    });
    // Without reconnection (see tests/reconnect.rs for with).
    let run = run_client(server.url(), &wav(&dir), timed_params(), 20, |c| {
        c.reconnect.enabled = false;
    });
    assert!(
        matches!(run.outcome, Err(SessionError::Dropped { .. })),
        "{:?}",
        run.outcome
    );
    assert!(run.outcome.as_ref().unwrap_err().is_retryable());
    // A real drop takes the words still being recognised with it: what arrived before is kept,
    // in order, as the transcript's start (at most the two segments spoken before 3.9 s).
    let finals = run.finals();
    let received = run
        .events
        .iter()
        .filter(|e| matches!(e, SessionEvent::Final(f) if !f.text.is_empty()))
        .count();
    assert_eq!(finals.len(), received);
    assert!(finals.len() <= 2, "{finals:?}");
    assert_eq!(finals[..], script_text()[..finals.len()]);
    // The drop applied to one session only: the next one goes through.
    let run = run_client(server.url(), &wav(&dir), timed_params(), 20, |_| {});
    assert_eq!(run.finals(), script_text());
}

#[test]
fn refusals_map_to_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (status, expected) in [
        (
            429,
            SessionError::RateLimited {
                retry_after: Some(Duration::from_secs(1)),
            },
        ),
        (
            503,
            SessionError::Server {
                status: 503,
                detail: "refused by the fault switch".into(),
            },
        ),
    ] {
        let server = server_with(Faults {
            refuse_first: 1,
            refuse_status: status,
            retry_after_secs: (status == 429).then_some(1),
            ..Faults::default()
        });
        let run = run_client(server.url(), &wav(&dir), timed_params(), 20, |c| {
            c.reconnect.enabled = false;
        });
        assert_eq!(run.outcome, Err(expected));
        assert!(run.outcome.as_ref().unwrap_err().is_retryable());
    }
}

#[test]
fn a_missing_is_last_times_out_with_the_finals_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(Faults {
        withhold_is_last: true,
        ..Faults::default()
    });
    let started = Instant::now();
    let run = run_client(server.url(), &wav(&dir), timed_params(), 20, |c| {
        c.finish_timeout = Duration::from_secs(1);
    });
    assert_eq!(run.outcome, Err(SessionError::NoLastMessage { secs: 1 }));
    // Nothing was open when it timed out: no unconfirmed segment.
    assert!(run.transcript.segments.iter().all(|s| !s.unconfirmed));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(run.finals(), script_text());
}

#[test]
fn a_stall_delays_but_completes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(Faults {
        stall_after_bytes: Some(bytes_at(1.0)),
        stall: Duration::from_secs(2),
        ..Faults::default()
    });
    let started = Instant::now();
    let run = run_client(server.url(), &wav(&dir), timed_params(), 20, |_| {});
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(run.finals(), script_text());
}

/// Raw handshakes, as any client might send them.
fn handshake(url: &str, auth: Option<&str>) -> Result<u16, String> {
    use tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(auth) = auth {
        request
            .headers_mut()
            .insert("authorization", auth.parse().unwrap());
    }
    match tungstenite::connect(request) {
        Ok((mut ws, response)) => {
            let _ = ws.close(None);
            Ok(response.status().as_u16())
        }
        Err(tungstenite::Error::Http(response)) => Ok(response.status().as_u16()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn the_server_validates_path_parameters_and_key_before_the_upgrade() {
    let mut config = ServerConfig::loopback(0);
    config.api_key = lightning_dictate::protocol::ApiKey::new("k1");
    let server = BackgroundServer::start(config).unwrap();
    let base = server.url().to_owned();
    let root = base
        .trim_end_matches("/api/v1/lightning/get_text")
        .to_owned();
    let ok = Some("Bearer k1");
    assert_eq!(handshake(&format!("{base}?language=en"), ok), Ok(101));
    // Later endpoints, unknown parameters, defaults for missing ones.
    assert_eq!(
        handshake(&format!("{root}/waves/v1/pulse/get_text?x=1"), ok),
        Ok(101)
    );
    assert_eq!(
        handshake(&format!("{root}/waves/v1/lightning/get_text"), ok),
        Ok(101)
    );
    assert_eq!(handshake(&format!("{root}/nope"), ok), Ok(404));
    assert_eq!(handshake(&format!("{base}?sample_rate=11025"), ok), Ok(400));
    assert_eq!(handshake(&format!("{base}?encoding=opus"), ok), Ok(400));
    assert_eq!(handshake(&format!("{base}?language=xx"), ok), Ok(400));
    assert_eq!(handshake(&format!("{base}?word_timestamps=1"), ok), Ok(400));
    assert_eq!(handshake(&base, None), Ok(401));
    assert_eq!(handshake(&base, Some("Bearer k2")), Ok(401));
    assert_eq!(handshake(&base, Some("k1")), Ok(401));
    assert_eq!(handshake(&base, Some("bearer  k1 ")), Ok(101));
}

#[test]
fn finalize_closes_a_segment_without_ending_the_session() {
    use futures_util::{SinkExt, StreamExt};
    let server = BackgroundServer::start(ServerConfig::loopback(0)).unwrap();
    let url = format!("{}?word_timestamps=true&language=multi", server.url());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        // "hello" with no pause after it: only finalize can close the segment.
        let (samples, _) = lightning_dictate::tones::synthesize(
            &[&["hello"]],
            16000,
            lightning_dictate::tones::ToneTiming {
                tail: 0.1,
                ..Default::default()
            },
        );
        let mut bytes = Vec::new();
        lightning_dictate::audio::encode::encode_into(
            lightning_dictate::protocol::Encoding::Linear16,
            &samples,
            &mut bytes,
        );
        ws.send(tungstenite::Message::Binary(bytes.into()))
            .await
            .unwrap();
        ws.send(tungstenite::Message::text(r#"{"type":"finalize"}"#))
            .await
            .unwrap();
        let mut texts = Vec::new();
        while let Some(Ok(msg)) = ws.next().await {
            if let tungstenite::Message::Text(t) = msg {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                let done = v["is_final"] == true;
                texts.push(v);
                if done {
                    break;
                }
            }
        }
        let last = texts.last().unwrap();
        assert_eq!(last["transcript"], "hello");
        assert_eq!(last["is_last"], false);
        assert_eq!(last["language"], "en");
        assert_eq!(last["word_timestamps"][0]["word"], "hello");
        // The session is still open: end now gives an empty terminal message.
        ws.send(tungstenite::Message::text(r#"{"type":"end"}"#))
            .await
            .unwrap();
        let mut terminal = None;
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                tungstenite::Message::Text(t) => {
                    terminal = Some(serde_json::from_str::<serde_json::Value>(&t).unwrap());
                }
                tungstenite::Message::Close(frame) => {
                    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                    break;
                }
                _ => {}
            }
        }
        let terminal = terminal.unwrap();
        assert_eq!(terminal["is_last"], true);
        assert_eq!(terminal["transcript"], "");
        assert_eq!(terminal["full_transcript"], "hello");
    });
}
