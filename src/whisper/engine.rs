//! Whisper behind the local server's [`Engine`] interface.
//!
//! Each stream is resampled to 16 kHz and cut into utterances by the voice-activity detector.
//! While an utterance grows, it is re-recognised about every 0.5 s of new audio and an interim
//! carries the words two successive hypotheses agree on (so grey text grows and does not flicker),
//! and again as soon as quiet follows the voice; at a pause (or `finalize`, `end`, or 28 s of
//! speech) the utterance is decoded once more, from the last encoding when no voice came after
//! it, and sent as a final with word times and the language. Word times come from the alignment
//! heads' cross-attention and are approximate (about ±0.1 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::decode::{Encoded, Pass, Recognizer};
use super::language::LanguageTracker;
use super::mel::SAMPLE_RATE;
use super::settled::{common_prefix, is_noise, round_ms};
use super::vad::{FRAME, FRAMES_PER_SECOND, PauseWatch, Vad, VadConfig, VadEvent, level_db};
use crate::audio::resample::MonoResampler;
use crate::protocol::{StreamParams, WordTimestamp};
use crate::server::engine::{Engine, EngineOutput, EngineSession};

/// Audio kept before the detected onset, so soft first sounds are not cut.
const PRE_ROLL_SECS: f64 = 0.3;
/// Re-recognise the open utterance after this much new audio.
const INTERIM_EVERY_SECS: f64 = 0.5;
/// Quiet after the voice for which the utterance is decoded as its final would be, at once
/// (beam search): a pause has begun, and the final is then ready when the pause closes the
/// utterance or the client ends the stream. Shorter gaps are between words.
const PAUSE_SECS: f64 = 0.16;
/// Quiet that closes an utterance whose final is ready (decoded from [`PAUSE_SECS`] on), before
/// the detector's full pause (0.6 s). If the voice comes back, a new utterance begins.
const CLOSE_SECS: f64 = 0.3;
/// Quiet frames after the voice at which the utterance is decoded again without waiting for
/// [`INTERIM_EVERY_SECS`]: if it is the pause, that decoding's encoding is the final's.
const EAGER_QUIET_FRAMES: usize = 2;
/// Utterances are cut here even without a pause (the model takes at most 30 s).
const MAX_UTTERANCE_SECS: f64 = 28.0;

/// The Whisper engine; the model is loaded once and shared by every stream.
#[derive(Debug, Clone)]
pub struct WhisperEngine {
    recognizer: Arc<Recognizer>,
    vad: VadConfig,
}

impl WhisperEngine {
    pub fn new(recognizer: Arc<Recognizer>) -> Self {
        Self {
            recognizer,
            vad: VadConfig::default(),
        }
    }

    pub fn recognizer(&self) -> &Arc<Recognizer> {
        &self.recognizer
    }
}

impl Engine for WhisperEngine {
    fn name(&self) -> &'static str {
        "whisper"
    }

    fn check_params(&self, params: &StreamParams) -> Result<(), String> {
        let language = params.language;
        if language.is_multi() || self.recognizer.supports_language(language.code()) {
            return Ok(());
        }
        if self.recognizer.multilingual() {
            Err(format!(
                "language {} is not supported by this Whisper model",
                language.code()
            ))
        } else {
            Err(format!(
                "the offline model is English-only: language {} needs a multilingual offline model, or use language=en or multi",
                language.code()
            ))
        }
    }

    fn start(&self, params: &StreamParams) -> Box<dyn EngineSession> {
        Box::new(WhisperSession::new(
            Arc::clone(&self.recognizer),
            self.vad,
            params,
        ))
    }
}

