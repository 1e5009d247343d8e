//! Streaming mono resampling with rubato's FFT resampler (our rates are fixed integers, which is the
//! case it is made for). The resampler's start-up delay is trimmed and its tail flushed, so output
//! sample n lines up with input time n / out_rate: word times stay right.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Indexing, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

/// Why a resampler could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResampleError {
    /// rubato refused the conversion.
    #[error("cannot resample {from} Hz to {to} Hz: {detail}")]
    Construction { from: u32, to: u32, detail: String },
    /// rubato failed on a block.
    #[error("resampling failed: {0}")]
    Process(String),
}

/// A mono resampler that takes any number of samples at a time.
pub struct MonoResampler {
    inner: Box<dyn Resampler<f32>>,
    from: u32,
    to: u32,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    delay_left: usize,
    consumed: u64,
    produced: u64,
}

impl MonoResampler {
    /// A resampler from `from` Hz to `to` Hz, working in blocks of about 20 ms of input.
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let block = (from as usize / 50).max(64);
        // One FFT per 20 ms block: smaller FFTs (rubato's default splits blocks into ~256-frame
        // pieces) pull the anti-alias cutoff far down at big ratios (192 kHz -> 8 kHz lost
        // everything above ~2 kHz). 20 ms keeps the cutoff near Nyquist at ~10 ms of delay.
        let inner = Fft::<f32>::new_custom(
            from as usize,
            to as usize,
            block,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Input,
        )
        .map_err(|e| ResampleError::Construction {
            from,
            to,
            detail: e.to_string(),
        })?;
        Ok(Self::wrap(Box::new(inner), from, to, block))
    }

    /// A resampler for live audio: a sinc filter working on 2 ms blocks, so a sample waits at most
    /// ~2 ms for its block plus the filter's half length (64 input samples, 1.3 ms at 48 kHz).
    pub fn new_low_latency(from: u32, to: u32) -> Result<Self, ResampleError> {
        let block = (from as usize / 500).max(16);
        let params = SincInterpolationParameters {
            sinc_len: 128,
            f_cutoff: None,
            oversampling_factor: 256,
            interpolation: SincInterpolationType::Linear,
            window: WindowFunction::BlackmanHarris2,
        };
        let inner = Async::<f32>::new_sinc(
            f64::from(to) / f64::from(from),
            1.0,
            &params,
            block,
            1,
            FixedAsync::Input,
        )
        .map_err(|e| ResampleError::Construction {
            from,
            to,
            detail: e.to_string(),
        })?;
        Ok(Self::wrap(Box::new(inner), from, to, block))
    }

    fn wrap(inner: Box<dyn Resampler<f32>>, from: u32, to: u32, block: usize) -> Self {
        let scratch = vec![0.0; inner.output_frames_max()];
        let delay_left = inner.output_delay();
        MonoResampler {
            inner,
            from,
            to,
            pending: Vec::with_capacity(block * 2),
            scratch,
            delay_left,
            consumed: 0,
            produced: 0,
        }
    }

    /// Resamples `input`, appending whatever output is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        self.pending.extend_from_slice(input);
        self.consumed += input.len() as u64;
        loop {
            let need = self.inner.input_frames_next();
            if self.pending.len() < need {
                return Ok(());
            }
            self.run_block(need, None, out)?;
            self.pending.drain(..need);
        }
    }

    /// Flushes the tail: after this, `out` has received exactly round(inputs × to / from) samples
    /// in total. The resampler is reset and can take a new stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let expected =
            (self.consumed as f64 * f64::from(self.to) / f64::from(self.from)).round() as u64;
        while self.produced < expected {
            let need = self.inner.input_frames_next();
            let have = self.pending.len().min(need);
            self.pending.resize(need, 0.0);
            self.run_block(need, Some(have), out)?;
            self.pending.clear();
        }
        let excess = (self.produced - expected) as usize;
        out.truncate(out.len().saturating_sub(excess));
        self.reset();
        Ok(())
    }

    /// Forgets all state, for a new stream.
    pub fn reset(&mut self) {
        self.inner.reset();
        self.pending.clear();
        self.delay_left = self.inner.output_delay();
        self.consumed = 0;
        self.produced = 0;
    }

    fn run_block(
        &mut self,
        frames: usize,
        partial: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<(), ResampleError> {
        let input = InterleavedSlice::new(&self.pending[..frames], 1, frames)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let capacity = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut self.scratch, 1, capacity)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, written) = self
            .inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        out.extend_from_slice(&self.scratch[skip..written]);
        self.produced += (written - skip) as u64;
        Ok(())
    }
}

