//! Recognising one segment of speech: log-mel, encoder on just enough frames, greedy decoding with
//! Whisper's token suppression, language detection for `multi`, and word times from the
//! alignment heads' cross-attention (dynamic time warping, as the reference does).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;

use super::ModelError;
use super::ct2::{Ct2Model, model_files};
use super::fallback::{self, Attempt};
use super::greedy::{Decoded, Steps};
use super::mel::{HOP, LogMel, SAMPLE_RATE};
use super::model::{Whisper, log_softmax};
use super::repeat::doubled;
use super::tokenizer::Tokenizer;

/// Encoder positions per second of audio (a position covers 2 mel frames = 20 ms).
pub const POSITIONS_PER_SECOND: f64 = 50.0;
/// The longest segment the model takes at once.
pub const MAX_SECONDS: f64 = 30.0;

#[derive(Deserialize, Default)]
struct ModelConfig {
    #[serde(default)]
    alignment_heads: Vec<(usize, usize)>,
    #[serde(default)]
    suppress_ids: Vec<u32>,
    #[serde(default)]
    suppress_ids_begin: Vec<u32>,
}

/// How much of the 30 s window the encoder runs on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Context {
    /// Always 30 s, padded (the reference behaviour; slow for short segments).
    Full,
    /// The audio plus this much silence, in seconds (rounded up to whole positions).
    Padded(f64),
}

/// A word of a recognised segment, times in seconds from the segment's first sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// Mean probability of its tokens.
    pub probability: f64,
}

/// The result for one segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recognition {
    pub text: String,
    /// The text tokens (to condition the next utterance on).
    pub tokens: Vec<u32>,
    pub words: Vec<Word>,
    pub language: String,
    /// The model's probability that the segment holds no speech.
    pub no_speech: f64,
    pub avg_logprob: f64,
}

/// What a recognition is for. `draft` is the text tokens it is expected to start with (the last
/// interim's, of the same utterance with less audio): they are checked in one decoder pass, and
/// the text is what step-by-step decoding gives, sooner where the draft holds. Empty for none.
#[derive(Debug, Clone, Copy)]
pub enum Pass<'a> {
    /// A final: the temperature fallback applies when it is on.
    Final { draft: &'a [u32] },
    /// An interim: greedy only, and given up (an error) as soon as one of `stop` is raised
    /// (checked between the encoder's layers and the decoder's steps): the final that is wanted
    /// now must not wait for it.
    Interim {
        stop: &'a [&'a AtomicBool],
        draft: &'a [u32],
    },
}

/// Picks a segment's language from each language's probability, most likely first.
pub type DecideLanguage<'a> = dyn FnMut(&[(String, f64)]) -> String + 'a;

/// A loaded model with everything needed to recognise audio; share it with `Arc`.
pub struct Recognizer {
    pub(super) model: Whisper,
    pub(super) tokenizer: Tokenizer,
    mel: LogMel,
    pub(super) alignment_heads: Vec<(usize, usize)>,
    /// Token ids never produced (config's suppress list, every special but end-of-text).
    pub(super) suppressed: Vec<u32>,
    pub(super) suppressed_at_begin: Vec<u32>,
    multilingual: bool,
    pub context: Context,
    /// Retry doubtful segments at higher temperatures (finals only; interims stay greedy).
    /// `LIGHTNING_WHISPER_FALLBACK=1` turns it on.
    pub fallback: bool,
    /// Hypotheses a final's first pass keeps side by side (1: greedy). Five by default: on our
    /// clips it cut base's word error rate from 9.0 to 5.2 % (README, "The offline
    /// recogniser"). `LIGHTNING_WHISPER_BEAM=N` sets it.
    pub beams: usize,
    /// With beams, greedy decoding goes on while each token it picks has at least this
    /// probability, and beam search takes over at the first that has less (1: beam search
    /// from the start). 0.5 by default: on the bench's clips base's text is the same as beam
    /// search's from the start (5.19 %), tiny.en's a little better (9.9 -> 9.4 %), and a final
    /// decoded in a pause checks the last interim's text in one pass up to that token (README,
    /// "The offline recogniser"). `LIGHTNING_WHISPER_DOUBT=P` sets it.
    pub doubt: f32,
}