struct WhisperSession {
    recognizer: Arc<Recognizer>,
    /// `None` for automatic detection.
    language: Option<String>,
    resampler: Option<MonoResampler>,
    resampled: Vec<f32>,
    vad: Vad,
    /// 16 kHz samples not yet cut into a whole VAD frame.
    pending: Vec<f32>,
    /// Audio from `audio_start` (a 16 kHz sample index on the stream's timeline) on: the open
    /// utterance, or the pre-roll while nobody speaks.
    audio: Vec<f32>,
    audio_start: u64,
    /// Samples consumed (16 kHz) so far.
    position: u64,
    in_utterance: bool,
    /// Length of the open utterance when it was last recognised for an interim.
    decoded_len: usize,
    /// Length of the open utterance at its last loud frame.
    voiced_len: usize,
    /// The last interim's whole recognition, the length it covered and whether it was decoded
    /// as a final is (beam search): when the utterance closes with nothing but quiet after that
    /// length, it is the final (the final's own pass would decode the same speech the same way:
    /// same decoding, language and context), and the final comes at once instead of a decoding
    /// later.
    speculative: Option<(usize, super::decode::Recognition, bool)>,
    /// The last decoding's encoder output: when no voice came after the audio it covers, the
    /// final decodes it again instead of running the encoder once more.
    encoded: Option<Encoded>,
    previous_hypothesis: Vec<String>,
    shown: Vec<String>,
    /// More audio is queued behind the current push: no interims until caught up.
    behind: bool,
    /// Raised by the server when the client asks for the text now: no interims, and the one in
    /// progress is given up (see [`EngineSession::set_hurry`]).
    hurry: Arc<AtomicBool>,
    /// Raised by the server's [`PauseWatch`] while the audio it has received ends in a pause:
    /// an interim in progress is given up, so the pause's final (below) starts without
    /// waiting for it.
    paused: Arc<AtomicBool>,
    /// Raised by the watch while the audio it has received ends in [`EAGER_QUIET_FRAMES`] of
    /// quiet after the voice: an interim still in its encoder on audio that ends in the voice is
    /// given up, and the audio with the voice's end encoded instead.
    quieting: Arc<AtomicBool>,
    /// The stream's sample rate, for the watch.
    input_rate: u32,
    /// Condition each utterance on the text of the one before (off: on espeak-ng speech it
    /// did not lower the error rate, 15.3 % vs 15.1 %, and it can carry a mistake forward).
    condition: bool,
    previous_tokens: Vec<u32>,
    /// With automatic language: what this dictation speaks, decided so that it holds.
    tracker: LanguageTracker,
}