impl std::fmt::Debug for MonoResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MonoResampler({} Hz -> {} Hz)", self.from, self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, samples: usize, amplitude: f64) -> Vec<f32> {
        (0..samples)
            .map(|i| {
                (amplitude * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin())
                    as f32
            })
            .collect()
    }

    /// Resamples in uneven pieces, as a live source would deliver them.
    fn resample_streaming(input: &[f32], from: u32, to: u32) -> Vec<f32> {
        resample_with(MonoResampler::new(from, to).unwrap(), input)
    }

    fn resample_with(mut r: MonoResampler, input: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        let mut rest = input;
        let sizes = [1usize, 7, 480, 1000, 33, 4096];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            r.push(&rest[..n], &mut out).unwrap();
            rest = &rest[n..];
            i += 1;
        }
        r.finish(&mut out).unwrap();
        out
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Amplitude of the component at `freq` (single-bin DFT).
    fn amplitude_at(x: &[f32], freq: f64, rate: u32) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x.iter().enumerate() {
            let phase = std::f64::consts::TAU * freq * i as f64 / f64::from(rate);
            re += f64::from(s) * phase.cos();
            im += f64::from(s) * phase.sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f64
    }

    fn db(ratio: f64) -> f64 {
        20.0 * ratio.log10()
    }

    #[test]
    fn sine_48k_to_16k_keeps_frequency_and_amplitude() {
        let input = sine(1000.0, 48000, 48000 * 2, 0.5);
        let out = resample_streaming(&input, 48000, 16000);
        assert_eq!(out.len(), 32000);
        let steady = &out[1600..out.len() - 1600];
        let amplitude = amplitude_at(steady, 1000.0, 16000);
        assert!(
            db(amplitude / 0.5).abs() <= 0.5,
            "{} dB",
            db(amplitude / 0.5)
        );
        // The energy is at 1 kHz, not beside it.
        for off in [-100.0, 100.0] {
            assert!(db(amplitude_at(steady, 1000.0 + off, 16000) / 0.5) < -40.0);
        }
        // All of the signal's power is that one component.
        let total = rms(steady) * std::f64::consts::SQRT_2;
        assert!(db(amplitude / total).abs() < 0.05);
    }

    #[test]
    fn nothing_aliases_above_minus_60_db() {
        // Tones between the new Nyquist (8 kHz) and the old one must vanish, not fold down.
        for freq in [8800.0, 10000.0, 13000.0, 20000.0] {
            let input = sine(freq, 48000, 48000, 0.9);
            let out = resample_streaming(&input, 48000, 16000);
            let steady = &out[1600..out.len() - 1600];
            let level = db(rms(steady) * std::f64::consts::SQRT_2 / 0.9);
            assert!(level < -60.0, "{freq} Hz leaks at {level:.1} dB");
        }
    }

    #[test]
    fn output_is_aligned_and_complete_for_every_pair() {
        let pairs = [
            (48000, 16000),
            (192_000, 8000),
            (44100, 16000),
            (8000, 48000),
            (11025, 22050),
            (37800, 24000),
            (96000, 44100),
        ];
        for (from, to) in pairs {
            let input = sine(440.0, from, from as usize * 3 / 2 + 17, 0.5);
            let out = resample_streaming(&input, from, to);
            let expected_len = (input.len() as f64 * f64::from(to) / f64::from(from)).round();
            assert_eq!(out.len(), expected_len as usize, "{from}->{to}");
            let expected = sine(440.0, to, out.len(), 0.5);
            // In phase with the input: no start-up delay left in (a sub-sample offset remains
            // from where the FFT resampler places its output grid: under 0.6 output samples).
            let skip = to as usize / 20;
            let max_err = out[skip..out.len() - skip]
                .iter()
                .zip(&expected[skip..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let one_sample_step = 0.5 * std::f64::consts::TAU * 440.0 / f64::from(to);
            assert!(
                f64::from(max_err) < 0.6 * one_sample_step + 0.005,
                "{from}->{to}: max error {max_err}"
            );
        }
    }

    #[test]
    fn low_latency_resampler_keeps_speech_band_and_blocks_aliases() {
        for (from, to) in [
            (48000, 16000),
            (44100, 16000),
            (16000, 16000 * 3),
            (48000, 8000),
        ] {
            let input = sine(1000.0, from, from as usize, 0.5);
            let out = resample_with(MonoResampler::new_low_latency(from, to).unwrap(), &input);
            let expected_len = (input.len() as f64 * f64::from(to) / f64::from(from)).round();
            assert_eq!(out.len(), expected_len as usize, "{from}->{to}");
            let steady = &out[to as usize / 10..out.len() - to as usize / 10];
            let amplitude = amplitude_at(steady, 1000.0, to);
            assert!(
                db(amplitude / 0.5).abs() <= 0.5,
                "{from}->{to}: {} dB",
                db(amplitude / 0.5)
            );
            // In phase: the filter delay is trimmed (to within one output sample, ~21 µs at 48 kHz).
            let expected = sine(1000.0, to, out.len(), 0.5);
            let skip = to as usize / 10;
            let max_err = out[skip..out.len() - skip]
                .iter()
                .zip(&expected[skip..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let one_sample_step = 0.5 * std::f64::consts::TAU * 1000.0 / f64::from(to);
            assert!(
                f64::from(max_err) < 1.1 * one_sample_step + 0.01,
                "{from}->{to}: {max_err}"
            );
        }
        for freq in [9000.0, 13000.0, 20000.0] {
            let input = sine(freq, 48000, 48000, 0.9);
            let out = resample_with(
                MonoResampler::new_low_latency(48000, 16000).unwrap(),
                &input,
            );
            let steady = &out[1600..out.len() - 1600];
            let level = db(rms(steady) * std::f64::consts::SQRT_2 / 0.9);
            assert!(level < -60.0, "{freq} Hz leaks at {level:.1} dB");
        }
    }

    #[test]
    fn reset_gives_the_same_output_again() {
        let input = sine(300.0, 44100, 10000, 0.3);
        let mut r = MonoResampler::new(44100, 16000).unwrap();
        let mut a = Vec::new();
        r.push(&input, &mut a).unwrap();
        r.finish(&mut a).unwrap();
        let mut b = Vec::new();
        r.push(&input, &mut b).unwrap();
        r.finish(&mut b).unwrap();
        assert_eq!(a, b);
    }
}
