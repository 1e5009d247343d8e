//! Streaming mono resampling with rubato's FFT resampler (our rates are fixed integers, which is the
//! case it is made for). The resampler's start-up delay is trimmed and its tail flushed, so output
//! sample n lines up with input time n / out_rate: word times stay right.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

/// Why a resampler could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample {from} Hz to {to} Hz: {detail}")]
    Construction { from: u32, to: u32, detail: String },
    #[error("resampling failed: {0}")]
    Process(String),
}

/// A mono resampler that takes any number of samples at a time.
pub struct MonoResampler {
    inner: Fft<f32>,
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
        let inner =
            Fft::<f32>::new(from as usize, to as usize, block, 1, FixedSync::Input).map_err(
                |e| ResampleError::Construction {
                    from,
                    to,
                    detail: e.to_string(),
                },
            )?;
        let scratch = vec![0.0; inner.output_frames_max()];
        let delay_left = inner.output_delay();
        Ok(MonoResampler {
            inner,
            from,
            to,
            pending: Vec::with_capacity(block * 2),
            scratch,
            delay_left,
            consumed: 0,
            produced: 0,
        })
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
        let expected = (self.consumed as f64 * f64::from(self.to) / f64::from(self.from)).round()
            as u64;
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
