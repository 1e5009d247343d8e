//! The WAV file source: reads with hound, feeds the shared pipeline, sends chunks on a crossbeam
//! channel, either as fast as the receiver takes them or paced at real time like a microphone.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::pipeline::{AudioChunk, ChunkFormat, ChunkPipeline, PipelineError};
use crate::channel::BlockingSend;

/// Why a WAV file cannot be streamed. Each says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The file cannot be opened.
    #[error("cannot open {path}: {detail}: check the path")]
    Open { path: PathBuf, detail: String },
    /// Not a WAV file (or a damaged header).
    #[error(
        "{path} is not a readable WAV file ({detail}): convert it, e.g. `sox in.mp3 -b 16 out.wav`"
    )]
    Format { path: PathBuf, detail: String },
    /// A WAV file in a format we do not read.
    #[error(
        "{path}: {detail}: convert it to 8/16/24/32-bit integer or 32-bit float PCM, 8-192 kHz, 1-8 channels"
    )]
    Unsupported { path: PathBuf, detail: String },
    /// The file ends (or breaks) before its header says; the audio before was sent.
    #[error(
        "{path} is damaged after {secs:.2} s of audio ({detail}): the audio before that was sent"
    )]
    Truncated {
        path: PathBuf,
        secs: f64,
        detail: String,
    },
    /// The file's rate or channel count cannot be converted.
    #[error("{path}: {source}")]
    Pipeline {
        path: PathBuf,
        #[source]
        source: PipelineError,
    },
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WavInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub is_float: bool,
    /// Frames per channel the header announces.
    pub frames: u32,
}

impl WavInfo {
    pub fn duration_secs(&self) -> f64 {
        f64::from(self.frames) / f64::from(self.sample_rate)
    }
}

impl std::fmt::Display for WavInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} s, {} Hz, {} ch, {}-bit {}",
            self.duration_secs(),
            self.sample_rate,
            self.channels,
            self.bits,
            if self.is_float { "float" } else { "integer" }
        )
    }
}

/// How fast to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As fast as the channel takes the chunks.
    AsFastAsPossible,
    /// At real time, as a microphone would deliver it.
    Realtime,
}

/// An open WAV file, validated, ready to stream.
pub struct WavSource {
    path: PathBuf,
    reader: hound::WavReader<BufReader<File>>,
    info: WavInfo,
}

