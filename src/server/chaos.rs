//! `serve --chaos SEED`: faults the way a real network and a real service make them, at random
//! (seeded, so a run can be repeated), counted on the audio the server has *received*.
//!
//! After every 5 to 20 s of received audio (across connections: replayed audio counts, as it does
//! for a real server) one fault fires: a TCP abort, an error frame then close 1011, a 2-6 s
//! stall, garbage frames, the next handshake refused (429 with `Retry-After: 1`, or 503), a
//! half-open connection (neither reading nor writing, never closing), or a clean close 1000
//! without `is_last`. Each fault is logged as one JSON line.

use std::sync::Mutex;
use std::time::Duration;

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChaosFault {
    /// The TCP connection goes away without a close frame.
    Abort,
    /// `{"type":"error",...}` then close 1011.
    ErrorClose,
    /// Neither reading nor answering for a while.
    Stall(Duration),
    /// A malformed JSON frame, a binary frame and an unknown message.
    Garbage,
    /// The connection is aborted and the next handshake refused with this status.
    RefuseNext {
        status: u16,
        retry_after: Option<u32>,
    },
    /// The connection stops reading and writing without closing: only the client's liveness
    /// timers can tell.
    HalfOpen,
    /// Close 1000 without `is_last`.
    CleanClose,
}

impl ChaosFault {
    pub fn name(&self) -> &'static str {
        match self {
            ChaosFault::Abort => "abort",
            ChaosFault::ErrorClose => "error_close",
            ChaosFault::Stall(_) => "stall",
            ChaosFault::Garbage => "garbage",
            ChaosFault::RefuseNext { .. } => "refuse_next",
            ChaosFault::HalfOpen => "half_open",
            ChaosFault::CleanClose => "clean_close",
        }
    }
}

/// A fault that fired, for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRecord {
    pub fault: ChaosFault,
    pub session_id: String,
    /// Seconds of audio the server had received in all, when it fired.
    pub received_secs: f64,
}

impl FaultRecord {
    /// The record as one JSON line.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::json!({
            "fault": self.fault.name(),
            "session_id": self.session_id,
            "received_secs": (self.received_secs * 1000.0).round() / 1000.0,
        });
        match self.fault {
            ChaosFault::Stall(d) => value["stall_secs"] = serde_json::json!(d.as_secs_f64()),
            ChaosFault::RefuseNext {
                status,
                retry_after,
            } => {
                value["status"] = serde_json::json!(status);
                value["retry_after"] = serde_json::json!(retry_after);
            }
            _ => {}
        }
        value.to_string()
    }
}

/// The seeded schedule, shared by every connection of a server.
#[derive(Debug)]
pub struct Chaos {
    state: Mutex<ChaosState>,
}

#[derive(Debug)]
struct ChaosState {
    rng: u64,
    received_secs: f64,
    next_at: f64,
}

impl Chaos {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed: seeds 1 and 2 give unrelated schedules.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let mut state = ChaosState {
            rng: (z ^ (z >> 31)) | 1,
            received_secs: 0.0,
            next_at: 0.0,
        };
        state.next_at = state.interval();
        Chaos {
            state: Mutex::new(state),
        }
    }

    /// Counts `secs` of received audio; returns the fault due now, if any.
    pub fn on_audio(&self, secs: f64) -> Option<(ChaosFault, f64)> {
        let mut state = self.state.lock().ok()?;
        state.received_secs += secs;
        if state.received_secs < state.next_at {
            return None;
        }
        let at = state.received_secs;
        state.next_at = at + state.interval();
        let fault = match state.below(7) {
            0 => ChaosFault::Abort,
            1 => ChaosFault::ErrorClose,
            2 => ChaosFault::Stall(Duration::from_millis(2000 + state.below(4001))),
            3 => ChaosFault::Garbage,
            4 => {
                let (status, retry_after) = if state.below(2) == 0 {
                    (429, Some(1))
                } else {
                    (503, None)
                };
                ChaosFault::RefuseNext {
                    status,
                    retry_after,
                }
            }
            5 => ChaosFault::HalfOpen,
            _ => ChaosFault::CleanClose,
        };
        Some((fault, at))
    }
}

impl ChaosState {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Seconds of received audio until the next fault: 5 to 20.
    fn interval(&mut self) -> f64 {
        5.0 + self.below(15_001) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(seed: u64) -> Vec<(&'static str, f64)> {
        let chaos = Chaos::new(seed);
        let mut out = Vec::new();
        for _ in 0..20_000 {
            if let Some((fault, at)) = chaos.on_audio(0.01) {
                out.push((fault.name(), at));
            }
        }
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_every_5_to_20_seconds() {
        let a = schedule(7);
        assert_eq!(a, schedule(7));
        assert_ne!(a, schedule(8));
        assert!(a.len() >= 200 / 20 && a.len() <= 200 / 5, "{}", a.len());
        let mut previous = 0.0;
        for (_, at) in &a {
            let gap = at - previous;
            assert!((4.99..=20.02).contains(&gap), "{gap}");
            previous = *at;
        }
        // Over many seeds every kind of fault shows up.
        let kinds: std::collections::BTreeSet<_> =
            (0..20).flat_map(schedule).map(|(name, _)| name).collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
    }
}
