//! Microphone capture with cpal.
//!
//! The device is opened at its own rate, format and channel count. The cpal callback only converts
//! to f32 and pushes into a wait-free ring buffer (rtrb): no allocation, no lock, no blocking, no
//! I/O; overflow is counted, never waited on. A capture thread drains the ring, runs the shared
//! [`ChunkPipeline`] (downmix → low-latency resampler → encode → chunks) and sends chunks into the
//! same crossbeam channel a file source uses. It also reports the input level ~20 times a second
//! and a warning after 3 s of pure silence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SizedSample};
use crossbeam_channel::{Receiver, TrySendError};

use super::devices::{DeviceError, find_input_device};
use super::pipeline::{AudioChunk, ChunkFormat, ChunkPipeline, PipelineError};
use crate::channel::{Sink, WokenSender};

/// Level reports per second of audio.
const LEVELS_PER_SECOND: u32 = 20;
/// Peak below this (dBFS) counts as silence for the "is the mic muted?" warning.
const SILENCE_DBFS: f32 = -70.0;

/// How to capture.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Device name (see [`find_input_device`]); `None` for the default input.
    pub device: Option<String>,
    pub format: ChunkFormat,
    /// Silence-only input for this long raises [`CaptureEvent::Silent`].
    pub silence_warning_after: Duration,
    /// Seconds of audio the callback hand-off holds before it overflows.
    pub handoff_secs: f32,
}

impl CaptureOptions {
    pub fn new(device: Option<String>, format: ChunkFormat) -> Self {
        CaptureOptions {
            device,
            format,
            silence_warning_after: Duration::from_secs(3),
            handoff_secs: 2.0,
        }
    }
}

/// What the capture reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureEvent {
    /// The device is open; nothing heard yet.
    Opened {
        device: String,
        rate: u32,
        channels: u16,
        format: String,
    },
    /// Real samples arrived from the device: dictation is live.
    Listening,
    /// Input level over the last ~50 ms.
    Level { rms_dbfs: f32, peak_dbfs: f32 },
    /// Nothing but silence since capture began: muted or wrong device (never raised once sound
    /// was heard: a pause is not a fault).
    Silent { secs: f32 },
    /// Sound is back after a [`CaptureEvent::Silent`].
    SoundBack,
    /// The callback hand-off overflowed: this many frames were dropped so far.
    Overflow { dropped_frames: u64 },
    /// The network side fell behind by more than the channel holds: chunks dropped so far.
    Backlog { dropped_chunks: u64 },
    /// This much audio never came from the device (the app was stopped, or starved of the CPU
    /// for longer than the sound server keeps audio for it): see [`super::missed`].
    Missed { secs: f64 },
    /// The device failed (unplugged, server gone). Capture stops; what was captured is sent.
    DeviceLost { device: String, detail: String },
}

/// Totals when capture ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureStats {
    pub frames_captured: u64,
    pub secs_sent: f64,
    pub dropped_frames: u64,
    pub dropped_chunks: u64,
    /// Set when the device failed mid-capture.
    pub device_lost: Option<String>,
}

/// Why capture could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The device cannot be found or used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The device exists but refused to record (busy, unplugged).
    #[error("cannot open `{device}` for recording: {detail}: check it is not in use")]
    Open { device: String, detail: String },
    /// The device delivers a sample format cpal gives us no conversion for.
    #[error("`{device}` delivers {format} samples, which are not supported")]
    Format { device: String, format: String },
    /// The device's rate or channel count cannot be converted.
    #[error("`{device}`: {source}")]
    Pipeline {
        device: String,
        #[source]
        source: PipelineError,
    },
    /// The capture worker thread could not start.
    #[error("cannot start the capture thread: {0}")]
    Thread(String),
}

impl CaptureError {
    /// What the user can do about it.
    pub fn remedy(&self) -> crate::remedy::Remedy {
        match self {
            CaptureError::Device(e) => e.remedy(),
            CaptureError::Open { .. } | CaptureError::Format { .. } => {
                crate::remedy::Remedy::PickDevice
            }
            CaptureError::Pipeline { .. } | CaptureError::Thread(_) => crate::remedy::Remedy::None,
        }
    }
}