impl std::fmt::Debug for Recognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognizer")
            .field("dims", &self.model.dims)
            .field("multilingual", &self.multilingual)
            .finish_non_exhaustive()
    }
}

impl Recognizer {
    /// Loads a faster-whisper model directory (`model.bin`, `config.json`, `tokenizer.json`).
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let [bin, config, tokenizer] = model_files(dir);
        for file in [&bin, &config, &tokenizer] {
            if !file.is_file() {
                return Err(ModelError::Missing { path: file.clone() });
            }
        }
        let config_text = std::fs::read_to_string(&config).map_err(|source| ModelError::Io {
            path: config.clone(),
            source,
        })?;
        let config: ModelConfig =
            serde_json::from_str(&config_text).map_err(|e| ModelError::Corrupt {
                path: config.clone(),
                detail: e.to_string(),
            })?;
        let tokenizer = Tokenizer::load(&tokenizer)?;
        let ct2 = Ct2Model::read(&bin)?;
        let model = Whisper::from_ct2(ct2).map_err(|detail| ModelError::Corrupt {
            path: bin.clone(),
            detail,
        })?;
        let dims = model.dims;
        let multilingual = dims.n_vocab >= 51865;
        let s = &tokenizer.specials;
        let mut suppressed = config.suppress_ids.clone();
        suppressed.extend(s.timestamp_begin..dims.n_vocab as u32);
        suppressed
            .extend((0..dims.n_vocab as u32).filter(|&id| tokenizer.is_special(id) && id != s.eot));
        suppressed.sort_unstable();
        suppressed.dedup();
        suppressed.retain(|&id| (id as usize) < dims.n_vocab && id != s.eot);
        let alignment_heads = if config.alignment_heads.is_empty() {
            // Without a list, the reference uses every head of the second half of the layers.
            (dims.decoder_layers / 2..dims.decoder_layers)
                .flat_map(|l| (0..dims.n_heads).map(move |h| (l, h)))
                .collect()
        } else {
            config.alignment_heads.clone()
        };
        Ok(Self {
            mel: LogMel::new(dims.n_mels),
            model,
            tokenizer,
            alignment_heads,
            suppressed,
            suppressed_at_begin: config.suppress_ids_begin,
            multilingual,
            context: context_from_env().unwrap_or(Context::Padded(1.0)),
            // Off by default: no measured gain on our clips, and it costs time when it retries
            // (README, "The offline recogniser").
            fallback: std::env::var("LIGHTNING_WHISPER_FALLBACK").is_ok_and(|v| v == "1"),
            beams: std::env::var("LIGHTNING_WHISPER_BEAM")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n: &usize| (1..=16).contains(&n))
                .unwrap_or(5),
            doubt: std::env::var("LIGHTNING_WHISPER_DOUBT")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|p: &f32| (0.0..=1.0).contains(p))
                .unwrap_or(0.5),
        })
    }

    pub fn multilingual(&self) -> bool {
        self.multilingual
    }

    /// Languages the model can transcribe (just `en` for English-only models).
    pub fn supports_language(&self, code: &str) -> bool {
        if self.multilingual {
            self.tokenizer.language_token(code).is_some()
        } else {
            code == "en"
        }
    }

    /// Recognises 16 kHz mono audio (at most 30 s). `language`: a code, or `None` to detect.
    /// `previous`: the text tokens of the utterance before, to condition on (as the reference
    /// does by default); empty for none.
    pub fn recognize(
        &self,
        samples: &[f32],
        language: Option<&str>,
        previous: &[u32],
    ) -> Result<Recognition, ModelError> {
        let mut most_likely = super::language::LanguageTracker::most_likely;
        self.recognize_with(
            samples,
            language,
            &mut most_likely,
            previous,
            Pass::Final { draft: &[] },
        )
    }

    /// Recognises `samples` in `language`, or (when `None`) in the language `decide` picks from
    /// the model's language probabilities for them (computed in the same pass; not called for an
    /// English-only model). An interim pass is greedy only (no temperature fallback): it is
    /// redone half a second later anyway.
    pub fn recognize_with(
        &self,
        samples: &[f32],
        language: Option<&str>,
        decide: &mut DecideLanguage<'_>,
        previous: &[u32],
        pass: Pass<'_>,
    ) -> Result<Recognition, ModelError> {
        let stop = match pass {
            Pass::Final { .. } => &[][..],
            Pass::Interim { stop, .. } => stop,
        };
        let encoded = self.encode_segment(samples, stop)?;
        self.decode_segment(&encoded, language, decide, previous, pass)
    }

    /// Runs the encoder on `samples` (at most 30 s), given up (an error) as soon as one of
    /// `stop` is raised. The result can be decoded more than once: an interim's encoding is
    /// the final's when no voice came after it.
    pub fn encode_segment(
        &self,
        samples: &[f32],
        stop: &[&AtomicBool],
    ) -> Result<Encoded, ModelError> {
        if stopped(stop) {
            return Err(ModelError::Inference(STOPPED.to_owned()));
        }
        let max_samples = (MAX_SECONDS * f64::from(SAMPLE_RATE)) as usize;
        let samples = &samples[..samples.len().min(max_samples)];
        let started = std::time::Instant::now();
        let (audio, audio_positions, positions) = self
            .encode(samples, self.context, stop)
            .map_err(ModelError::Inference)?;
        Ok(Encoded {
            audio,
            audio_positions,
            positions,
            samples: samples.len(),
            secs: started.elapsed().as_secs_f64(),
        })
    }

    /// Decodes an encoded segment for `pass` (see [`Recognizer::recognize_with`]).
    pub fn decode_segment(
        &self,
        encoded: &Encoded,
        language: Option<&str>,
        decide: &mut DecideLanguage<'_>,
        previous: &[u32],
        pass: Pass<'_>,
    ) -> Result<Recognition, ModelError> {
        let (fallback, beams, stop, draft) = match pass {
            Pass::Final { draft } => (self.fallback, self.beams, &[][..], draft),
            Pass::Interim { stop, draft } => (false, 1, stop, draft),
        };
        self.decode_inner(
            encoded, language, decide, previous, fallback, beams, stop, draft,
        )
        .map_err(ModelError::Inference)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one segment's recognition: its audio, language, context and decoding choices"
    )]
    fn decode_inner(
        &self,
        encoded: &Encoded,
        language: Option<&str>,
        decide: &mut DecideLanguage<'_>,
        previous: &[u32],
        fallback: bool,
        beams: usize,
        stop: &[&AtomicBool],
        draft: &[u32],
    ) -> Result<Recognition, String> {
        if stopped(stop) {
            return Err(STOPPED.to_owned());
        }
        let Encoded {
            audio,
            audio_positions,
            positions,
            samples,
            secs: encode_secs,
        } = encoded;
        let (audio_positions, positions) = (*audio_positions, *positions);
        let seconds = *samples as f64 / f64::from(SAMPLE_RATE);
        let mut language = language.map(str::to_owned);
        // Seeded by the audio's length: the same segment always decodes the same way.
        let mut rng = fastrand::Rng::with_seed(*samples as u64);
        let temperatures: &[f32] = if fallback {
            &fallback::TEMPERATURES
        } else {
            &fallback::TEMPERATURES[..1]
        };
        let mut kept: Option<Attempt> = None;
        let started = std::time::Instant::now();
        for &temperature in temperatures {
            if kept.is_some() && started.elapsed().as_secs_f64() > fallback::BUDGET_SECS {
                // A final must not wait for every temperature: the best so far.
                break;
            }
            // Sampling draws several and keeps the most probable (the reference's best_of).
            let draws = if temperature > 0.0 {
                fallback::BEST_OF
            } else {
                1
            };
            let mut most_probable: Option<Attempt> = None;
            for _ in 0..draws {
                let begun = self.begin(
                    audio,
                    previous,
                    &mut language,
                    decide,
                    &self.alignment_heads,
                )?;
                let candidate = if temperature == 0.0 {
                    // Greedy, or with beams greedy up to its first doubtful token and beam
                    // search from there.
                    let doubt = (beams > 1).then_some(self.doubt);
                    let steps = Steps {
                        temperature,
                        draft,
                        doubt,
                    };
                    match self.attempt(begun, steps, seconds, &mut rng, stop)? {
                        Decoded::Done(attempt) => attempt,
                        Decoded::Doubt(start) => self.beam_attempt(*start, beams, seconds, stop)?,
                    }
                } else {
                    let steps = Steps {
                        temperature,
                        draft: &[],
                        doubt: None,
                    };
                    match self.attempt(begun, steps, seconds, &mut rng, stop)? {
                        Decoded::Done(attempt) => attempt,
                        Decoded::Doubt(_) => return Err("sampling has no doubt".to_owned()),
                    }
                };
                if most_probable
                    .as_ref()
                    .is_none_or(|d| candidate.avg_logprob() > d.avg_logprob())
                {
                    most_probable = Some(candidate);
                }
            }
            let attempt = most_probable.ok_or("no decoding attempt was made")?;
            let passes = attempt.passes();
            tracing::debug!(
                temperature,
                avg_logprob = attempt.avg_logprob(),
                compression = attempt.compression_ratio(),
                no_speech = attempt.no_speech,
                passes,
                "attempt {:?}",
                attempt.text
            );
            if passes {
                kept = Some(attempt);
                break;
            }
            if kept.as_ref().is_none_or(|k| attempt.better_than(k)) {
                kept = Some(attempt);
            }
        }
        let mut attempt = kept.ok_or("no decoding attempt was made")?;
        if let Some(cut) = doubled(&attempt.tokens) {
            attempt.tokens.truncate(cut);
            attempt.token_logprobs.truncate(cut);
            for row in &mut attempt.rows {
                row.truncate(cut + 1);
            }
            self.tokenizer
                .decode(&attempt.tokens)
                .trim()
                .clone_into(&mut attempt.text);
        }
        let avg_logprob = attempt.avg_logprob();
        tracing::debug!(
            seconds,
            positions,
            encode_secs,
            decode_secs = started.elapsed().as_secs_f64(),
            tokens = attempt.tokens.len(),
            no_speech = attempt.no_speech,
            avg_logprob,
            temperature = attempt.temperature,
            "recognised {:?}",
            attempt.text
        );
        let words = self.words(
            &attempt.tokens,
            &attempt.token_logprobs,
            &attempt.rows,
            audio_positions,
        );
        Ok(Recognition {
            text: attempt.text,
            tokens: attempt.tokens,
            words,
            language: language.unwrap_or_else(|| "en".to_owned()),
            no_speech: attempt.no_speech,
            avg_logprob,
        })
    }

    /// The decoder started on the encoded `audio`: the previous text and the start token (whose
    /// logits give the no-speech probability and the language, decided here on the first
    /// attempt, with `decide` when none was given), then the language and task tokens.
    pub(super) fn begin(
        &self,
        audio: &candle_core::Tensor,
        previous: &[u32],
        language: &mut Option<String>,
        decide: &mut DecideLanguage<'_>,
        heads: &[(usize, usize)],
    ) -> Result<Begun, String> {
        let mut state = self.model.start_decoding(audio)?;
        let s = &self.tokenizer.specials;
        let mut start = Vec::new();
        if let (Some(prev_token), false) = (s.start_of_prev, previous.is_empty()) {
            let room = self.model.dims.n_text_ctx / 2 - 1;
            start.push(prev_token);
            start.extend_from_slice(&previous[previous.len().saturating_sub(room)..]);
        }
        start.push(s.sot);
        let (logits, _) = self.model.decode(&mut state, &start, &[])?;
        let logprobs = log_softmax(&logits);
        let no_speech = s
            .no_speech
            .and_then(|id| logprobs.get(id as usize))
            .map_or(0.0, |lp| f64::from(lp.exp()));
        let code = match language.as_deref() {
            Some(code) => code.to_owned(),
            None if self.multilingual => decide(&self.language_probabilities(&logits)),
            None => "en".to_owned(),
        };
        *language = Some(code.clone());
        let mut prompt = Vec::new();
        if self.multilingual {
            if let Some(lang) = self.tokenizer.language_token(&code) {
                prompt.push(lang);
            }
            if let Some(t) = s.transcribe {
                prompt.push(t);
            }
        }
        prompt.push(s.no_timestamps);
        let (logits, weights) = self.model.decode(&mut state, &prompt, heads)?;
        Ok(Begun {
            state,
            no_speech,
            logits,
            weights,
        })
    }

    /// Tokens never produced get no chance (`first`: also those never produced first).
    pub(super) fn suppress(&self, logits: &mut [f32], first: bool) {
        let at_begin: &[u32] = if first {
            &self.suppressed_at_begin
        } else {
            &[]
        };
        for &id in self.suppressed.iter().chain(at_begin) {
            if let Some(l) = logits.get_mut(id as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
    }

    /// The most text tokens for `seconds` of audio: speech is at most about 6 tokens a second;
    /// more is the model looping.
    pub(super) fn token_limit(&self, seconds: f64) -> usize {
        (self.model.dims.n_text_ctx / 2).min(12 + (seconds * 8.0) as usize)
    }

    /// Runs the encoder on `samples` (at most 30 s) with `context`, given up (an error) when one
    /// of `stop` is raised. Returns its output, the positions that hold audio and the positions
    /// encoded.
    pub(super) fn encode(
        &self,
        samples: &[f32],
        context: Context,
        stop: &[&AtomicBool],
    ) -> Result<(candle_core::Tensor, usize, usize), String> {
        let audio_positions = samples.len().div_ceil(2 * HOP);
        let positions = match context {
            Context::Full => self.model.dims.n_audio_ctx,
            Context::Padded(pad) => (audio_positions
                + (pad * POSITIONS_PER_SECOND).ceil() as usize)
                .clamp(1, self.model.dims.n_audio_ctx),
        };
        let frames = positions * 2;
        let mut padded = samples.to_vec();
        padded.resize(frames * HOP, 0.0);
        let mel = self.mel.compute(&padded);
        let audio = self
            .model
            .encode(&mel, frames, &|| stopped(stop))?
            .ok_or(STOPPED)?;
        Ok((audio, audio_positions, positions))
    }
}

/// A segment's audio after the encoder.
#[derive(Debug)]
pub struct Encoded {
    audio: candle_core::Tensor,
    /// Positions that hold audio, and positions encoded (with the padding).
    audio_positions: usize,
    positions: usize,
    /// The 16 kHz samples encoded.
    samples: usize,
    /// How long the encoder took.
    secs: f64,
}

impl Encoded {
    /// How many 16 kHz samples were encoded.
    pub fn samples(&self) -> usize {
        self.samples
    }
}

/// A segment's decoder after its prompt.
pub(super) struct Begun {
    pub state: super::model::DecoderState,
    pub no_speech: f64,
    /// The logits for the first text token.
    pub logits: Vec<f32>,
    /// The prompt's cross-attention rows per alignment head asked for.
    pub weights: super::model::HeadWeights,
}

/// What a recognition given up on `stop` returns.
pub(super) const STOPPED: &str = "interim given up: a final is wanted";

pub(super) fn stopped(stop: &[&AtomicBool]) -> bool {
    stop.iter().any(|s| s.load(Ordering::Relaxed))
}

/// `LIGHTNING_WHISPER_CONTEXT=full` or `=pad:SECONDS` overrides the encoder context (for
/// measurements).
fn context_from_env() -> Option<Context> {
    let value = std::env::var("LIGHTNING_WHISPER_CONTEXT").ok()?;
    if value == "full" {
        return Some(Context::Full);
    }
    let secs: f64 = value.strip_prefix("pad:")?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some(Context::Padded(secs))
}
