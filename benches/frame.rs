//! Bench command for the window: CPU time of one frame (egui layout + tessellation) with a
//! one-hour transcript (500 segments, ~10,000 words) while an interim changes every frame, the
//! process's memory, and how many repaints an idle window asks for.
//!
//! `cargo bench --bench frame`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::time::{Duration, Instant};

use eframe::egui;
use lightning_dictate::channel::Sink;
use lightning_dictate::dictation::{DictationEvent, StartError};
use lightning_dictate::session::{FinalSegment, SessionEvent};
use lightning_dictate::ui::{Backend, DictationApp, Settings, StartRequest};

struct NoBackend;

impl Backend for NoBackend {
    fn start(&mut self, _: StartRequest, _: Sink<DictationEvent>) -> Result<(), StartError> {
        Ok(())
    }
    fn stop(&mut self) {}
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let words = lightning_dictate::tones::VOCABULARY;
    let mut app = DictationApp::new(Settings::default(), Box::new(NoBackend), None);
    for segment in 0..500 {
        let text: Vec<&str> = (0..20)
            .map(|i| words[(segment * 7 + i) % words.len()])
            .collect();
        app.transcript.apply(&SessionEvent::Final(FinalSegment {
            text: text.join(" "),
            language: Some("en".into()),
            words: Vec::new(),
            span: None,
            is_last: false,
            audio_sent_secs: segment as f64 * 7.2,
            unconfirmed: false,
        }));
    }
    let ctx = egui::Context::default();
    let input = |t: f64| egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(820.0, 520.0),
        )),
        time: Some(t),
        ..Default::default()
    };
    let mut times = Vec::new();
    for frame in 0..400 {
        // A new interim every frame: the worst case while dictating.
        app.transcript.apply(&SessionEvent::Interim {
            text: format!("and this is interim number {frame}"),
        });
        let started = Instant::now();
        let output = ctx.run_ui(input(f64::from(frame) / 60.0), |ui| app.window_ui(ui));
        let _ = ctx.tessellate(output.shapes, output.pixels_per_point);
        if frame >= 20 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "frame with a one-hour transcript (10,000 words, 500 segments), interim changing every frame: p50 {:.2} ms, p99 {:.2} ms; RSS {:.1} MiB",
        pct(0.5),
        pct(0.99),
        rss_mib()
    );
    // Idle: no events, no input. How long until egui wants the next frame?
    let mut idle_repaints = 0;
    for frame in 0..5 {
        let output = ctx.run_ui(input(100.0 + f64::from(frame)), |ui| app.window_ui(ui));
        let wants = output
            .viewport_output
            .values()
            .any(|v| v.repaint_delay < Duration::from_secs(1));
        idle_repaints += usize::from(wants);
    }
    println!("idle: {idle_repaints} of 5 idle frames asked for a repaint within 1 s");
}
