//! Voice activity by frame energy with hysteresis and an adaptive noise floor.
//!
//! 20 ms frames. The noise floor follows quiet frames down at once and creeps up slowly (so a
//! steady noise becomes the new floor, but speech does not). A frame is loud when it is well above
//! the floor and above an absolute minimum; speech starts after 2 loud frames in a row and ends
//! after a pause of quiet frames (a lower threshold, so a word's decay does not end it).

/// Frame length at 16 kHz (20 ms).
pub const FRAME: usize = 320;
/// Frames per second.
pub const FRAMES_PER_SECOND: f64 = 50.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// dB above the noise floor that starts speech.
    pub start_above_floor: f32,
    /// dB above the floor a frame needs to keep speech going.
    pub keep_above_floor: f32,
    /// Absolute minimum level of speech, dBFS.
    pub min_level: f32,
    /// Loud frames in a row that start speech.
    pub start_frames: usize,
    /// Quiet frames in a row that end it (the pause).
    pub pause_frames: usize,
    /// How fast the floor may rise, dB per frame.
    pub floor_rise: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            start_above_floor: 12.0,
            keep_above_floor: 6.0,
            min_level: -55.0,
            start_frames: 2,
            pause_frames: 30,
            floor_rise: 0.01,
        }
    }
}

/// What a frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began; the value is how many frames ago it began (the loud frames before).
    SpeechStart { frames_ago: usize },
    /// The pause after speech is complete; the value is how many quiet frames it has.
    SpeechEnd { quiet_frames: usize },
}

#[derive(Debug, Clone)]
pub struct Vad {
    config: VadConfig,
    floor: Option<f32>,
    speaking: bool,
    loud_run: usize,
    quiet_run: usize,
}

/// Level of a frame in dBFS (RMS; −120 for digital silence).
pub fn level_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return -120.0;
    }
    let mean_square = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
    (10.0 * (mean_square + 1e-12).log10()).max(-120.0)
}

impl Vad {
    pub fn new(config: VadConfig) -> Self {
        Self {
            config,
            floor: None,
            speaking: false,
            loud_run: 0,
            quiet_run: 0,
        }
    }

    pub fn config(&self) -> VadConfig {
        self.config
    }

    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Quiet frames since the last loud one, while speaking (0 otherwise).
    pub fn quiet_frames(&self) -> usize {
        if self.speaking { self.quiet_run } else { 0 }
    }

    /// Feeds one frame's level (see [`level_db`]).
    pub fn push(&mut self, db: f32) -> Option<VadEvent> {
        let c = self.config;
        let floor = match self.floor {
            None => db,
            Some(f) if db < f => db,
            Some(f) => f + c.floor_rise,
        };
        // Do not let the floor climb while someone speaks.
        self.floor = Some(if self.speaking {
            self.floor.unwrap_or(floor).min(floor)
        } else {
            floor
        });
        let floor = self.floor.unwrap_or(db).max(-100.0);
        if self.speaking {
            let keep = db >= (floor + c.keep_above_floor).max(c.min_level - 6.0);
            if keep {
                self.quiet_run = 0;
            } else {
                self.quiet_run += 1;
                if self.quiet_run >= c.pause_frames {
                    self.speaking = false;
                    self.loud_run = 0;
                    let quiet_frames = self.quiet_run;
                    self.quiet_run = 0;
                    return Some(VadEvent::SpeechEnd { quiet_frames });
                }
            }
            None
        } else {
            let loud = db >= (floor + c.start_above_floor).max(c.min_level);
            if loud {
                self.loud_run += 1;
                if self.loud_run >= c.start_frames {
                    self.speaking = true;
                    self.quiet_run = 0;
                    return Some(VadEvent::SpeechStart {
                        frames_ago: self.loud_run - 1,
                    });
                }
            } else {
                self.loud_run = 0;
            }
            None
        }
    }
}

/// A pause seen where the audio arrives: a second detector on the stream as the server receives
/// it (at the stream's rate, in its 20 ms frames), raising each of its flags while at least that
/// flag's number of quiet frames follow the voice. The session's own detector sees the same audio
/// later, when it has finished decoding: the flags let it give up an interim that the quiet has
/// made pointless.
#[derive(Debug)]
pub struct PauseWatch {
    vad: Vad,
    frame: usize,
    pending: Vec<f32>,
    marks: Vec<(usize, std::sync::Arc<std::sync::atomic::AtomicBool>)>,
}

