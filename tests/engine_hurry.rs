//! A slow engine's optional work gives way when the client asks for the text: the local server
//! raises the engine's hurry flag the moment `end` (or `finalize`) arrives, from its own thread,
//! while the engine is still busy with earlier audio (as Whisper is with an interim).
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
    BackgroundServer, Engine, EngineOutput, EngineSession, ServerConfig,
};
use tokio_tungstenite::tungstenite;

/// An engine whose every `push` works for up to 20 s (an interim on a slow machine) unless its
/// hurry flag goes up; its last final says which happened.
struct SlowEngine;

struct SlowSession {
    hurry: Arc<AtomicBool>,
    cut_short: bool,
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
            cut_short: false,
        })
    }
}

impl EngineSession for SlowSession {
    fn push(&mut self, _samples: &[f32]) -> Vec<EngineOutput> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if self.hurry.load(Ordering::Relaxed) {
                self.cut_short = true;
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
            text: if self.cut_short {
                "cut short"
            } else {
                "waited"
            }
            .to_owned(),
            is_final: true,
            ..EngineOutput::default()
        }]
    }

    fn set_hurry(&mut self, hurry: Arc<AtomicBool>) {
        self.hurry = hurry;
    }
}

#[test]
fn end_raises_the_hurry_flag_while_the_engine_is_busy() {
    let mut config = ServerConfig::loopback(0);
    config.engine = Arc::new(SlowEngine);
    let server = BackgroundServer::start(config).unwrap();
    let url = format!(
        "{}?language=en&encoding=linear16&sample_rate=16000",
        server.url()
    );
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    // 20 ms of silence keeps the engine busy; then `end` while it works.
    ws.send(tungstenite::Message::Binary(vec![0u8; 640].into()))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    ws.send(tungstenite::Message::Text(r#"{"type":"end"}"#.into()))
        .unwrap();
    let final_text = loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(text) => {
                let message: serde_json::Value = serde_json::from_str(&text).unwrap();
                if message["is_final"] == true {
                    break message["transcript"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
            }
            tungstenite::Message::Close(_) => panic!("closed before the final"),
            _ => {}
        }
    };
    assert_eq!(final_text, "cut short");
}
