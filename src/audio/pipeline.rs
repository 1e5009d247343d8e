//! The stages every audio source shares: downmix to mono → resample → encode → fixed chunks.
//!
//! A source (a WAV file now, the microphone later) pushes interleaved f32 frames at its own rate and
//! channel count; the pipeline hands out [`AudioChunk`]s ready for the wire.

use super::encode::encode_into;
use super::resample::{MonoResampler, ResampleError};
use crate::protocol::{Encoding, SampleRate};

/// Bounds on `--chunk-ms`: the vendor asks for frames of at least 10 ms; past half a second the
/// transcript would lag visibly.
pub const CHUNK_MS_RANGE: std::ops::RangeInclusive<u32> = 10..=500;

/// One binary frame of encoded audio.
#[derive(Clone, PartialEq, Eq)]
pub struct AudioChunk {
    /// 0, 1, 2, ... within one dictation.
    pub seq: u64,
    /// Index of the chunk's first sample on the dictation's timeline, at the stream's rate.
    pub first_sample: u64,
    /// Mono samples in the chunk.
    pub samples: u32,
    /// The encoded samples.
    pub bytes: Vec<u8>,
    /// For live sources: when the audio that completed this chunk arrived from the device.
    pub captured_at: Option<std::time::Instant>,
}

impl AudioChunk {
    /// Seconds from the start of the dictation to the end of this chunk.
    pub fn end_secs(&self, rate: SampleRate) -> f64 {
        (self.first_sample + u64::from(self.samples)) as f64 / f64::from(rate.hz())
    }
}

impl std::fmt::Debug for AudioChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AudioChunk(#{} at {} +{} samples, {} bytes)",
            self.seq,
            self.first_sample,
            self.samples,
            self.bytes.len()
        )
    }
}

/// Where the pipeline's output goes: the wire format and the chunk length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkFormat {
    pub encoding: Encoding,
    pub sample_rate: SampleRate,
    pub chunk_ms: u32,
}

impl ChunkFormat {
    /// The chunks a stream with `params` sends: its encoding and rate, `chunk_ms` long. The one
    /// place a chunk format is made from stream parameters, so the two always agree.
    pub fn for_stream(params: &crate::protocol::StreamParams, chunk_ms: u32) -> Self {
        ChunkFormat {
            encoding: params.encoding,
            sample_rate: params.sample_rate,
            chunk_ms,
        }
    }

    /// Mono samples in one full chunk.
    pub fn samples_per_chunk(&self) -> usize {
        ((u64::from(self.sample_rate.hz()) * u64::from(self.chunk_ms)) / 1000).max(1) as usize
    }
}

/// Why the pipeline could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// More channels than the downmix handles.
    #[error("audio with {0} channels is not supported (1 to 8)")]
    Channels(u16),
    /// An input rate outside 8-192 kHz.
    #[error("an input rate of {0} Hz is not supported (8000 to 192000)")]
    InputRate(u32),
    /// A chunk length outside 10-500 ms.
    #[error("chunks of {0} ms are out of range: use 10 to 500 ms")]
    ChunkMs(u32),
    /// The resampler could not be built or failed.
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// Downmix, resample, encode and chunk. Owned by one thread; no locks.
#[derive(Debug)]
pub struct ChunkPipeline {
    channels: usize,
    resampler: Option<MonoResampler>,
    mono: Vec<f32>,
    resampled: Vec<f32>,
    chunker: Chunker,
}

impl ChunkPipeline {
    /// A pipeline for a file source at `input_rate` Hz with `channels` interleaved channels
    /// (FFT resampler: fastest, ~30 ms of delay).
    pub fn new(input_rate: u32, channels: u16, format: ChunkFormat) -> Result<Self, PipelineError> {
        Self::build(input_rate, channels, format, false)
    }

    /// A pipeline for a live source (sinc resampler on 2 ms blocks: ~3 ms of delay).
    pub fn new_low_latency(
        input_rate: u32,
        channels: u16,
        format: ChunkFormat,
    ) -> Result<Self, PipelineError> {
        Self::build(input_rate, channels, format, true)
    }

