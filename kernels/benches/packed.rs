//! Bench command for the packed f16 product: the decoder's shapes (the output projection
//! 51865 × 512, a layer's 512 × 512, 2048 × 512 and 512 × 2048) with 1, 5 (beam search) and
//! 10 rows; time per product and the weights read per second.
//! `RAYON_NUM_THREADS=2 cargo bench -p lightning-kernels --bench packed`.
#![allow(clippy::cast_precision_loss, reason = "timings and small test values")]

use std::time::Instant;

use half::f16;
use lightning_kernels::Packed;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for (n, k) in [(51865usize, 512usize), (512, 512), (2048, 512), (512, 2048)] {
        let w: Vec<f16> = (0..n * k)
            .map(|i| f16::from_f32(((i * 37 % 101) as f32 - 50.0) / 640.0))
            .collect();
        let Some(packed) = Packed::new(&w, k) else {
            eprintln!("{n} x {k}: not packed");
            return;
        };
        for rows in [1usize, 5, 10] {
            let x: Vec<f32> = (0..rows * k).map(|i| (i % 13) as f32 / 13.0).collect();
            let reps = if n > 10_000 { 50 } else { 2000 };
            let mut sink = packed.product(&x, rows, None).first().copied();
            let started = Instant::now();
            for _ in 0..reps {
                sink = packed.product(&x, rows, None).first().copied();
            }
            let secs = started.elapsed().as_secs_f64() / f64::from(reps);
            println!(
                "{n} x {k}, {rows} rows: {:.3} ms, {:.1} GB/s of weights{}",
                secs * 1e3,
                (n * k * 2) as f64 / secs / 1e9,
                if sink.is_some_and(f32::is_nan) {
                    " (NaN)"
                } else {
                    ""
                }
            );
        }
    }
}