impl WhisperSession {
    fn new(recognizer: Arc<Recognizer>, vad: VadConfig, params: &StreamParams) -> Self {
        let rate = params.sample_rate.hz();
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            MonoResampler::new_low_latency(rate, SAMPLE_RATE).ok()
        };
        let language = (!params.language.is_multi()).then(|| params.language.code().to_owned());
        Self {
            recognizer,
            language,
            resampler,
            resampled: Vec::new(),
            vad: Vad::new(vad),
            pending: Vec::with_capacity(FRAME),
            audio: Vec::new(),
            audio_start: 0,
            position: 0,
            in_utterance: false,
            decoded_len: 0,
            voiced_len: 0,
            speculative: None,
            encoded: None,
            previous_hypothesis: Vec::new(),
            shown: Vec::new(),
            behind: false,
            hurry: Arc::new(AtomicBool::new(false)),
            paused: Arc::new(AtomicBool::new(false)),
            quieting: Arc::new(AtomicBool::new(false)),
            input_rate: rate,
            condition: std::env::var("LIGHTNING_WHISPER_PREVIOUS").is_ok_and(|v| v == "1"),
            previous_tokens: Vec::new(),
            tracker: LanguageTracker::default(),
        }
    }

    fn secs(sample: u64) -> f64 {
        sample as f64 / f64::from(SAMPLE_RATE)
    }

    fn pre_roll() -> usize {
        (PRE_ROLL_SECS * f64::from(SAMPLE_RATE)) as usize
    }

    /// Runs 16 kHz audio through the detector; closes utterances at pauses.
    fn consume(&mut self, samples: &[f32], out: &mut Vec<EngineOutput>) {
        for &s in samples {
            self.pending.push(s);
            if self.pending.len() < FRAME {
                continue;
            }
            let db = level_db(&self.pending);
            self.audio.extend_from_slice(&self.pending);
            self.position += FRAME as u64;
            self.pending.clear();
            match self.vad.push(db) {
                Some(VadEvent::SpeechStart { .. }) => {
                    self.in_utterance = true;
                    self.decoded_len = 0;
                    self.speculative = None;
                    self.encoded = None;
                }
                Some(VadEvent::SpeechEnd { quiet_frames }) if self.in_utterance => {
                    // Keep 0.3 s of the pause; the rest is silence the model need not see.
                    let keep_quiet = (FRAMES_PER_SECOND * 0.3) as usize;
                    let drop = quiet_frames.saturating_sub(keep_quiet) * FRAME;
                    let end = self.audio.len().saturating_sub(drop);
                    self.close_utterance(end, out);
                }
                Some(VadEvent::SpeechEnd { .. }) | None => {}
            }
            if !self.in_utterance && self.vad.speaking() && self.vad.quiet_frames() == 0 {
                // The voice is back after an utterance closed early in its pause (below): a new
                // one starts here, with the quiet before it as its pre-roll.
                self.in_utterance = true;
                self.decoded_len = 0;
                self.speculative = None;
                self.encoded = None;
            }
            if self.in_utterance && self.vad.speaking() && self.vad.quiet_frames() == 0 {
                self.voiced_len = self.audio.len();
            }
            if self.in_utterance {
                let max = (MAX_UTTERANCE_SECS * f64::from(SAMPLE_RATE)) as usize;
                if self.audio.len() >= max {
                    self.close_utterance(self.audio.len(), out);
                    // Still speaking: the next utterance starts right here.
                    self.in_utterance = self.vad.speaking();
                }
            } else {
                // Only the pre-roll is kept while nobody speaks.
                let keep = Self::pre_roll();
                if self.audio.len() > 2 * keep {
                    let cut = self.audio.len() - keep;
                    self.audio.drain(..cut);
                    self.audio_start += cut as u64;
                }
            }
        }
    }

    /// Recognises `audio[..end]` as a final; what follows stays as the next pre-roll.
    fn close_utterance(&mut self, end: usize, out: &mut Vec<EngineOutput>) {
        let end = end.min(self.audio.len());
        let previous = if self.condition {
            self.previous_tokens.as_slice()
        } else {
            &[]
        };
        let utterance = &self.audio[..end];
        let recognizer = &self.recognizer;
        let tracker = &mut self.tracker;
        // The last decoding is the final if decoded as one (or greedily, as finals then are)
        // over all the voice, in a chosen language (with Automatic the final settles it) and
        // without the fallback (a final's alone); else its tokens are the final's draft.
        let usable = |covered: usize, as_final: bool| {
            self.language.is_some()
                && !recognizer.fallback
                && (as_final || recognizer.beams == 1)
                && covered >= self.voiced_len
        };
        let (ready, draft) = match self.speculative.take() {
            Some((covered, r, as_final)) if usable(covered, as_final) => (Some(r), Vec::new()),
            Some((_, r, _)) => (None, r.tokens),
            None => (None, Vec::new()),
        };
        // With only quiet after the last encoding, the final decodes it again.
        let voiced = self.voiced_len;
        let encoded = self.encoded.take().filter(|e| e.samples() >= voiced);
        let result = if let Some(r) = ready {
            tracing::debug!("final from the last interim: only quiet after it");
            Ok(r)
        } else {
            let mut second_opinion = |audio: &[f32]| {
                recognizer
                    .detect_language(audio, super::decode::Context::Padded(1.0))
                    .unwrap_or_default()
            };
            let language = self.language.as_deref();
            let decide =
                &mut |p: &[(String, f64)]| tracker.decide(&mut second_opinion, p, utterance);
            let pass = Pass::Final { draft: &draft };
            match encoded {
                Some(e) => recognizer.decode_segment(&e, language, decide, previous, pass),
                None => recognizer.recognize_with(utterance, language, decide, previous, pass),
            }
        };
        let had_interim = !self.shown.is_empty();
        match result {
            Ok(r) if !is_noise(&r) => {
                self.previous_tokens.clone_from(&r.tokens);
                let offset = Self::secs(self.audio_start);
                let words = r
                    .words
                    .iter()
                    .map(|w| WordTimestamp {
                        word: w.text.clone(),
                        start: round_ms(offset + w.start),
                        end: round_ms(offset + w.end),
                        confidence: Some((w.probability * 1000.0).round() / 1000.0),
                    })
                    .collect();
                out.push(EngineOutput {
                    text: r.text,
                    is_final: true,
                    is_last: false,
                    language: Some(r.language),
                    words,
                });
            }
            Ok(_) => {
                if had_interim {
                    // Take back the grey text: it was noise after all.
                    out.push(EngineOutput {
                        is_final: true,
                        language: Some(self.spoken_language()),
                        ..EngineOutput::default()
                    });
                }
            }
            Err(e) => {
                tracing::error!("offline recogniser: {e}");
                if had_interim {
                    out.push(EngineOutput {
                        text: self.shown.join(" "),
                        is_final: true,
                        language: Some(self.spoken_language()),
                        ..EngineOutput::default()
                    });
                }
            }
        }
        self.audio.drain(..end);
        self.audio_start += end as u64;
        self.in_utterance = false;
        self.decoded_len = 0;
        self.voiced_len = 0;
        self.speculative = None;
        self.encoded = None;
        self.previous_hypothesis.clear();
        self.shown.clear();
    }

    /// Re-recognises the open utterance when it has grown enough; sends the agreed words.
    fn maybe_interim(&mut self, out: &mut Vec<EngineOutput>) {
        if !self.in_utterance {
            return;
        }
        if self.close_in_pause(out) || self.behind || self.hurry.load(Ordering::Relaxed) {
            return;
        }
        // In a pause the utterance's final is decoded now, as the final would be (beam search,
        // or greedy with one beam): if no more speech comes it is the final, with no decoding
        // left to wait for when the pause closes the utterance. Once it is, nothing new is said
        // until the voice returns.
        let can_final = self.language.is_some() && !self.recognizer.fallback;
        let as_final =
            self.vad.quiet_frames() as f64 >= PAUSE_SECS * FRAMES_PER_SECOND && can_final;
        // The audio ends in quiet after the voice: if the pause goes on, its encoding is the
        // final's, so a pause does not give it up.
        let ends_quiet = self.vad.quiet_frames() > 0;
        let every = (INTERIM_EVERY_SECS * f64::from(SAMPLE_RATE)) as usize;
        if as_final {
            if self.pause_final().is_some() {
                return;
            }
        } else if self.audio.len() < self.decoded_len + every && !self.voice_ended() {
            return;
        }
        // What a decoding of this audio gives way to: the client hurrying, and, when the audio
        // ends in the voice, the quiet beginning (the voice's end is decoded instead).
        let hurry = Arc::clone(&self.hurry);
        let quieting = Arc::clone(&self.quieting);
        let mut gives_way: Vec<&AtomicBool> = vec![&hurry];
        if !ends_quiet {
            gives_way.push(&quieting);
        }
        let started = std::time::Instant::now();
        let Some(encoded) = self.encoding(as_final, &gives_way) else {
            return;
        };
        // A pause began while encoding audio that ends in quiet: decoded as the final now.
        let as_final = as_final || (can_final && ends_quiet && self.paused.load(Ordering::Relaxed));
        self.decoded_len = encoded.samples();
        let previous = if self.condition {
            self.previous_tokens.as_slice()
        } else {
            &[]
        };
        // Interims in the chosen language, else the utterance's own when it is confident, else
        // the dictation's so far.
        let tracker = &self.tracker;
        // The last interim's text is what this one most likely starts with.
        let draft = self
            .speculative
            .as_ref()
            .map_or(&[][..], |(_, r, _)| r.tokens.as_slice());
        // An interim also gives way to the pause (its final is wanted).
        gives_way.push(&self.paused);
        let pass = if as_final {
            Pass::Final { draft }
        } else {
            Pass::Interim {
                stop: &gives_way,
                draft,
            }
        };
        let result = self.recognizer.decode_segment(
            &encoded,
            self.language.as_deref(),
            &mut |p| tracker.interim_language(p),
            previous,
            pass,
        );
        self.encoded = Some(encoded);
        tracing::debug!(
            as_final,
            secs = Self::secs(self.decoded_len as u64),
            quiet_frames = self.vad.quiet_frames(),
            took = started.elapsed().as_secs_f64(),
            done = result.is_ok(),
            "utterance decoded"
        );
        let Ok(r) = result else {
            return;
        };
        if is_noise(&r) {
            return;
        }
        let hypothesis: Vec<String> = r.text.split_whitespace().map(str::to_owned).collect();
        self.speculative = Some((self.decoded_len, r, as_final));
        if self.close_in_pause(out) {
            return;
        }
        let agreed = common_prefix(&self.previous_hypothesis, &hypothesis);
        self.previous_hypothesis.clone_from(&hypothesis);
        if agreed > self.shown.len() {
            self.shown = hypothesis[..agreed].to_vec();
            out.push(EngineOutput {
                text: self.shown.join(" "),
                ..EngineOutput::default()
            });
        }
    }

    /// The open utterance encoded: the last encoding again for the pause's final when no voice
    /// came after it, else the audio so far, given up (`None`) when one of `stop` is raised.
    fn encoding(&mut self, as_final: bool, stop: &[&AtomicBool]) -> Option<Encoded> {
        let voiced = self.voiced_len;
        if let Some(e) = self
            .encoded
            .take()
            .filter(|e| as_final && e.samples() >= voiced)
        {
            return Some(e);
        }
        self.recognizer
            .encode_segment(&self.audio, stop)
            .inspect_err(|e| tracing::debug!(secs = Self::secs(self.audio.len() as u64), "{e}"))
            .ok()
    }

    /// The audio ends in quiet after voice the last decoding did not cover: decoded now, its
    /// encoding is the final's if the quiet turns out to be the pause.
    fn voice_ended(&self) -> bool {
        self.vad.quiet_frames() >= EAGER_QUIET_FRAMES && self.voiced_len > self.decoded_len
    }

    /// The pause's final, ready: the audio the last decoding covered, if decoded as a final.
    fn pause_final(&self) -> Option<usize> {
        self.speculative
            .as_ref()
            .filter(|(covered, _, as_final)| *as_final && *covered >= self.voiced_len)
            .map(|(covered, _, _)| *covered)
    }

    /// Closes the utterance with the final decoded in its pause, once it is ready and the pause
    /// has lasted [`CLOSE_SECS`]: the text turns final as soon as it can, not when the pause
    /// reaches the detector's full length. Returns whether it closed.
    fn close_in_pause(&mut self, out: &mut Vec<EngineOutput>) -> bool {
        let ready = self.pause_final();
        let long_enough = self.vad.quiet_frames() as f64 >= CLOSE_SECS * FRAMES_PER_SECOND;
        match ready {
            Some(covered) if long_enough && self.vad.speaking() => {
                tracing::debug!(
                    quiet_frames = self.vad.quiet_frames(),
                    "utterance closed in its pause"
                );
                self.close_utterance(covered, out);
                true
            }
            _ => false,
        }
    }

    /// The language chosen, or the one detected so far, else English.
    fn spoken_language(&self) -> String {
        self.language
            .as_deref()
            .or(self.tracker.current())
            .unwrap_or("en")
            .to_owned()
    }

    fn resample(&mut self, samples: &[f32]) -> Vec<f32> {
        match self.resampler.as_mut() {
            None => samples.to_vec(),
            Some(r) => {
                self.resampled.clear();
                if r.push(samples, &mut self.resampled).is_err() {
                    return Vec::new();
                }
                std::mem::take(&mut self.resampled)
            }
        }
    }

    fn close_open(&mut self, out: &mut Vec<EngineOutput>) {
        if self.in_utterance {
            let end = self.audio.len();
            self.close_utterance(end, out);
        }
    }
}

