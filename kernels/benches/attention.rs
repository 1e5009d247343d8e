//! Bench command for the decoder's attention: one query row (greedy decoding) and five (beam
//! search) over 300 and 1500 audio positions (6 and 30 s), 8 heads of 64 (base); time per call.
//! `RAYON_NUM_THREADS=2 cargo bench -p lightning-kernels --bench attention`.
#![allow(clippy::cast_precision_loss, reason = "timings and small test values")]

use std::time::Instant;

use lightning_kernels::{Span, attention};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let width = 512;
    for (rows, positions) in [(1usize, 300usize), (5, 300), (1, 1500), (5, 1500)] {
        let q: Vec<f32> = (0..rows * width).map(|i| (i % 17) as f32 / 17.0).collect();
        let keys: Vec<f32> = (0..positions * width)
            .map(|i| (i % 13) as f32 / 13.0 - 0.5)
            .collect();
        let values: Vec<f32> = keys.iter().map(|v| -v).collect();
        let spans = [Span {
            keys: &keys,
            values: &values,
        }];
        let reps = 1000;
        let mut sink = 0.0;
        let started = Instant::now();
        for _ in 0..reps {
            sink += attention(&q, 8, width, &spans, &|_| usize::MAX, false)
                .0
                .first()
                .copied()
                .unwrap_or_default();
        }
        let secs = started.elapsed().as_secs_f64() / f64::from(reps);
        println!(
            "{rows} rows over {positions} positions: {:.1} us{}",
            secs * 1e6,
            if sink.is_nan() { " (NaN)" } else { "" }
        );
    }
}