impl WavSource {
    /// Opens and validates a WAV file.
    pub fn open(path: &Path) -> Result<WavSource, WavError> {
        let file = File::open(path).map_err(|e| WavError::Open {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| match e {
            hound::Error::Unsupported => WavError::Unsupported {
                path: path.to_owned(),
                detail: "unsupported WAV encoding".to_owned(),
            },
            other => WavError::Format {
                path: path.to_owned(),
                detail: other.to_string(),
            },
        })?;
        let info = check_spec(&reader, path)?;
        Ok(WavSource {
            path: path.to_owned(),
            reader,
            info,
        })
    }

    pub fn info(&self) -> WavInfo {
        self.info
    }

    /// Streams the whole file through a pipeline into `tx`. Stops early, flushing what it has,
    /// when `stop` is set or the receiver is gone. Returns the seconds of audio sent.
    pub fn stream(
        mut self,
        format: ChunkFormat,
        pace: Pace,
        tx: &impl BlockingSend<AudioChunk>,
        stop: &Arc<AtomicBool>,
    ) -> Result<f64, WavError> {
        let path = self.path.clone();
        let pipeline_error = |source| WavError::Pipeline {
            path: path.clone(),
            source,
        };
        let mut pipeline = ChunkPipeline::new(self.info.sample_rate, self.info.channels, format)
            .map_err(pipeline_error)?;
        let rate = f64::from(format.sample_rate.hz());
        let started = Instant::now();
        let mut receiver_gone = false;
        let mut send = |chunk: AudioChunk| {
            if receiver_gone {
                return;
            }
            if pace == Pace::Realtime {
                let due = started + Duration::from_secs_f64(chunk.end_secs(format.sample_rate));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            receiver_gone = !tx.send_blocking(chunk);
        };
        // About 10 ms of input at a time, like a sound card's period.
        let channels = usize::from(self.info.channels);
        let block = (self.info.sample_rate as usize / 100).max(1) * channels;
        let mut buffer = Vec::with_capacity(block);
        let scale_int = 1.0 / (1u64 << (self.info.bits.saturating_sub(1))) as f32;
        let mut failure = None;
        let mut frames_read: u64 = 0;
        {
            let mut samples = SampleIter::new(&mut self.reader, self.info.is_float, scale_int);
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                buffer.clear();
                for _ in 0..block {
                    match samples.next() {
                        Some(Ok(s)) => buffer.push(s),
                        Some(Err(detail)) => {
                            failure = Some(detail);
                            break;
                        }
                        None => break,
                    }
                }
                // A partial frame at the end of a damaged file is dropped, not misaligned.
                buffer.truncate(buffer.len() - buffer.len() % channels);
                if buffer.is_empty() {
                    break;
                }
                frames_read += (buffer.len() / channels) as u64;
                pipeline
                    .push_interleaved(&buffer, &mut send)
                    .map_err(pipeline_error)?;
                if failure.is_some() || buffer.len() < block {
                    break;
                }
            }
        }
        pipeline.finish(&mut send).map_err(pipeline_error)?;
        let secs = pipeline_secs(frames_read, self.info.sample_rate);
        tracing::debug!(secs, rate, "file source finished");
        match failure {
            Some(detail) => Err(WavError::Truncated {
                path: self.path,
                secs,
                detail,
            }),
            None => Ok(secs),
        }
    }
}

/// Reads and validates the header: rate, channels and sample format the app supports.
fn check_spec<R: Read>(reader: &hound::WavReader<R>, path: &Path) -> Result<WavInfo, WavError> {
    let spec = reader.spec();
    let info = WavInfo {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits: spec.bits_per_sample,
        is_float: spec.sample_format == hound::SampleFormat::Float,
        frames: reader.duration(),
    };
    let unsupported = |detail: String| WavError::Unsupported {
        path: path.to_owned(),
        detail,
    };
    if !(8000..=192_000).contains(&info.sample_rate) {
        return Err(unsupported(format!("{} Hz", info.sample_rate)));
    }
    if !(1..=8).contains(&info.channels) {
        return Err(unsupported(format!("{} channels", info.channels)));
    }
    let format_ok = if info.is_float {
        info.bits == 32
    } else {
        matches!(info.bits, 8 | 16 | 24 | 32)
    };
    if !format_ok {
        return Err(unsupported(format!(
            "{}-bit {}",
            info.bits,
            if info.is_float { "float" } else { "integer" }
        )));
    }
    Ok(info)
}

/// Decodes a whole WAV file held in memory, with the same checks and conversion as a file on
/// disk (the fuzzers' entry point). Returns the header and interleaved samples.
pub fn decode_wav_bytes(bytes: &[u8]) -> Result<(WavInfo, Vec<f32>), WavError> {
    let path = Path::new("<memory>");
    let mut reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| WavError::Format {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    let info = check_spec(&reader, path)?;
    let samples = read_samples(&mut reader, info, path)?;
    Ok((info, samples))
}

/// Every sample of an open reader, as f32 in [-1, 1).
fn read_samples<R: Read>(
    reader: &mut hound::WavReader<R>,
    info: WavInfo,
    path: &Path,
) -> Result<Vec<f32>, WavError> {
    let scale = 1.0 / (1u64 << (info.bits.saturating_sub(1))) as f32;
    SampleIter::new(reader, info.is_float, scale)
        .collect::<Result<Vec<f32>, String>>()
        .map_err(|detail| WavError::Truncated {
            path: path.to_owned(),
            secs: 0.0,
            detail,
        })
}

fn pipeline_secs(frames: u64, rate: u32) -> f64 {
    frames as f64 / f64::from(rate)
}

/// hound's sample iterators, unified to f32 in [-1, 1).
enum SampleIter<'a, R: Read> {
    Int(hound::WavSamples<'a, R, i32>, f32),
    Float(hound::WavSamples<'a, R, f32>),
}

impl<'a, R: Read> SampleIter<'a, R> {
    fn new(reader: &'a mut hound::WavReader<R>, is_float: bool, scale: f32) -> Self {
        if is_float {
            SampleIter::Float(reader.samples::<f32>())
        } else {
            SampleIter::Int(reader.samples::<i32>(), scale)
        }
    }
}

impl<R: Read> Iterator for SampleIter<'_, R> {
    type Item = Result<f32, String>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            SampleIter::Int(it, scale) => it
                .next()
                .map(|r| r.map(|s| s as f32 * *scale).map_err(|e| e.to_string())),
            SampleIter::Float(it) => it.next().map(|r| {
                r.map(|s| if s.is_finite() { s } else { 0.0 })
                    .map_err(|e| e.to_string())
            }),
        }
    }
}

/// Reads a whole WAV file into interleaved f32 samples (tests and benchmarks).
pub fn read_all(path: &Path) -> Result<(WavInfo, Vec<f32>), WavError> {
    let mut source = WavSource::open(path)?;
    let info = source.info;
    let samples = read_samples(&mut source.reader, info, path)?;
    Ok((info, samples))
}

/// Sample format for [`write_wav`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    Int(u16),
    Float32,
}

/// Writes mono samples to a WAV file with `channels` identical channels (test signals, samples).
pub fn write_wav(
    path: &Path,
    mono: &[f32],
    rate: u32,
    channels: u16,
    format: WavFormat,
) -> Result<(), hound::Error> {
    let (bits, sample_format) = match format {
        WavFormat::Int(bits) => (bits, hound::SampleFormat::Int),
        WavFormat::Float32 => (32, hound::SampleFormat::Float),
    };
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for &s in mono {
        for _ in 0..channels {
            match format {
                WavFormat::Float32 => writer.write_sample(s)?,
                WavFormat::Int(8) => {
                    writer.write_sample((s * 128.0).round().clamp(-128.0, 127.0) as i8)?;
                }
                WavFormat::Int(16) => writer.write_sample(super::encode::f32_to_i16(s))?,
                WavFormat::Int(bits) => {
                    let full = f64::from(1u32 << (bits - 1));
                    let v = (f64::from(s) * full).round().clamp(-full, full - 1.0) as i32;
                    writer.write_sample(v)?;
                }
            }
        }
    }
    writer.finalize()
}
