//! The deterministic test engine: recognises the tone words of [`crate::tones`].
//!
//! Voice activity comes from 10 ms frame energy with hysteresis; each voiced burst is classified
//! by its frequency; a pause of 300 ms closes the segment. Interims after every word, a final at
//! every pause, word times from the sample count: the transcript is a pure function of the audio.

use super::engine::{Engine, EngineOutput, EngineSession};
use crate::protocol::{StreamParams, WordTimestamp};
use crate::tones;

/// RMS above which a silent stretch becomes a word.
const ONSET_RMS: f32 = 0.03;
/// RMS below which a word ends.
const RELEASE_RMS: f32 = 0.015;
/// Bursts shorter than this are clicks, not words.
const MIN_WORD_SECS: f64 = 0.04;
/// Silence that closes a segment.
const PAUSE_SECS: f64 = 0.3;
/// Word for a burst that is not a vocabulary tone.
pub const UNKNOWN_WORD: &str = "[noise]";

/// The deterministic engine. Supports every language, encoding and rate.
#[derive(Debug, Default, Clone, Copy)]
pub struct ToneEngine;

impl Engine for ToneEngine {
    fn name(&self) -> &'static str {
        "tone"
    }

    fn check_params(&self, _params: &StreamParams) -> Result<(), String> {
        Ok(())
    }

    fn start(&self, params: &StreamParams) -> Box<dyn EngineSession> {
        Box::new(ToneSession::new(params))
    }
}

struct OpenWord {
    start: u64,
    samples: Vec<f32>,
}

struct ToneSession {
    rate: u32,
    language: String,
    frame_len: usize,
    frame: Vec<f32>,
    /// Index of the first sample of `frame` on the stream's timeline.
    position: u64,
    word: Option<OpenWord>,
    silent_samples: u64,
    segment: Vec<WordTimestamp>,
}

impl ToneSession {
    fn new(params: &StreamParams) -> Self {
        let rate = params.sample_rate.hz();
        let language = if params.language.is_multi() {
            // The tone language is "detected" as English.
            "en".to_owned()
        } else {
            params.language.code().to_owned()
        };
        let frame_len = (rate / 100) as usize;
        ToneSession {
            rate,
            language,
            frame_len,
            frame: Vec::with_capacity(frame_len),
            position: 0,
            word: None,
            silent_samples: 0,
            segment: Vec::new(),
        }
    }

    fn secs(&self, sample: u64) -> f64 {
        // Millisecond precision, as the service reports.
        (sample as f64 / f64::from(self.rate) * 1000.0).round() / 1000.0
    }

    fn process_frame(&mut self, out: &mut Vec<EngineOutput>) {
        let energy: f32 = self.frame.iter().map(|s| s * s).sum();
        let rms = (energy / self.frame.len().max(1) as f32).sqrt();
        let threshold = if self.word.is_some() {
            RELEASE_RMS
        } else {
            ONSET_RMS
        };
        if rms >= threshold {
            let word = self.word.get_or_insert_with(|| OpenWord {
                start: self.position,
                samples: Vec::new(),
            });
            word.samples.extend_from_slice(&self.frame);
            self.silent_samples = 0;
        } else {
            self.close_word(out);
            self.silent_samples += self.frame.len() as u64;
            if !self.segment.is_empty()
                && self.silent_samples as f64 >= PAUSE_SECS * f64::from(self.rate)
            {
                out.push(self.final_output());
            }
        }
        self.position += self.frame.len() as u64;
        self.frame.clear();
    }

    fn close_word(&mut self, out: &mut Vec<EngineOutput>) {
        let Some(word) = self.word.take() else {
            return;
        };
        let len = word.samples.len();
        if (len as f64) < MIN_WORD_SECS * f64::from(self.rate) {
            return;
        }
        // Classify on the steady middle: the edges carry the fades.
        let edge = (self.rate / 100) as usize;
        let middle = if len > 4 * edge {
            &word.samples[edge..len - edge]
        } else {
            &word.samples[..]
        };
        let text = tones::classify(middle, self.rate).unwrap_or(UNKNOWN_WORD);
        self.segment.push(WordTimestamp {
            word: text.to_owned(),
            start: self.secs(word.start),
            end: self.secs(word.start + len as u64),
            confidence: None,
        });
        out.push(EngineOutput {
            text: self.segment_text(),
            ..EngineOutput::default()
        });
    }

    fn segment_text(&self) -> String {
        self.segment
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn final_output(&mut self) -> EngineOutput {
        let text = self.segment_text();
        EngineOutput {
            text,
            is_final: true,
            is_last: false,
            language: Some(self.language.clone()),
            words: std::mem::take(&mut self.segment),
        }
    }
}

impl EngineSession for ToneSession {
    fn push(&mut self, samples: &[f32]) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.frame_len - self.frame.len()).min(rest.len());
            self.frame.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.frame.len() == self.frame_len {
                self.process_frame(&mut out);
            }
        }
        out
    }

    fn finalize(&mut self) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        self.close_word(&mut out);
        if !self.segment.is_empty() {
            out.push(self.final_output());
        }
        out
    }

    fn finish(&mut self) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        if !self.frame.is_empty() {
            self.process_frame(&mut out);
        }
        out.extend(self.finalize());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Encoding, Language, SampleRate};
    use crate::tones::{ToneTiming, synthesize};

    #[test]
    fn interims_then_finals_with_times() {
        let params = StreamParams {
            language: Language::MULTI,
            encoding: Encoding::Linear16,
            sample_rate: SampleRate::Hz16000,
            word_timestamps: true,
        };
        let (audio, placed) = synthesize(
            &[&["hello", "world"], &["one", "two", "three"]],
            16000,
            ToneTiming::default(),
        );
        let mut session = ToneEngine.start(&params);
        let mut outputs = Vec::new();
        for block in audio.chunks(333) {
            outputs.extend(session.push(block));
        }
        outputs.extend(session.finish());
        let finals: Vec<_> = outputs.iter().filter(|o| o.is_final).collect();
        assert_eq!(finals.len(), 2);
        assert_eq!(finals[0].text, "hello world");
        assert_eq!(finals[1].text, "one two three");
        assert_eq!(finals[0].language.as_deref(), Some("en"));
        let interims: Vec<_> = outputs
            .iter()
            .filter(|o| !o.is_final)
            .map(|o| o.text.as_str())
            .collect();
        assert_eq!(
            interims,
            ["hello", "hello world", "one", "one two", "one two three"]
        );
        let words: Vec<_> = finals.iter().flat_map(|f| f.words.iter()).collect();
        assert_eq!(words.len(), placed.len());
        for (w, p) in words.iter().zip(&placed) {
            assert!((w.start - p.start).abs() < 0.015, "{w:?} {p:?}");
            assert!((w.end - p.end).abs() < 0.015, "{w:?} {p:?}");
        }
    }
}
