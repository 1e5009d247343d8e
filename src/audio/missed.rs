//! Audio the microphone never delivered: the device's audio clock falling behind the wall clock.
//!
//! A process that is stopped and continued (Ctrl+Z, `fg`), or starved of the CPU for longer than
//! the sound server keeps audio for it, comes back to a stream that simply goes on: PipeWire keeps
//! nothing for a client that missed its cycles, so the words spoken meanwhile are gone without any
//! error from the audio host. Comparing how much audio arrived with how much time passed shows it:
//! the wall clock runs ahead by the audio that never came. A sound server that kept the audio
//! (PulseAudio does, up to its buffer) delivers it in a burst after the stop, and the lag closes
//! again before it counts.

use std::time::{Duration, Instant};

/// The wall clock must run this far ahead of the audio ...
const LAG_SECS: f64 = 0.3;
/// ... for this long before the audio counts as missed (a catch-up burst comes in milliseconds).
const HOLD: Duration = Duration::from_millis(1500);
/// Device and system clocks drift apart by well under this (a few tens of parts per million is
/// usual); the baseline follows a device that runs slow at up to this rate, so drift is never
/// taken for missed audio.
const DRIFT: f64 = 500e-6;

/// Watches arrivals of audio (frames so far, when) for audio that never came.
#[derive(Debug)]
pub struct MissedAudio {
    rate: f64,
    /// The first arrival (frames, when) and the latest one's time.
    first: Option<(u64, Instant)>,
    last_at: Option<Instant>,
    /// The lag (wall − audio, seconds) taken as normal: the least seen, following slow drift.
    baseline: f64,
    /// Since when the lag has been over the baseline by more than [`LAG_SECS`].
    ahead_since: Option<Instant>,
}

impl MissedAudio {
    pub fn new(rate: u32) -> Self {
        MissedAudio {
            rate: f64::from(rate.max(1)),
            first: None,
            last_at: None,
            baseline: 0.0,
            ahead_since: None,
        }
    }

    /// `frames` of audio have arrived by `at` (counting frames dropped on our side, which are
    /// reported on their own). Returns the seconds of audio found missing, once per gap.
    pub fn arrived(&mut self, frames: u64, at: Instant) -> Option<f64> {
        let (Some((first_frames, first_at)), Some(last_at)) = (self.first, self.last_at) else {
            self.first = Some((frames, at));
            self.last_at = Some(at);
            return None;
        };
        self.last_at = Some(at);
        let wall = at.saturating_duration_since(first_at).as_secs_f64();
        let lag = wall - frames.saturating_sub(first_frames) as f64 / self.rate;
        self.baseline += at.saturating_duration_since(last_at).as_secs_f64() * DRIFT;
        if lag <= self.baseline {
            self.baseline = lag;
        }
        if lag - self.baseline <= LAG_SECS {
            self.ahead_since = None;
            return None;
        }
        let since = *self.ahead_since.get_or_insert(at);
        if at.saturating_duration_since(since) < HOLD {
            return None;
        }
        let missed = lag - self.baseline;
        self.baseline = lag;
        self.ahead_since = None;
        Some(missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arrivals of 40 ms blocks at 16 kHz, `pause` seconds with nothing after the 50th, the
    /// audio of the pause either kept (delivered in a burst) or lost.
    fn run(pause: f64, kept: bool) -> Vec<f64> {
        let mut watch = MissedAudio::new(16000);
        let start = Instant::now();
        let mut found = Vec::new();
        let mut frames = 0u64;
        let mut wall = 0.0;
        for block in 0..200 {
            if block == 50 {
                wall += pause;
                if kept {
                    frames += (pause * 16000.0) as u64;
                }
            }
            wall += 0.04;
            frames += 640;
            found.extend(watch.arrived(frames, start + Duration::from_secs_f64(wall)));
        }
        found
    }

    #[test]
    fn audio_lost_in_a_pause_is_found_once() {
        let found = run(1.0, false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((found[0] - 1.0).abs() < 0.01, "{found:?}");
    }

    #[test]
    fn audio_kept_through_a_pause_or_a_short_stall_is_not_missed() {
        assert!(run(1.0, true).is_empty());
        assert!(run(0.2, false).is_empty());
    }

    #[test]
    fn a_device_clock_slower_than_the_wall_clock_is_not_missed_audio() {
        // 200 ppm slow, for an hour of 40 ms blocks.
        let mut watch = MissedAudio::new(16000);
        let start = Instant::now();
        for block in 1..=90_000u64 {
            let wall = block as f64 * 0.04 * (1.0 + 200e-6);
            assert_eq!(
                watch.arrived(block * 640, start + Duration::from_secs_f64(wall)),
                None
            );
        }
    }
}
