//! Temperature fallback, as the reference decoder does it: a segment whose greedy text is doubtful
//! (it compresses too well, a sign of looping, or its tokens are improbable on average) is decoded
//! again by sampling at rising temperatures until one passes; if none does, the most probable
//! attempt among those that do not loop is kept. A segment the model thinks is silence is not
//! retried.

use std::io::Write as _;

/// The temperatures tried, in order (the reference's defaults).
pub const TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
/// Above this the text repeats itself (gzip ratio, as the reference measures it).
pub const COMPRESSION_RATIO_THRESHOLD: f64 = 2.4;
/// Below this mean token log-probability the text is doubtful.
pub const LOGPROB_THRESHOLD: f64 = -1.0;
/// Above this no-speech probability (with a doubtful text) the segment is silence.
pub const NO_SPEECH_THRESHOLD: f64 = 0.6;
/// Samples drawn at each temperature above 0; the most probable is kept (the reference's
/// `best_of`).
pub const BEST_OF: usize = 5;
/// No further attempt starts after this much decoding time for one segment (the reference has
/// no limit; a dictation's final must not wait for six decodings on a slow machine).
pub const BUDGET_SECS: f64 = 2.0;

/// One decoding of a segment, with what the fallback judges it by.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub tokens: Vec<u32>,
    pub token_logprobs: Vec<f32>,
    /// Attention rows per alignment head (for word times).
    pub rows: Vec<Vec<Vec<f32>>>,
    pub text: String,
    pub no_speech: f64,
    pub temperature: f32,
}

impl Attempt {
    pub fn avg_logprob(&self) -> f64 {
        if self.token_logprobs.is_empty() {
            0.0
        } else {
            self.token_logprobs
                .iter()
                .map(|&l| f64::from(l))
                .sum::<f64>()
                / self.token_logprobs.len() as f64
        }
    }

    pub fn compression_ratio(&self) -> f64 {
        compression_ratio(&self.text)
    }

    /// The model thinks there is no speech, and the text does not say otherwise.
    pub fn silent(&self) -> bool {
        self.no_speech > NO_SPEECH_THRESHOLD && self.avg_logprob() < LOGPROB_THRESHOLD
    }

    /// Good enough to keep without trying a higher temperature.
    pub fn passes(&self) -> bool {
        self.silent()
            || (self.compression_ratio() <= COMPRESSION_RATIO_THRESHOLD
                && self.avg_logprob() >= LOGPROB_THRESHOLD)
    }

    /// Of two attempts that both failed, the one to keep: one that does not loop over one that
    /// does, then the more probable.
    pub fn better_than(&self, other: &Attempt) -> bool {
        let loops = |a: &Attempt| a.compression_ratio() > COMPRESSION_RATIO_THRESHOLD;
        match (loops(self), loops(other)) {
            (false, true) => true,
            (true, false) => false,
            _ => self.avg_logprob() > other.avg_logprob(),
        }
    }
}

/// Bytes of `text` over bytes of its zlib compression (what the reference calls the gzip
/// compression ratio); 0 for empty text.
pub fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    if encoder.write_all(text.as_bytes()).is_err() {
        return 0.0;
    }
    match encoder.finish() {
        Ok(compressed) if !compressed.is_empty() => text.len() as f64 / compressed.len() as f64,
        _ => 0.0,
    }
}

/// A token drawn from `logprobs` at `temperature` (> 0), and its untempered log-probability.
pub fn sample(logprobs: &[f32], temperature: f32, rng: &mut fastrand::Rng) -> Option<(u32, f32)> {
    let max = logprobs
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return None;
    }
    let weights: Vec<f64> = logprobs
        .iter()
        .map(|&l| {
            if l.is_finite() {
                f64::from((l - max) / temperature).exp()
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = rng.f64() * total;
    for (i, w) in weights.iter().enumerate() {
        target -= w;
        if target <= 0.0 && *w > 0.0 {
            return Some((i as u32, logprobs[i]));
        }
    }
    // Rounding left a sliver: the last possible token.
    weights
        .iter()
        .rposition(|w| *w > 0.0)
        .map(|i| (i as u32, logprobs[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looping_text_compresses_far_better_than_speech() {
        let speech = "The quick brown fox jumps over the lazy dog near the river bank.";
        let looping = "I'm going to go to the store. ".repeat(8);
        assert!(
            compression_ratio(speech) < COMPRESSION_RATIO_THRESHOLD,
            "{}",
            compression_ratio(speech)
        );
        assert!(
            compression_ratio(&looping) > COMPRESSION_RATIO_THRESHOLD,
            "{}",
            compression_ratio(&looping)
        );
        assert!(compression_ratio("").abs() < f64::EPSILON);
    }

    #[test]
    fn sampling_follows_the_distribution_and_never_picks_a_suppressed_token() {
        let mut rng = fastrand::Rng::with_seed(7);
        let logprobs = [0.9f32.ln(), 0.1f32.ln(), f32::NEG_INFINITY];
        let mut counts = [0usize; 3];
        for _ in 0..2000 {
            let (i, _) = sample(&logprobs, 1.0, &mut rng).unwrap();
            counts[i as usize] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!((1650..=1950).contains(&counts[0]), "{counts:?}");
        // A low temperature sharpens it.
        let sharp = (0..2000)
            .filter(|_| sample(&logprobs, 0.2, &mut rng).unwrap().0 == 0)
            .count();
        assert!(sharp > 1980, "{sharp}");
    }

    #[test]
    fn silence_passes_and_a_doubtful_text_does_not() {
        let attempt = |text: &str, lp: f32, no_speech: f64| Attempt {
            tokens: vec![1; 4],
            token_logprobs: vec![lp; 4],
            rows: Vec::new(),
            text: text.to_owned(),
            no_speech,
            temperature: 0.0,
        };
        assert!(attempt("Hello there.", -0.3, 0.1).passes());
        assert!(!attempt("Hello there.", -1.4, 0.1).passes());
        assert!(
            attempt("Hello there.", -1.4, 0.8).passes(),
            "silence is not retried"
        );
        let looping = attempt(&"go to the store ".repeat(10), -0.2, 0.0);
        assert!(!looping.passes());
        assert!(attempt("Hello there.", -1.4, 0.1).better_than(&looping));
    }
}
