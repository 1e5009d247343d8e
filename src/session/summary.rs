//! What a finished session reports: its totals and the chunk hand-off latency.

/// Totals of a finished session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionSummary {
    pub session_id: Option<String>,
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    pub audio_secs_sent: f64,
    pub finals: u64,
    /// Connections made after the first.
    pub reconnects: u32,
    /// For live audio: time from the device delivering the audio that completed a chunk to that
    /// chunk being handed to the WebSocket, over every chunk.
    pub handoff_latency: Option<LatencySummary>,
}

/// Percentiles of a latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises samples in seconds; `None` when there are none.
    pub fn from_secs(mut samples: Vec<f64>) -> Option<LatencySummary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize] * 1000.0;
        Some(LatencySummary {
            count: samples.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: samples[samples.len() - 1] * 1000.0,
        })
    }
}
