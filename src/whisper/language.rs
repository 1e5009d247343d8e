//! Which language is spoken: the model's language tokens after the start token, as the reference
//! does it (softmax over the language tokens only).

use super::ModelError;
use super::decode::{Context, Recognizer};
use super::mel::SAMPLE_RATE;

impl Recognizer {
    /// Each language's probability from the logits after the start token, most likely first
    /// (empty for an English-only model).
    pub(super) fn language_probabilities(&self, logits: &[f32]) -> Vec<(String, f64)> {
        let languages: Vec<(&String, f64)> = self
            .tokenizer
            .specials
            .languages
            .iter()
            .filter_map(|(code, id)| Some((code, f64::from(*logits.get(*id as usize)?))))
            .collect();
        let max = languages
            .iter()
            .map(|(_, l)| *l)
            .fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = languages.iter().map(|(_, l)| (l - max).exp()).sum();
        let mut out: Vec<(String, f64)> = languages
            .into_iter()
            .map(|(code, l)| (code.clone(), (l - max).exp() / total))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// The language of `samples` (16 kHz; the last 30 s count), most likely first, with the
    /// encoder over `context`.
    pub fn detect_language(
        &self,
        samples: &[f32],
        context: Context,
    ) -> Result<Vec<(String, f64)>, ModelError> {
        if !self.multilingual() {
            return Ok(vec![("en".to_owned(), 1.0)]);
        }
        let max = (super::decode::MAX_SECONDS * f64::from(SAMPLE_RATE)) as usize;
        let samples = &samples[samples.len().saturating_sub(max)..];
        let (audio, _, _) = self
            .encode(samples, context)
            .map_err(ModelError::Inference)?;
        let mut state = self
            .model
            .start_decoding(&audio)
            .map_err(ModelError::Inference)?;
        let sot = self.tokenizer.specials.sot;
        let (logits, _) = self
            .model
            .decode(&mut state, &[sot], &[])
            .map_err(ModelError::Inference)?;
        Ok(self.language_probabilities(&logits))
    }
}

/// A language is taken on its own evidence only at this probability or above.
const CONFIDENT: f64 = 0.8;
/// ... and from at least this much speech.
const CONFIDENT_SECS: f64 = 1.0;
/// The speech kept for a second opinion when one utterance is not conclusive.
const RECENT_SECS: f64 = 30.0;

/// Automatic language for one dictation: decides each utterance's language so that it holds.
///
/// Only the languages the service offers are candidates (Whisper's 99 include close neighbours
/// that a dictation in the picker's languages never wants: espeak-ng German comes out as
/// Yiddish, Latvian or Latin on short stretches). The first utterance takes its most likely
/// language; after that the language changes only on confident evidence: the utterance alone at
/// p ≥ 0.8 over ≥ 1 s, or, when it is not conclusive, the last 30 s of speech together.
#[derive(Debug, Default)]
pub struct LanguageTracker {
    current: Option<String>,
    /// The speech since the language was last set (at most 30 s, the latest).
    recent: Vec<f32>,
}

impl LanguageTracker {
    /// The dictation's language so far (for interims), if one has been decided.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// The candidates of `probabilities` (most likely first), renormalised.
    pub fn candidates(probabilities: &[(String, f64)]) -> Vec<(String, f64)> {
        let allowed: Vec<(String, f64)> = probabilities
            .iter()
            .filter(|(code, _)| {
                crate::protocol::Language::from_code(code).is_some_and(|l| !l.is_multi())
            })
            .cloned()
            .collect();
        let total: f64 = allowed.iter().map(|(_, p)| p).sum();
        if total <= 0.0 {
            return probabilities.to_vec();
        }
        allowed.into_iter().map(|(c, p)| (c, p / total)).collect()
    }

    /// The language of `utterance` (16 kHz), given its language probabilities from the model.
    pub fn decide(
        &mut self,
        recognizer: &Recognizer,
        probabilities: &[(String, f64)],
        utterance: &[f32],
    ) -> String {
        let candidates = Self::candidates(probabilities);
        let Some((top, p)) = candidates.first().cloned() else {
            return self.current.clone().unwrap_or_else(|| "en".to_owned());
        };
        let secs = utterance.len() as f64 / f64::from(SAMPLE_RATE);
        let decided = match self.current.clone() {
            None => top,
            Some(current) if current == top => current,
            Some(_) if p >= CONFIDENT && secs >= CONFIDENT_SECS => {
                self.recent.clear();
                top
            }
            Some(current) => {
                // A second opinion over the recent speech and this utterance together.
                let mut together = self.recent.clone();
                together.extend_from_slice(utterance);
                let longer = recognizer
                    .detect_language(&together, Context::Padded(1.0))
                    .map(|p| Self::candidates(&p))
                    .unwrap_or_default();
                match longer.first() {
                    Some((code, _)) if *code == current => current,
                    Some((code, p)) if *p >= CONFIDENT => {
                        self.recent.clear();
                        code.clone()
                    }
                    _ => current,
                }
            }
        };
        self.recent.extend_from_slice(utterance);
        let max = (RECENT_SECS * f64::from(SAMPLE_RATE)) as usize;
        if self.recent.len() > max {
            let cut = self.recent.len() - max;
            self.recent.drain(..cut);
        }
        tracing::debug!(secs, top = ?candidates.first(), decided, "language");
        self.current = Some(decided.clone());
        decided
    }
}
