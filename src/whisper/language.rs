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
            .encode(samples, context, &[])
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

/// Language probabilities of longer audio, most likely first.
pub type SecondOpinion<'a> = dyn FnMut(&[f32]) -> Vec<(String, f64)> + 'a;

/// A language is taken on its own evidence only at this probability or above.
const CONFIDENT: f64 = 0.8;
/// ... and from at least this much speech.
const CONFIDENT_SECS: f64 = 1.0;
/// A segment whose most likely language has at least this probability, while the dictation's
/// language has less than [`IMPLAUSIBLE`], switches too (espeak-ng German after Spanish: de 0.76,
/// es next to nothing).
const LIKELY: f64 = 0.5;
const IMPLAUSIBLE: f64 = 0.05;
/// The speech kept for a second opinion when one utterance is not conclusive.
const RECENT_SECS: f64 = 30.0;

/// Automatic language for one dictation: decides each utterance's language so that it holds.
///
/// Only the languages the service offers are candidates (Whisper's 99 include close neighbours
/// that a dictation in the picker's languages never wants: espeak-ng German comes out as
/// Yiddish, Latvian or Latin on short stretches). The first utterance takes its most likely
/// language; after that the language changes only on confident evidence: the utterance alone at
/// p ≥ 0.8 over ≥ 1 s (or p ≥ 0.5 while the current language is below 0.05 for it), or, when it
/// is not conclusive, the last 30 s of speech together.
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

    /// The language for an interim of the open utterance: its own most likely language when that
    /// is confident, else the dictation's so far (decided only at the final, which sees it all).
    pub fn interim_language(&self, probabilities: &[(String, f64)]) -> String {
        let candidates = Self::candidates(probabilities);
        match (candidates.first(), self.current.as_deref()) {
            (Some((top, p)), _) if *p >= CONFIDENT => top.clone(),
            (_, Some(current)) => current.to_owned(),
            (Some((top, _)), None) => top.clone(),
            (None, None) => "en".to_owned(),
        }
    }

    /// The most likely candidate of `probabilities` (English when there is none).
    pub fn most_likely(probabilities: &[(String, f64)]) -> String {
        Self::candidates(probabilities)
            .first()
            .map_or_else(|| "en".to_owned(), |(code, _)| code.clone())
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
    /// `second_opinion` gives the language probabilities of longer audio (the recogniser's
    /// [`Recognizer::detect_language`]).
    pub fn decide(
        &mut self,
        second_opinion: &mut SecondOpinion<'_>,
        probabilities: &[(String, f64)],
        utterance: &[f32],
    ) -> String {
        let candidates = Self::candidates(probabilities);
        let Some((top, p)) = candidates.first().cloned() else {
            return self.current.clone().unwrap_or_else(|| "en".to_owned());
        };
        let secs = utterance.len() as f64 / f64::from(SAMPLE_RATE);
        let p_current = self.current.as_ref().map_or(0.0, |current| {
            candidates
                .iter()
                .find(|(code, _)| code == current)
                .map_or(0.0, |(_, p)| *p)
        });
        let against_current = p >= CONFIDENT || (p >= LIKELY && p_current < IMPLAUSIBLE);
        let decided = match self.current.clone() {
            None => top,
            Some(current) if current == top => current,
            Some(_) if against_current && secs >= CONFIDENT_SECS => {
                self.recent.clear();
                top
            }
            Some(current) => {
                // A second opinion over the recent speech and this utterance together.
                let mut together = self.recent.clone();
                together.extend_from_slice(utterance);
                let longer = Self::candidates(&second_opinion(&together));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(c, p)| ((*c).to_owned(), *p)).collect()
    }

    #[test]
    fn the_language_holds_until_the_evidence_is_confident() {
        let second = std::cell::Cell::new(0);
        let mut opinion = |_: &[f32]| {
            second.set(second.get() + 1);
            p(&[("es", 0.9), ("de", 0.1)])
        };
        let mut t = LanguageTracker::default();
        let two_secs = vec![0.0f32; 32_000];
        // Not a service language: Yiddish is no candidate.
        assert_eq!(
            t.decide(
                &mut opinion,
                &p(&[("yi", 0.7), ("es", 0.2), ("de", 0.1)]),
                &two_secs
            ),
            "es"
        );
        // An unsure segment that leans elsewhere: the longer evidence keeps Spanish.
        assert_eq!(
            t.decide(
                &mut opinion,
                &p(&[("en", 0.5), ("es", 0.3), ("de", 0.2)]),
                &two_secs
            ),
            "es"
        );
        assert_eq!(second.get(), 1);
        // German, likely, with Spanish implausible: switches without a second opinion.
        assert_eq!(
            t.decide(
                &mut opinion,
                &p(&[("de", 0.76), ("en", 0.22), ("es", 0.02)]),
                &two_secs
            ),
            "de"
        );
        assert_eq!(second.get(), 1);
        assert_eq!(t.current(), Some("de"));
        // A confident but too short segment does not switch on its own.
        let short = vec![0.0f32; 8_000];
        let mut german = |_: &[f32]| p(&[("de", 0.9)]);
        assert_eq!(
            t.decide(&mut german, &p(&[("en", 0.95), ("de", 0.05)]), &short),
            "de"
        );
        // A confident long one does.
        assert_eq!(
            t.decide(&mut german, &p(&[("en", 0.95), ("de", 0.05)]), &two_secs),
            "en"
        );
        // Interims follow a confident segment, else the dictation's language.
        assert_eq!(t.interim_language(&p(&[("fr", 0.9)])), "fr");
        assert_eq!(t.interim_language(&p(&[("fr", 0.6), ("en", 0.4)])), "en");
    }
}