/// A running capture. Dropping it stops the device; [`Capture::stop`] also flushes the last
/// partial chunk and returns the totals.
pub struct Capture {
    stream: Option<cpal::Stream>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<CaptureStats>>,
    device: String,
}

/// State the callback shares with the capture thread: atomics only.
struct Shared {
    dropped_frames: AtomicU64,
    device_failed: AtomicBool,
    /// Set before the stream is closed on purpose: errors after it are not a lost device.
    closing: AtomicBool,
    /// The callback wakes the capture thread once this many frames have been delivered in all:
    /// about when the next chunk is complete, not at every fragment a sound server hands over
    /// (cpal's PulseAudio host calls back 140 times a second).
    wake_at: AtomicU64,
}

impl Capture {
    /// Opens the device and starts capturing into `chunks` at once: audio queues in the channel
    /// while the connection is still being made, so the first word is never clipped.
    pub fn start(
        options: CaptureOptions,
        chunks: WokenSender<AudioChunk>,
        events: impl Into<Sink<CaptureEvent>>,
    ) -> Result<Capture, CaptureError> {
        let event_tx: Sink<CaptureEvent> = events.into();
        let (device, label) = find_input_device(options.device.as_deref())?;
        let config = device
            .default_input_config()
            .map_err(|e| CaptureError::Open {
                device: label.clone(),
                detail: e.to_string(),
            })?;
        let rate = config.sample_rate();
        let channels = config.channels();
        let sample_format = config.sample_format();
        let pipeline =
            ChunkPipeline::new_low_latency(rate, channels, options.format).map_err(|source| {
                CaptureError::Pipeline {
                    device: label.clone(),
                    source,
                }
            })?;
        let capacity = ((options.handoff_secs.max(0.001) * rate as f32) as usize).max(1)
            * usize::from(channels);
        let (producer, consumer) = rtrb::RingBuffer::<f32>::new(capacity);
        // Arrival times of callbacks, for latency: (frames delivered so far, when).
        let (arrivals_tx, arrivals_rx) = rtrb::RingBuffer::<(u64, Instant)>::new(1024);
        let shared = Arc::new(Shared {
            dropped_frames: AtomicU64::new(0),
            device_failed: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            wake_at: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (error_tx, error_rx) = crossbeam_channel::bounded::<String>(8);

        let worker = Worker {
            consumer,
            arrivals: arrivals_rx,
            pipeline,
            channels: usize::from(channels),
            rate,
            chunks,
            events: event_tx.clone(),
            errors: error_rx,
            shared: Arc::clone(&shared),
            stop: Arc::clone(&stop),
            device: label.clone(),
            silence_warning_after: options.silence_warning_after,
        };
        let thread = std::thread::Builder::new()
            .name("audio-capture".to_owned())
            .spawn(move || worker.run())
            .map_err(|e| CaptureError::Thread(e.to_string()))?;
        let waker = thread.thread().clone();

        let stream_config = cpal::StreamConfig {
            channels,
            sample_rate: rate,
            buffer_size: super::devices::period_for(config.buffer_size(), rate),
        };
        let error_shared = Arc::clone(&shared);
        let error_waker = waker.clone();
        let on_error = move |e: cpal::Error| {
            if error_shared.closing.load(Ordering::SeqCst) {
                return;
            }
            // Not the audio path: allowed to allocate. Tell the worker and wake it.
            error_shared.device_failed.store(true, Ordering::SeqCst);
            let _ = error_tx.try_send(e.to_string());
            error_waker.unpark();
        };
        let hand_off = HandOff {
            producer,
            arrivals: arrivals_tx,
            shared: Arc::clone(&shared),
            waker,
            channels: usize::from(channels),
            delivered: 0,
        };
        macro_rules! build {
            ($t:ty) => {
                device.build_input_stream::<$t, _, _>(
                    stream_config.clone(),
                    {
                        let mut hand_off = hand_off;
                        move |data: &[$t], _: &cpal::InputCallbackInfo| hand_off.push(data)
                    },
                    on_error,
                    Some(Duration::from_secs(5)),
                )
            };
        }
        let built = match sample_format {
            cpal::SampleFormat::I8 => build!(i8),
            cpal::SampleFormat::I16 => build!(i16),
            cpal::SampleFormat::I32 => build!(i32),
            cpal::SampleFormat::U8 => build!(u8),
            cpal::SampleFormat::U16 => build!(u16),
            cpal::SampleFormat::U32 => build!(u32),
            cpal::SampleFormat::F32 => build!(f32),
            cpal::SampleFormat::F64 => build!(f64),
            other => {
                stop.store(true, Ordering::SeqCst);
                return Err(CaptureError::Format {
                    device: label,
                    format: other.to_string(),
                });
            }
        };
        let fail = |detail: String, stop: &AtomicBool| {
            stop.store(true, Ordering::SeqCst);
            CaptureError::Open {
                device: label.clone(),
                detail,
            }
        };
        let stream = built.map_err(|e| fail(e.to_string(), &stop))?;
        event_tx.send(CaptureEvent::Opened {
            device: label.clone(),
            rate,
            channels,
            format: sample_format.to_string(),
        });
        stream.play().map_err(|e| fail(e.to_string(), &stop))?;
        tracing::info!(device = %label, rate, channels, format = %sample_format, "capturing");
        Ok(Capture {
            stream: Some(stream),
            stop,
            shared,
            thread: Some(thread),
            device: label,
        })
    }

    /// The device being captured (`Host: name`).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Whether capture has ended on its own (device lost).
    pub fn has_ended(&self) -> bool {
        self.thread
            .as_ref()
            .is_none_or(std::thread::JoinHandle::is_finished)
    }

    /// Stops the device, flushes the last chunk and closes the chunk channel (which makes the
    /// session send `end`).
    pub fn stop(mut self) -> CaptureStats {
        self.shutdown()
    }

    fn shutdown(&mut self) -> CaptureStats {
        // A host may report the stream it is asked to close as a lost device (cpal's PipeWire
        // host did): errors from here on are not the device's.
        self.shared.closing.store(true, Ordering::SeqCst);
        if let Some(stream) = self.stream.take() {
            let _ = stream.pause();
            drop(stream);
        }
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(thread) => {
                thread.thread().unpark();
                thread.join().unwrap_or_default()
            }
            None => CaptureStats::default(),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the cpal callback owns.
struct HandOff {
    producer: rtrb::Producer<f32>,
    arrivals: rtrb::Producer<(u64, Instant)>,
    shared: Arc<Shared>,
    waker: std::thread::Thread,
    channels: usize,
    delivered: u64,
}

impl HandOff {
    /// The audio callback: convert, push, count what does not fit, wake the worker.
    fn push<T>(&mut self, data: &[T])
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        let free = self.producer.slots();
        let fits = free.min(data.len());
        let fits = fits - fits % self.channels;
        if fits > 0
            && let Ok(chunk) = self.producer.write_chunk_uninit(fits)
        {
            chunk.fill_from_iter(data[..fits].iter().map(|s| s.to_sample::<f32>()));
        }
        let dropped = (data.len() - fits) / self.channels;
        if dropped > 0 {
            self.shared
                .dropped_frames
                .fetch_add(dropped as u64, Ordering::Relaxed);
        }
        self.delivered += (fits / self.channels) as u64;
        let _ = self.arrivals.push((self.delivered, Instant::now()));
        // Wakes the worker once the next chunk can be complete: an atomic swap, and a futex wake
        // only if it sleeps. Never blocks.
        if self.delivered >= self.shared.wake_at.load(Ordering::Relaxed) {
            self.waker.unpark();
        }
    }
}

/// The capture thread.
struct Worker {
    consumer: rtrb::Consumer<f32>,
    arrivals: rtrb::Consumer<(u64, Instant)>,
    pipeline: ChunkPipeline,
    channels: usize,
    rate: u32,
    chunks: WokenSender<AudioChunk>,
    events: Sink<CaptureEvent>,
    errors: Receiver<String>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    device: String,
    silence_warning_after: Duration,
}

/// Level and silence bookkeeping.
#[derive(Default)]
struct Meter {
    sum_squares: f64,
    peak: f32,
    frames: u64,
    silent_frames: u64,
    warned_silent: bool,
    /// Sound came through at least once: the microphone works, and a silence now is the user
    /// pausing, not a muted or wrong device.
    heard: bool,
}

impl Worker {
    fn run(mut self) -> CaptureStats {
        let mut stats = CaptureStats::default();
        let mut scratch: Vec<f32> = Vec::with_capacity(self.consumer.buffer().capacity());
        let mut meter = Meter::default();
        let window = u64::from(self.rate / LEVELS_PER_SECOND).max(1);
        let silence_limit =
            (self.silence_warning_after.as_secs_f64() * f64::from(self.rate)) as u64;
        let mut listening = false;
        let mut reported_drops = 0u64;
        let mut receiver_gone = false;
        let mut consumed: u64 = 0;
        let mut last_arrival: Option<Instant> = None;
        let mut missed = super::missed::MissedAudio::new(self.rate);

        loop {
            let stopping = self.stop.load(Ordering::SeqCst);
            let available = self.consumer.slots();
            let take = available - available % self.channels;
            if take > 0 {
                scratch.clear();
                if let Ok(chunk) = self.consumer.read_chunk(take) {
                    let (a, b) = chunk.as_slices();
                    scratch.extend_from_slice(a);
                    scratch.extend_from_slice(b);
                    chunk.commit_all();
                }
                consumed += (take / self.channels) as u64;
                // The arrival of the newest callback whose audio we now hold.
                let dropped = self.shared.dropped_frames.load(Ordering::Relaxed);
                while let Ok((delivered, at)) = self.arrivals.peek().copied() {
                    if delivered > consumed {
                        break;
                    }
                    last_arrival = Some(at);
                    let _ = self.arrivals.pop();
                    if let Some(secs) = missed.arrived(delivered + dropped, at) {
                        tracing::warn!(secs, "audio never came from the device");
                        self.events.send(CaptureEvent::Missed { secs });
                    }
                }
                if !listening {
                    listening = true;
                    self.events.send(CaptureEvent::Listening);
                }
                self.meter(&scratch, &mut meter, window, silence_limit);
                stats.frames_captured += (take / self.channels) as u64;
                let chunks = &self.chunks;
                let mut dropped_chunks = 0u64;
                let mut gone = receiver_gone;
                let pushed = self.pipeline.push_interleaved(&scratch, &mut |mut chunk| {
                    chunk.captured_at = last_arrival;
                    send_chunk(chunks, chunk, &mut dropped_chunks, &mut gone);
                });
                receiver_gone = gone;
                if let Err(e) = pushed {
                    tracing::error!("capture pipeline: {e}");
                }
                if dropped_chunks > 0 {
                    stats.dropped_chunks += dropped_chunks;
                    self.events.send(CaptureEvent::Backlog {
                        dropped_chunks: stats.dropped_chunks,
                    });
                }
            }
            let drops = self.shared.dropped_frames.load(Ordering::Relaxed);
            if drops != reported_drops {
                reported_drops = drops;
                tracing::warn!(drops, "audio hand-off overflowed");
                self.events.send(CaptureEvent::Overflow {
                    dropped_frames: drops,
                });
            }
            if self.shared.device_failed.load(Ordering::SeqCst) && stats.device_lost.is_none() {
                let detail = self
                    .errors
                    .try_recv()
                    .unwrap_or_else(|_| "the device stopped".to_owned());
                tracing::warn!(device = %self.device, "device lost: {detail}");
                self.events.send(CaptureEvent::DeviceLost {
                    device: self.device.clone(),
                    detail: detail.clone(),
                });
                stats.device_lost = Some(detail);
            }
            if stopping || stats.device_lost.is_some() || receiver_gone {
                // Whatever arrived before the stop was read above; flush the pipeline's tail.
                let chunks = &self.chunks;
                let mut dropped = 0u64;
                let mut gone = receiver_gone;
                let _ = self
                    .pipeline
                    .finish(&mut |chunk| send_chunk(chunks, chunk, &mut dropped, &mut gone));
                stats.dropped_frames = self.shared.dropped_frames.load(Ordering::Relaxed);
                stats.secs_sent = self.pipeline_secs();
                return stats;
            }
            self.shared
                .wake_at
                .store(consumed + self.frames_to_next_chunk(), Ordering::Relaxed);
            // Woken by the callback that can complete the next chunk, by stop and by a device
            // error; the timeout is a fallback.
            std::thread::park_timeout(Duration::from_millis(200));
        }
    }

    /// Device frames until the next chunk is complete, rounded down and less what the resampler
    /// may hold (its block and filter delay, under 4 ms): waking a little early costs one more
    /// wake, waking late would delay the chunk.
    fn frames_to_next_chunk(&self) -> u64 {
        let out_rate = u64::from(self.pipeline.format().sample_rate.hz()).max(1);
        let rate = u64::from(self.rate);
        let needed = self.pipeline.samples_to_next_chunk() as u64 * rate / out_rate;
        let slack = if rate == out_rate { 0 } else { rate * 4 / 1000 };
        needed.saturating_sub(slack)
    }

    fn pipeline_secs(&self) -> f64 {
        let format = self.pipeline.format();
        self.pipeline.samples_out() as f64 / f64::from(format.sample_rate.hz())
    }

    fn meter(&self, frames: &[f32], meter: &mut Meter, window: u64, silence_limit: u64) {
        for frame in frames.chunks_exact(self.channels) {
            for &s in frame {
                meter.sum_squares += f64::from(s) * f64::from(s);
                meter.peak = meter.peak.max(s.abs());
            }
            meter.frames += 1;
            if meter.frames < window {
                continue;
            }
            let samples = (meter.frames * self.channels as u64) as f64;
            let rms = (meter.sum_squares / samples).sqrt() as f32;
            let peak_dbfs = dbfs(meter.peak);
            self.events.send(CaptureEvent::Level {
                rms_dbfs: dbfs(rms),
                peak_dbfs,
            });
            if peak_dbfs < SILENCE_DBFS {
                meter.silent_frames += meter.frames;
                if !meter.heard && !meter.warned_silent && meter.silent_frames >= silence_limit {
                    meter.warned_silent = true;
                    self.events.send(CaptureEvent::Silent {
                        secs: meter.silent_frames as f32 / self.rate as f32,
                    });
                }
            } else {
                meter.silent_frames = 0;
                meter.heard = true;
                if meter.warned_silent {
                    meter.warned_silent = false;
                    self.events.send(CaptureEvent::SoundBack);
                }
            }
            meter.sum_squares = 0.0;
            meter.peak = 0.0;
            meter.frames = 0;
        }
    }
}

/// Sends without ever blocking the capture thread: a full channel drops the chunk and counts it.
fn send_chunk(
    chunks: &WokenSender<AudioChunk>,
    chunk: AudioChunk,
    dropped: &mut u64,
    gone: &mut bool,
) {
    if *gone {
        return;
    }
    match chunks.try_send(chunk) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => *dropped += 1,
        Err(TrySendError::Disconnected(_)) => *gone = true,
    }
}

/// dBFS of a linear amplitude, floored at -120.
pub fn dbfs(amplitude: f32) -> f32 {
    if amplitude <= 1e-6 {
        -120.0
    } else {
        20.0 * amplitude.log10()
    }
}