impl PauseWatch {
    /// `marks`: quiet frames after the voice, and the flag raised from then on.
    pub fn new(
        config: VadConfig,
        rate_hz: u32,
        marks: Vec<(usize, std::sync::Arc<std::sync::atomic::AtomicBool>)>,
    ) -> Self {
        let frame = (rate_hz as usize / FRAMES_PER_SECOND as usize).max(1);
        Self {
            vad: Vad::new(config),
            frame,
            pending: Vec::with_capacity(frame),
            marks,
        }
    }

    /// More of the stream, as received.
    pub fn push(&mut self, samples: &[f32]) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.frame - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.frame {
                self.vad.push(level_db(&self.pending));
                self.pending.clear();
                let quiet = self.vad.quiet_frames();
                for (frames, flag) in &self.marks {
                    flag.store(quiet >= *frames, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "the values compared are exact binary fractions"
)]
mod tests {
    use super::*;

    fn run(levels: &[f32]) -> Vec<(usize, VadEvent)> {
        let mut vad = Vad::new(VadConfig::default());
        levels
            .iter()
            .enumerate()
            .filter_map(|(i, &db)| vad.push(db).map(|e| (i, e)))
            .collect()
    }

    #[test]
    fn speech_between_pauses_is_one_segment() {
        let mut levels = vec![-70.0; 50];
        levels.extend(vec![-25.0; 40]);
        levels.extend(vec![-70.0; 5]); // a short gap inside the utterance
        levels.extend(vec![-25.0; 40]);
        levels.extend(vec![-70.0; 40]);
        let events = run(&levels);
        assert_eq!(
            events,
            vec![
                (51, VadEvent::SpeechStart { frames_ago: 1 }),
                (164, VadEvent::SpeechEnd { quiet_frames: 30 }),
            ]
        );
    }

    #[test]
    fn a_click_is_not_speech_and_steady_noise_becomes_the_floor() {
        let mut levels = vec![-70.0; 20];
        levels.push(-20.0); // one loud frame
        levels.extend(vec![-70.0; 20]);
        assert!(run(&levels).is_empty());
        // Quiet hum at -50 dBFS after silence: below min_level, never speech.
        let hum: Vec<f32> = std::iter::repeat_n(-70.0, 10)
            .chain(std::iter::repeat_n(-58.0, 500))
            .collect();
        assert!(run(&hum).is_empty());
    }

    #[test]
    fn the_watch_raises_each_flag_after_its_quiet_and_lowers_them_when_the_voice_returns() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let paused = std::sync::Arc::new(AtomicBool::new(false));
        let quieting = std::sync::Arc::new(AtomicBool::new(false));
        // 48 kHz: 960 samples a frame, fed in pieces that do not line up with frames.
        let marks = vec![(8, paused.clone()), (2, quieting.clone())];
        let mut watch = PauseWatch::new(VadConfig::default(), 48_000, marks);
        let frames = |level: f32, n: usize| vec![level; 960 * n];
        let mut feed = |samples: Vec<f32>| {
            for piece in samples.chunks(700) {
                watch.push(piece);
            }
            (
                paused.load(Ordering::Relaxed),
                quieting.load(Ordering::Relaxed),
            )
        };
        assert_eq!(
            feed(frames(0.0001, 20)),
            (false, false),
            "quiet before any voice is no pause"
        );
        assert_eq!(feed(frames(0.1, 20)), (false, false), "speaking");
        assert_eq!(feed(frames(0.0001, 1)), (false, false), "1 quiet frame");
        assert_eq!(
            feed(frames(0.0001, 1)),
            (false, true),
            "2: the voice may have ended"
        );
        assert_eq!(
            feed(frames(0.0001, 5)),
            (false, true),
            "7 quiet frames: a gap between words"
        );
        assert_eq!(feed(frames(0.0001, 1)), (true, true), "the 8th: a pause");
        assert_eq!(feed(frames(0.1, 1)), (false, false), "the voice is back");
    }

    #[test]
    fn levels_are_dbfs() {
        assert!((level_db(&[1.0; 320]) - 0.0).abs() < 1e-3);
        assert!((level_db(&[0.1; 320]) + 20.0).abs() < 1e-3);
        assert_eq!(level_db(&[0.0; 320]), -120.0);
    }
}
