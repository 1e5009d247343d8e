//! Tone words: a synthetic "language" the deterministic test engine recognises exactly.
//!
//! Each word of [`VOCABULARY`] is a pure tone at its own frequency; words in a segment are separated
//! by short gaps, segments by longer silences. A transcript produced from such audio proves which
//! audio reached the server, in which order, and (through the word times) that none was lost or
//! duplicated. Everything is below 3.5 kHz, so it survives every rate down to 8 kHz and G.711.

/// The words, in frequency order.
pub const VOCABULARY: [&str; 32] = [
    "lightning",
    "dictate",
    "streams",
    "every",
    "word",
    "nothing",
    "is",
    "ever",
    "lost",
    "text",
    "appears",
    "while",
    "you",
    "speak",
    "hello",
    "world",
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
];

/// Frequency of the word at `index` in [`VOCABULARY`].
pub fn frequency(index: usize) -> f32 {
    500.0 + 80.0 * index as f32
}

/// The index of a vocabulary word.
pub fn word_index(word: &str) -> Option<usize> {
    VOCABULARY.iter().position(|w| *w == word)
}

/// Timing of synthesized speech.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneTiming {
    pub lead_in: f64,
    pub word: f64,
    pub word_gap: f64,
    pub segment_gap: f64,
    pub tail: f64,
    pub amplitude: f32,
}

impl Default for ToneTiming {
    fn default() -> Self {
        ToneTiming {
            lead_in: 0.2,
            word: 0.2,
            word_gap: 0.08,
            segment_gap: 0.7,
            tail: 0.6,
            amplitude: 0.5,
        }
    }
}

/// A word as it was synthesized: where it is in the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedWord {
    pub word: &'static str,
    pub start: f64,
    pub end: f64,
}

/// Synthesizes segments of words (unknown words are skipped) at `rate` Hz, mono.
/// Returns the samples and where each word was placed.
pub fn synthesize(
    segments: &[&[&str]],
    rate: u32,
    timing: ToneTiming,
) -> (Vec<f32>, Vec<PlacedWord>) {
    let rate_f = f64::from(rate);
    let mut samples = Vec::new();
    let mut placed = Vec::new();
    let silence = |samples: &mut Vec<f32>, secs: f64| {
        samples.extend(std::iter::repeat_n(0.0, (secs * rate_f).round() as usize));
    };
    silence(&mut samples, timing.lead_in);
    for (si, segment) in segments.iter().enumerate() {
        if si > 0 {
            silence(&mut samples, timing.segment_gap);
        }
        let known: Vec<usize> = segment.iter().filter_map(|w| word_index(w)).collect();
        for (wi, &index) in known.iter().enumerate() {
            if wi > 0 {
                silence(&mut samples, timing.word_gap);
            }
            let start = samples.len();
            let n = (timing.word * rate_f).round() as usize;
            let fade = (0.005 * rate_f) as usize;
            let step = std::f64::consts::TAU * f64::from(frequency(index)) / rate_f;
            for i in 0..n {
                let edge = i.min(n - 1 - i);
                let gain = if edge < fade {
                    0.5 - 0.5 * (std::f64::consts::PI * edge as f64 / fade as f64).cos()
                } else {
                    1.0
                };
                samples.push((f64::from(timing.amplitude) * gain * (step * i as f64).sin()) as f32);
            }
            placed.push(PlacedWord {
                word: VOCABULARY[index],
                start: start as f64 / rate_f,
                end: samples.len() as f64 / rate_f,
            });
        }
    }
    silence(&mut samples, timing.tail);
    (samples, placed)
}

/// Which vocabulary word a burst of samples is, if it is a clean tone.
pub fn classify(samples: &[f32], rate: u32) -> Option<&'static str> {
    if samples.is_empty() {
        return None;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if energy <= 0.0 {
        return None;
    }
    let n = samples.len() as f64;
    let (best, power) = (0..VOCABULARY.len())
        .map(|i| (i, goertzel_power(samples, frequency(i), rate)))
        .fold((0, 0.0), |acc, cur| if cur.1 > acc.1 { cur } else { acc });
    // For a pure tone on the bin, power ≈ energy × n / 2.
    let purity = power / (energy * n / 2.0);
    (purity > 0.5).then_some(VOCABULARY[best])
}

/// Squared magnitude of the DFT of `samples` at `freq`.
fn goertzel_power(samples: &[f32], freq: f32, rate: u32) -> f64 {
    let w = std::f64::consts::TAU * f64::from(freq) / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_classifies_at_every_rate() {
        for rate in [8000, 16000, 22050, 44100, 48000] {
            for (i, word) in VOCABULARY.iter().enumerate() {
                let (samples, placed) = synthesize(&[&[word]], rate, ToneTiming::default());
                assert_eq!(placed.len(), 1);
                let a = (placed[0].start * f64::from(rate)) as usize;
                let b = (placed[0].end * f64::from(rate)) as usize;
                assert_eq!(
                    classify(&samples[a..b], rate),
                    Some(VOCABULARY[i]),
                    "{rate}"
                );
            }
        }
    }

    #[test]
    fn noise_is_not_a_word() {
        let noise: Vec<f32> = (0..4000u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) >> 16) as f32 / 65536.0) - 0.5)
            .collect();
        assert_eq!(classify(&noise, 16000), None);
        assert_eq!(classify(&[], 16000), None);
    }
}