    fn build(
        input_rate: u32,
        channels: u16,
        format: ChunkFormat,
        low_latency: bool,
    ) -> Result<Self, PipelineError> {
        if !(1..=8).contains(&channels) {
            return Err(PipelineError::Channels(channels));
        }
        if !(8000..=192_000).contains(&input_rate) {
            return Err(PipelineError::InputRate(input_rate));
        }
        if !CHUNK_MS_RANGE.contains(&format.chunk_ms) {
            return Err(PipelineError::ChunkMs(format.chunk_ms));
        }
        let to = format.sample_rate.hz();
        // Matching rates skip the resampler entirely, so the samples pass through untouched.
        let resampler = (input_rate != to)
            .then(|| {
                if low_latency {
                    MonoResampler::new_low_latency(input_rate, to)
                } else {
                    MonoResampler::new(input_rate, to)
                }
            })
            .transpose()?;
        Ok(ChunkPipeline {
            channels: usize::from(channels),
            resampler,
            mono: Vec::new(),
            resampled: Vec::new(),
            chunker: Chunker {
                format,
                open: Vec::with_capacity(format.samples_per_chunk()),
                next_seq: 0,
                next_first_sample: 0,
            },
        })
    }

    /// The output format.
    pub fn format(&self) -> ChunkFormat {
        self.chunker.format
    }

    /// Samples handed out so far, at the stream rate.
    pub fn samples_out(&self) -> u64 {
        self.chunker.next_first_sample
    }

    /// Output samples still missing from the next chunk.
    pub fn samples_to_next_chunk(&self) -> usize {
        self.chunker
            .format
            .samples_per_chunk()
            .saturating_sub(self.chunker.open.len())
    }

    /// Pushes interleaved frames; every chunk that fills up goes to `emit`.
    pub fn push_interleaved(
        &mut self,
        frames: &[f32],
        emit: &mut dyn FnMut(AudioChunk),
    ) -> Result<(), PipelineError> {
        self.mono.clear();
        downmix(frames, self.channels, &mut self.mono);
        match &mut self.resampler {
            Some(resampler) => {
                self.resampled.clear();
                resampler.push(&self.mono, &mut self.resampled)?;
                self.chunker.push(&self.resampled, emit);
            }
            None => self.chunker.push(&self.mono, emit),
        }
        Ok(())
    }

    /// Flushes the resampler and the last, possibly shorter, chunk. The pipeline can then start a
    /// new stream (sequence numbers and times start again from zero).
    pub fn finish(&mut self, emit: &mut dyn FnMut(AudioChunk)) -> Result<(), PipelineError> {
        if let Some(resampler) = &mut self.resampler {
            self.resampled.clear();
            resampler.finish(&mut self.resampled)?;
            self.chunker.push(&self.resampled, emit);
        }
        self.chunker.finish(emit);
        Ok(())
    }
}

/// Cuts mono samples into fixed chunks and encodes each.
#[derive(Debug)]
struct Chunker {
    format: ChunkFormat,
    /// Samples waiting for a full chunk.
    open: Vec<f32>,
    next_seq: u64,
    next_first_sample: u64,
}

impl Chunker {
    fn push(&mut self, mut samples: &[f32], emit: &mut dyn FnMut(AudioChunk)) {
        let per_chunk = self.format.samples_per_chunk();
        while !samples.is_empty() {
            let take = (per_chunk - self.open.len()).min(samples.len());
            self.open.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.open.len() == per_chunk {
                self.emit_open(emit);
            }
        }
    }

    fn finish(&mut self, emit: &mut dyn FnMut(AudioChunk)) {
        if !self.open.is_empty() {
            self.emit_open(emit);
        }
        self.next_seq = 0;
        self.next_first_sample = 0;
    }

    fn emit_open(&mut self, emit: &mut dyn FnMut(AudioChunk)) {
        let encoding = self.format.encoding;
        let mut bytes = Vec::with_capacity(self.open.len() * encoding.bytes_per_sample());
        encode_into(encoding, &self.open, &mut bytes);
        let samples = self.open.len() as u32;
        let chunk = AudioChunk {
            seq: self.next_seq,
            first_sample: self.next_first_sample,
            samples,
            bytes,
            captured_at: None,
        };
        self.next_seq += 1;
        self.next_first_sample += u64::from(samples);
        self.open.clear();
        emit(chunk);
    }
}

