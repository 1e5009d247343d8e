//! A slow engine's optional work gives way when the client asks for the text: the local server
//! raises the engine's hurry flag the moment `end` (or `finalize`) arrives, from its own thread,
//! while the engine is still busy with earlier audio (as Whisper is with an interim); and the
//! server runs the engine's audio watch on audio as it arrives, while the engine is still busy
//! (Whisper's watch sees a pause begin there and gives up its interim).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lightning_dictate::protocol::StreamParams;

use lightning_dictate::server::{
    AudioWatch, BackgroundServer, Engine, EngineOutput, EngineSession, ServerConfig,
};
use tokio_tungstenite::tungstenite;

/// An engine whose every `push` works for up to 20 s (an interim on a slow machine) unless its
/// hurry flag goes up (or, `watching`, its audio watch sees a loud sample); its last final says
/// which happened.
struct SlowEngine {
    watching: bool,
}

struct SlowSession {
    hurry: Arc<AtomicBool>,
    /// Raised by the audio watch.
    watched: Arc<AtomicBool>,
    released_by: &'static str,
    watching: bool,
}

impl Engine for SlowEngine {
    fn name(&self) -> &'static str {
        "slow"
    }

    fn check_params(&self, _params: &StreamParams) -> Result<(), String> {
        Ok(())
    }

    fn start(&self, _params: &StreamParams) -> Box<dyn EngineSession> {
        Box::new(SlowSession {
            hurry: Arc::new(AtomicBool::new(false)),
            watched: Arc::new(AtomicBool::new(false)),
            released_by: "waited",
            watching: self.watching,
        })
    }
}

impl EngineSession for SlowSession {
    fn push(&mut self, _samples: &[f32]) -> Vec<EngineOutput> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if self.watched.load(Ordering::Relaxed) {
                self.released_by = "the watch";
                break;
            }
            if self.hurry.load(Ordering::Relaxed) {
                self.released_by = "cut short";
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Vec::new()
    }

    fn finalize(&mut self) -> Vec<EngineOutput> {
        Vec::new()
    }

    fn finish(&mut self) -> Vec<EngineOutput> {
        vec![EngineOutput {
            text: self.released_by.to_owned(),
            is_final: true,
            ..EngineOutput::default()
        }]
    }

    fn set_hurry(&mut self, hurry: Arc<AtomicBool>) {
        self.hurry = hurry;
    }

    fn audio_watch(&mut self) -> Option<AudioWatch> {
        let watched = Arc::clone(&self.watched);
        self.watching.then(|| {
            Box::new(move |samples: &[f32]| {
                if samples.iter().any(|s| s.abs() > 0.5) {
                    watched.store(true, Ordering::Relaxed);
                }
            }) as AudioWatch
        })
    }
}

/// Sends `frames` to an engine `watching` or not, then `end` after `end_after`; the final's text.
fn final_after(watching: bool, frames: &[Vec<u8>], end_after: Duration) -> String {
    let mut config = ServerConfig::loopback(0);
    config.engine = Arc::new(SlowEngine { watching });
    let server = BackgroundServer::start(config).unwrap();
    let url = format!(
        "{}?language=en&encoding=linear16&sample_rate=16000",
        server.url()
    );
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    for frame in frames {
        ws.send(tungstenite::Message::Binary(frame.clone().into()))
            .unwrap();
    }
    std::thread::sleep(end_after);
    ws.send(tungstenite::Message::Text(r#"{"type":"end"}"#.into()))
        .unwrap();
    let started = Instant::now();
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(text) => {
                let message: serde_json::Value = serde_json::from_str(&text).unwrap();
                if message["is_final"] == true {
                    let text = message["transcript"].as_str().unwrap_or_default();
                    assert!(
                        started.elapsed() < Duration::from_secs(5),
                        "the final waited"
                    );
                    return text.to_owned();
                }
            }
            tungstenite::Message::Close(_) => panic!("closed before the final"),
            _ => {}
        }
    }
}

#[test]
fn the_audio_watch_sees_audio_that_waits_behind_a_busy_engine() {
    // 20 ms of silence keeps the engine busy; 20 ms of loud audio queues behind it, and only
    // the watch, on the server's own thread, can have seen it (no `end` for 3 s).
    let silence = vec![0u8; 640];
    let loud: Vec<u8> = std::iter::repeat_n(20_000i16.to_le_bytes(), 320)
        .flatten()
        .collect();
    let with_watch = final_after(
        true,
        &[silence.clone(), loud.clone()],
        Duration::from_secs(3),
    );
    assert_eq!(with_watch, "the watch");
    // Without a watch the same stream waits for `end`.
    let without = final_after(false, &[silence, loud], Duration::from_secs(1));
    assert_eq!(without, "cut short");
}

#[test]
fn end_raises_the_hurry_flag_while_the_engine_is_busy() {
    // 20 ms of silence keeps the engine busy; then `end` while it works.
    let final_text = final_after(false, &[vec![0u8; 640]], Duration::from_millis(200));
    assert_eq!(final_text, "cut short");
}
