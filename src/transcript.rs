//! The transcript: final segments plus the open interim text, built from session events, and its
//! exports (plain text, SRT, WebVTT, JSON).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::protocol::WordTimestamp;
use crate::session::{FinalSegment, SessionEvent};

/// A closed segment on the dictation's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub words: Vec<WordTimestamp>,
    /// Seconds from the start of the dictation.
    pub start: f64,
    pub end: f64,
    /// Whether the times come from word timestamps (otherwise they are estimates).
    pub timed_by_words: bool,
    /// The server never confirmed this segment (the last interim, kept when `is_last` never came).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
    /// Not speech: a marker where audio could not be transcribed (its text says how much).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gap: bool,
}

/// The text shown where audio could not be transcribed.
pub fn gap_marker(secs: f64) -> String {
    if secs < 1.0 {
        "[… under 1 s not transcribed …]".to_owned()
    } else {
        format!("[… {} s not transcribed …]", secs.round())
    }
}

/// Everything recognised so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub segments: Vec<Segment>,
    /// The open segment's text (grey in the window); replaced by each interim, cleared by a final.
    #[serde(default)]
    pub interim: String,
}

impl Transcript {
    /// Applies one session event. Returns whether the visible text changed.
    pub fn apply(&mut self, event: &SessionEvent) -> bool {
        match event {
            SessionEvent::Interim { text } => {
                let changed = self.interim != *text;
                self.interim.clone_from(text);
                changed
            }
            SessionEvent::Final(segment) => {
                self.push_final(segment);
                true
            }
            SessionEvent::Gap { start_secs, secs } => {
                self.segments.push(Segment {
                    text: gap_marker(*secs),
                    language: None,
                    words: Vec::new(),
                    start: *start_secs,
                    end: start_secs + secs,
                    timed_by_words: false,
                    unconfirmed: false,
                    gap: true,
                });
                true
            }
            _ => false,
        }
    }

    fn push_final(&mut self, segment: &FinalSegment) {
        self.interim.clear();
        let text = segment.text.trim();
        if text.is_empty() {
            return;
        }
        let previous_end = self.segments.last().map_or(0.0, |s| s.end);
        let words: Vec<WordTimestamp> = segment
            .words
            .iter()
            .filter(|w| w.start >= 0.0 && w.end >= w.start)
            .cloned()
            .collect();
        let (start, end, timed_by_words) = match (words.first(), words.last(), segment.span) {
            (Some(first), Some(last), _) => (first.start, last.end, true),
            // Words not shown, but their span is known.
            (_, _, Some((start, end))) => (start, end, true),
            // No word times: the segment follows the previous one and ends no later than the audio
            // sent when it arrived.
            _ => (
                previous_end,
                segment.audio_sent_secs.max(previous_end),
                false,
            ),
        };
        self.segments.push(Segment {
            text: text.to_owned(),
            language: segment.language.clone(),
            words,
            start,
            end,
            timed_by_words,
            unconfirmed: segment.unconfirmed,
            gap: false,
        });
    }

    /// Whether some audio could not be transcribed (the transcript holds a gap marker).
    pub fn has_gap(&self) -> bool {
        self.segments.iter().any(|s| s.gap)
    }

    /// The final text: segments trimmed and joined with single spaces.
    pub fn final_text(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// SubRip subtitles, one cue per segment.
    pub fn to_srt(&self) -> String {
        let mut out = String::new();
        for (i, cue) in self.cues().iter().enumerate() {
            let _ = write!(
                out,
                "{}\n{} --> {}\n{}\n\n",
                i + 1,
                timestamp(cue.0, ','),
                timestamp(cue.1, ','),
                cue.2
            );
        }
        out
    }

    /// WebVTT subtitles, one cue per segment.
    pub fn to_vtt(&self) -> String {
        let mut out = String::from("WEBVTT\n\n");
        for cue in self.cues() {
            let _ = write!(
                out,
                "{} --> {}\n{}\n\n",
                timestamp(cue.0, '.'),
                timestamp(cue.1, '.'),
                cue.2
            );
        }
        out
    }

    /// JSON with segments and word times.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.segments).unwrap_or_else(|_| "[]".to_owned())
    }

    /// (start, end, text) with every cue at least 0.5 s long and none overlapping the next.
    fn cues(&self) -> Vec<(f64, f64, &str)> {
        let mut cues: Vec<(f64, f64, &str)> = self
            .segments
            .iter()
            .map(|s| (s.start, s.end.max(s.start + 0.5), s.text.as_str()))
            .collect();
        for i in 1..cues.len() {
            let next_start = cues[i].0;
            let prev = &mut cues[i - 1];
            if prev.1 > next_start && next_start > prev.0 {
                prev.1 = next_start;
            }
        }
        cues
    }
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (VTT).
fn timestamp(secs: f64, separator: char) -> String {
    let millis = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{}{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        separator,
        millis % 1000
    )
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "the values compared are exact binary fractions"
)]
mod tests {
    use super::*;

    fn word(w: &str, start: f64, end: f64) -> WordTimestamp {
        WordTimestamp {
            word: w.into(),
            start,
            end,
            confidence: None,
        }
    }

    fn final_event(text: &str, words: Vec<WordTimestamp>, sent: f64) -> SessionEvent {
        SessionEvent::Final(FinalSegment {
            text: text.into(),
            language: Some("en".into()),
            words,
            span: None,
            is_last: false,
            audio_sent_secs: sent,
            unconfirmed: false,
        })
    }

    #[test]
    fn interim_is_replaced_then_cleared_by_the_final() {
        let mut t = Transcript::default();
        assert!(t.apply(&SessionEvent::Interim { text: "hel".into() }));
        assert!(t.apply(&SessionEvent::Interim {
            text: "hello".into()
        }));
        assert_eq!(t.interim, "hello");
        t.apply(&final_event(" hello world ", vec![], 2.0));
        assert_eq!(t.interim, "");
        t.apply(&final_event("", vec![], 2.5));
        t.apply(&final_event("again", vec![], 4.0));
        assert_eq!(t.final_text(), "hello world again");
        assert_eq!(t.segments[1].start, 2.0);
    }

    #[test]
    fn srt_and_vtt_from_word_times() {
        let mut t = Transcript::default();
        t.apply(&final_event(
            "hello world",
            vec![word("hello", 0.2, 0.4), word("world", 0.48, 0.68)],
            9.0,
        ));
        t.apply(&final_event("one", vec![word("one", 3661.5, 3661.7)], 9.0));
        assert_eq!(
            t.to_srt(),
            "1\n00:00:00,200 --> 00:00:00,700\nhello world\n\n2\n01:01:01,500 --> 01:01:02,000\none\n\n"
        );
        assert!(
            t.to_vtt()
                .starts_with("WEBVTT\n\n00:00:00.200 --> 00:00:00.700\nhello world\n")
        );
        assert!(t.to_json().contains("\"hello\""));
    }
}
