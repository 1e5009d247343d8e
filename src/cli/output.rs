//! What `transcribe` prints while a dictation runs: finals on stdout as they arrive (or raw
//! frames, or subtitles at the end), progress and warnings on stderr.

use std::io::Write;

use clap::ValueEnum;

use lightning_dictate::audio::ChunkFormat;
use lightning_dictate::audio::capture::CaptureEvent;
use lightning_dictate::audio::wav::Pace;
use lightning_dictate::dictation::{DictationEvent, SourceInfo};
use lightning_dictate::session::SessionEvent;
use lightning_dictate::transcript::Transcript;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Each final segment on its own line, as it arrives.
    Text,
    /// Every server message exactly as received, one per line.
    Jsonl,
    /// SubRip subtitles at the end.
    Srt,
    /// WebVTT subtitles at the end.
    Vtt,
}

/// Prints events as they come; returns the transcript for formats written at the end.
pub fn print_events(
    events: &crossbeam_channel::Receiver<DictationEvent>,
    format: OutputFormat,
    chunks: ChunkFormat,
    quiet: bool,
) -> Transcript {
    let mut transcript = Transcript::default();
    let stdout = std::io::stdout();
    let mut overflowed_secs = 0.0;
    let levels = tracing::enabled!(tracing::Level::DEBUG);
    for event in events {
        let event = match event {
            DictationEvent::Session(event) => event,
            DictationEvent::Capture(event) => {
                if !quiet {
                    print_capture_event(&event, levels);
                }
                continue;
            }
            DictationEvent::Started(SourceInfo::File { path, info, pace }) => {
                if !quiet {
                    eprintln!(
                        "streaming {} ({info}) as {} at {} Hz in {} ms chunks{}",
                        path.display(),
                        chunks.encoding,
                        chunks.sample_rate,
                        chunks.chunk_ms,
                        if pace == Pace::Realtime {
                            ", at real time"
                        } else {
                            ""
                        }
                    );
                }
                continue;
            }
            DictationEvent::Started(SourceInfo::Microphone { .. }) => continue,
            // The error is printed once, with the exit code.
            DictationEvent::Failed(_) => break,
        };
        transcript.apply(&event);
        let mut out = stdout.lock();
        match &event {
            SessionEvent::ServerText(raw) if format == OutputFormat::Jsonl => {
                // One message a line: a frame that itself holds newlines is re-encoded compactly.
                if raw.contains('\n') {
                    match serde_json::from_str::<serde_json::Value>(raw) {
                        Ok(v) => {
                            let _ = writeln!(out, "{v}");
                        }
                        Err(_) => {
                            let _ = writeln!(out, "{}", raw.replace('\n', " "));
                        }
                    }
                } else {
                    let _ = writeln!(out, "{raw}");
                }
            }
            SessionEvent::Final(segment)
                if format == OutputFormat::Text && !segment.text.trim().is_empty() =>
            {
                let _ = writeln!(out, "{}", segment.text.trim());
                if segment.unconfirmed {
                    eprintln!(
                        "note: the server never confirmed that last line; it is the last text it sent"
                    );
                }
            }
            SessionEvent::Reconnecting {
                attempt,
                delay,
                reason,
                kept_secs,
            } if !quiet => eprintln!(
                "reconnecting (attempt {attempt}, in {:.1} s, {kept_secs:.0} s of audio kept): {reason}",
                delay.as_secs_f64()
            ),
            SessionEvent::Gap { secs, .. } => {
                if format == OutputFormat::Text {
                    let _ = writeln!(out, "{}", lightning_dictate::transcript::gap_marker(*secs));
                }
                eprintln!(
                    "warning: {secs:.1} s of audio could not be transcribed (the connection stayed down longer than the audio kept)"
                );
            }
            SessionEvent::WentOffline { reason } => {
                eprintln!("{reason}: continuing with the recogniser on this computer");
            }
            SessionEvent::Reconnected {
                attempt,
                replayed_secs,
            } if !quiet => eprintln!(
                "reconnected after {attempt} attempt(s); {replayed_secs:.1} s of audio sent again"
            ),
            SessionEvent::ReplayOverflow { dropped_secs } => {
                // Once, not once per chunk: it only matters if the link drops (then a gap says so).
                if overflowed_secs == 0.0 && !quiet {
                    eprintln!(
                        "warning: the server is far behind: the oldest unconfirmed audio could not be sent again if the connection dropped"
                    );
                }
                overflowed_secs += dropped_secs;
            }
            SessionEvent::Connecting { url } if !quiet => eprintln!("connecting to {url}"),
            SessionEvent::Connected if !quiet => eprintln!("connected"),
            SessionEvent::Finishing if !quiet => {
                eprintln!("audio sent; waiting for the last transcript");
            }
            SessionEvent::ServerError { message } => eprintln!("server error: {message}"),
            SessionEvent::Notice(notice) if !quiet => eprintln!("note: {notice}"),
            SessionEvent::Ended(_) => break,
            _ => {}
        }
        let _ = out.flush();
    }
    let tail = match format {
        OutputFormat::Srt => transcript.to_srt(),
        OutputFormat::Vtt => transcript.to_vtt(),
        OutputFormat::Text | OutputFormat::Jsonl => String::new(),
    };
    if !tail.is_empty() {
        let mut out = stdout.lock();
        let _ = out.write_all(tail.as_bytes());
        let _ = out.flush();
    }
    transcript
}

fn print_capture_event(event: &CaptureEvent, levels: bool) {
    match event {
        CaptureEvent::Opened {
            device,
            rate,
            channels,
            format,
        } => eprintln!("microphone: {device} ({rate} Hz, {channels} ch, {format})"),
        CaptureEvent::Listening => eprintln!("listening"),
        CaptureEvent::Silent { secs } => eprintln!(
            "warning: only silence for {secs:.0} s: is the microphone muted, or the wrong device? (`lightning-dictate devices` lists them)"
        ),
        CaptureEvent::SoundBack => eprintln!("sound is back"),
        CaptureEvent::Overflow { dropped_frames } => {
            eprintln!(
                "warning: the computer fell behind the microphone: {dropped_frames} frames dropped"
            );
        }
        CaptureEvent::Backlog { dropped_chunks } => eprintln!(
            "warning: the network fell a minute behind: {dropped_chunks} chunks of audio dropped"
        ),
        CaptureEvent::Missed { secs } => eprintln!(
            "warning: {secs:.1} s of audio never came from the microphone (the app was stopped or the computer too busy): say it again"
        ),
        CaptureEvent::DeviceLost { .. } => {}
        CaptureEvent::Level {
            rms_dbfs,
            peak_dbfs,
        } => {
            if levels {
                eprintln!("level: rms {rms_dbfs:.1} dBFS, peak {peak_dbfs:.1} dBFS");
            }
        }
    }
}