/// Averages interleaved channels into mono. Samples are clamped to full scale and anything not a
/// number becomes silence: a broken file or driver must not reach the resampler's FFT (which
/// panics on overflow; found by fuzzing).
pub fn downmix(frames: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels == 1 {
        out.extend(frames.iter().map(|&s| sanitize(s)));
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        frames
            .chunks_exact(channels)
            .map(|frame| frame.iter().map(|&s| sanitize(s)).sum::<f32>() * scale),
    );
}

#[inline]
fn sanitize(sample: f32) -> f32 {
    if sample.is_nan() {
        0.0
    } else {
        sample.clamp(-1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(p: &mut ChunkPipeline, input: &[f32]) -> Vec<AudioChunk> {
        let mut chunks = Vec::new();
        p.push_interleaved(input, &mut |c| chunks.push(c)).unwrap();
        p.finish(&mut |c| chunks.push(c)).unwrap();
        chunks
    }

    #[test]
    fn fixed_chunks_with_a_short_tail() {
        let format = ChunkFormat {
            encoding: Encoding::Linear16,
            sample_rate: SampleRate::Hz16000,
            chunk_ms: 20,
        };
        let mut p = ChunkPipeline::new(16000, 1, format).unwrap();
        let chunks = collect(&mut p, &vec![0.25; 1000]);
        assert_eq!(chunks.len(), 4);
        assert_eq!(
            chunks.iter().map(|c| c.samples).collect::<Vec<_>>(),
            [320, 320, 320, 40]
        );
        assert_eq!(chunks[3].first_sample, 960);
        assert!(chunks.iter().enumerate().all(|(i, c)| c.seq == i as u64));
        assert_eq!(chunks[0].bytes.len(), 640);
    }

    #[test]
    fn resampled_length_is_exact() {
        let format = ChunkFormat {
            encoding: Encoding::Mulaw,
            sample_rate: SampleRate::Hz8000,
            chunk_ms: 20,
        };
        let mut p = ChunkPipeline::new(44100, 2, format).unwrap();
        let chunks = collect(&mut p, &vec![0.1; 44100 * 2 * 3 + 2 * 17]);
        let total: u64 = chunks.iter().map(|c| u64::from(c.samples)).sum();
        assert_eq!(
            total,
            (f64::from(44100 * 3 + 17) * 8000.0 / 44100.0).round() as u64
        );
    }

    #[test]
    fn downmix_averages() {
        let mut out = Vec::new();
        downmix(&[1.0, 0.0, 0.5, 0.5, -1.0, 1.0], 2, &mut out);
        assert_eq!(out, [0.5, 0.5, 0.0]);
    }

    #[test]
    fn absurd_samples_are_tamed_before_the_resampler() {
        // From the fuzzer: huge floats made rubato's FFT overflow and panic.
        let format = ChunkFormat {
            encoding: Encoding::Linear16,
            sample_rate: SampleRate::Hz16000,
            chunk_ms: 20,
        };
        let mut p = ChunkPipeline::new(44100, 1, format).unwrap();
        let input: Vec<f32> = (0..5000)
            .map(|i| match i % 4 {
                0 => f32::MAX,
                1 => f32::NAN,
                2 => f32::NEG_INFINITY,
                _ => 3.0e38,
            })
            .collect();
        let chunks = collect(&mut p, &input);
        assert!(!chunks.is_empty());
        let mut out = Vec::new();
        downmix(&[f32::NAN, 2.0, -5.0], 1, &mut out);
        assert_eq!(out, [0.0, 1.0, -1.0]);
    }

    #[test]
    fn rejects_bad_shapes() {
        let format = ChunkFormat {
            encoding: Encoding::Linear16,
            sample_rate: SampleRate::Hz16000,
            chunk_ms: 20,
        };
        assert!(ChunkPipeline::new(16000, 9, format).is_err());
        assert!(ChunkPipeline::new(4000, 1, format).is_err());
        assert!(
            ChunkPipeline::new(
                16000,
                1,
                ChunkFormat {
                    chunk_ms: 5,
                    ..format
                }
            )
            .is_err()
        );
    }
}