impl EngineSession for WhisperSession {
    fn push(&mut self, samples: &[f32]) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        let audio = self.resample(samples);
        self.consume(&audio, &mut out);
        self.maybe_interim(&mut out);
        out
    }

    fn set_behind(&mut self, behind: bool) {
        self.behind = behind;
    }

    fn set_hurry(&mut self, hurry: Arc<AtomicBool>) {
        self.hurry = hurry;
    }

    fn audio_watch(&mut self) -> Option<crate::server::engine::AudioWatch> {
        let pause_frames = (PAUSE_SECS * FRAMES_PER_SECOND).ceil() as usize;
        let marks = vec![
            (pause_frames, Arc::clone(&self.paused)),
            (EAGER_QUIET_FRAMES, Arc::clone(&self.quieting)),
        ];
        let mut watch = PauseWatch::new(self.vad.config(), self.input_rate, marks);
        Some(Box::new(move |samples| watch.push(samples)))
    }

    fn finalize(&mut self) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        self.close_open(&mut out);
        self.hurry.store(false, Ordering::Relaxed);
        out
    }

    fn finish(&mut self) -> Vec<EngineOutput> {
        tracing::debug!(in_utterance = self.in_utterance, "end of the stream");
        let mut out = Vec::new();
        let mut tail = Vec::new();
        if let Some(r) = self.resampler.as_mut() {
            let _ = r.finish(&mut tail);
        }
        self.consume(&tail, &mut out);
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.audio.extend_from_slice(&rest);
            self.position += rest.len() as u64;
        }
        self.close_open(&mut out);
        out
    }
}
