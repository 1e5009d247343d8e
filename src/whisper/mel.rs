//! Whisper's log-mel front end, computed the way the reference implementation does it:
//! 16 kHz audio, 400-sample periodic Hann window, hop 160, frames centred (the signal is
//! reflect-padded by 200 samples each side), power spectrum, Slaney-style mel filters
//! (area-normalised, Slaney's mel scale), log10 clamped at 1e-10, floored at the maximum − 8,
//! then scaled as (x + 4) / 4. The reference drops the last STFT frame; so does this.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

pub const SAMPLE_RATE: u32 = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
/// Frequency bins of one frame: N_FFT / 2 + 1.
pub const N_BINS: usize = N_FFT / 2 + 1;

/// Slaney's mel scale (librosa's default, `htk=False`): linear below 1 kHz, logarithmic above.
pub fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

pub fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp()
    } else {
        mel * F_SP
    }
}

/// The mel filter bank, `n_mels` rows of `N_BINS` weights (row-major), for 16 kHz and a
/// 400-point FFT, triangles between neighbouring mel points normalised to equal area.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let sr = f64::from(SAMPLE_RATE);
    let fft_freqs: Vec<f64> = (0..N_BINS).map(|i| i as f64 * sr / N_FFT as f64).collect();
    let min_mel = hz_to_mel(0.0);
    let max_mel = hz_to_mel(sr / 2.0);
    let points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(min_mel + (max_mel - min_mel) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f32; n_mels * N_BINS];
    for m in 0..n_mels {
        let (lo, mid, hi) = (points[m], points[m + 1], points[m + 2]);
        let norm = 2.0 / (hi - lo);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            let w = lower.min(upper).max(0.0);
            weights[m * N_BINS + k] = (w * norm) as f32;
        }
    }
    weights
}

/// Computes log-mel spectrograms; holds the FFT plan, window and filters.
pub struct LogMel {
    n_mels: usize,
    filters: Vec<f32>,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMel")
            .field("n_mels", &self.n_mels)
            .finish_non_exhaustive()
    }
}

impl LogMel {
    pub fn new(n_mels: usize) -> Self {
        // Periodic Hann (torch.hann_window's default).
        let window = (0..N_FFT)
            .map(|i| {
                let x = 2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        Self {
            n_mels,
            filters: mel_filters(n_mels),
            window,
            fft,
        }
    }

    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// The number of frames `compute` returns for `n` samples.
    pub fn frames_for(n: usize) -> usize {
        n / HOP
    }

    /// Log-mel of 16 kHz mono samples: `n_mels` rows × `frames_for(len)` columns (row-major).
    pub fn compute(&self, samples: &[f32]) -> Vec<f32> {
        let frames = Self::frames_for(samples.len());
        let mut out = vec![0f32; self.n_mels * frames];
        if frames == 0 {
            return out;
        }
        let padded = reflect_pad(samples, N_FFT / 2);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f32; N_BINS];
        let mut max = f32::NEG_INFINITY;
        for t in 0..frames {
            let start = t * HOP;
            for (i, slot) in input.iter_mut().enumerate() {
                *slot = padded[start + i] * self.window[i];
            }
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                // Sizes come from the plan itself; this cannot fail. Leave the frame silent.
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for m in 0..self.n_mels {
                let row = &self.filters[m * N_BINS..(m + 1) * N_BINS];
                let energy: f32 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                let v = energy.max(1e-10).log10();
                max = max.max(v);
                out[m * frames + t] = v;
            }
        }
        let floor = max - 8.0;
        for v in &mut out {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        out
    }
}

/// Reflect padding as numpy/torch do it (the edge sample is not repeated). Signals shorter than
/// the pad are zero-padded instead.
fn reflect_pad(samples: &[f32], pad: usize) -> Vec<f32> {
    let n = samples.len();
    let mut out = Vec::with_capacity(n + 2 * pad);
    if n <= pad {
        out.resize(pad, 0.0);
        out.extend_from_slice(samples);
        out.resize(n + 2 * pad, 0.0);
        return out;
    }
    out.extend((1..=pad).rev().map(|i| samples[i]));
    out.extend_from_slice(samples);
    out.extend((0..pad).map(|i| samples[n - 2 - i]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mel_scale_round_trips_and_matches_slaney() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
        // librosa.hz_to_mel(1000) == 15, hz_to_mel(8000) == 45.245640471924965
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(8000.0) - 45.245_640_471_924_965).abs() < 1e-9);
    }

    #[test]
    fn filters_match_librosa() {
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): the peak of four rows, and the
        // sum of the whole bank.
        let f = mel_filters(80);
        for (m, k, want) in [
            (0, 1, 0.024_862_594_902_515_41),
            (10, 10, 0.019_908_217_713_236_81),
            (40, 43, 0.014_735_566_452_145_576),
            (79, 192, 0.003_164_711_873_978_376_4),
        ] {
            let row = &f[m * N_BINS..(m + 1) * N_BINS];
            let peak = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i);
            assert_eq!(peak, Some(k), "row {m}");
            assert!(
                (f64::from(row[k]) - want).abs() < 1e-7,
                "row {m}: {}",
                row[k]
            );
        }
        let total: f64 = f.iter().map(|&w| f64::from(w)).sum();
        assert!((total - 1.999_024_2).abs() < 1e-5, "{total}");
    }

    #[test]
    fn log_mel_matches_the_reference_front_end() {
        // 0.25 s of 0.5·sin(440 Hz) + 0.25·sin(3 kHz); expected values from numpy with the
        // reference's steps (periodic Hann, reflect-centred STFT, last frame dropped, librosa
        // filters, log10, max − 8, (x + 4) / 4).
        let x: Vec<f32> = (0..4000)
            .map(|n| {
                let t = f64::from(n) / 16000.0;
                (0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 0.25 * (2.0 * std::f64::consts::PI * 3000.0 * t).sin()) as f32
            })
            .collect();
        let mel = LogMel::new(80).compute(&x);
        let frames = LogMel::frames_for(x.len());
        assert_eq!(frames, 25);
        for (m, t, want) in [
            (0, 0, 0.996_697_259_798_792_3),
            (10, 5, 1.348_737_940_537_810_6),
            (20, 12, -0.561_796_232_161_658_3),
            (45, 0, 0.444_657_392_497_823_54),
            (45, 24, -0.488_755_381_781_143_2),
            (60, 10, -0.561_796_232_161_658_3),
            (79, 24, -0.385_613_132_305_586_25),
        ] {
            let got = f64::from(mel[m * frames + t]);
            assert!(
                (got - want).abs() < 2e-3,
                "mel[{m}][{t}] = {got}, want {want}"
            );
        }
    }

    #[test]
    fn reflect_pad_matches_numpy() {
        // np.pad([1,2,3,4,5], 2, mode="reflect") == [3,2,1,2,3,4,5,4,3]
        assert_eq!(
            reflect_pad(&[1.0, 2.0, 3.0, 4.0, 5.0], 2),
            vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0]
        );
    }
}
