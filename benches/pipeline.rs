//! Resample + encode throughput (criterion): 48 kHz stereo f32 → 16 kHz linear16.
//! `cargo bench --bench pipeline`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lightning_dictate::audio::{ChunkFormat, ChunkPipeline};
use lightning_dictate::protocol::{Encoding, SampleRate};

fn stereo_48k(secs: f64) -> Vec<f32> {
    let frames = (48000.0 * secs) as usize;
    (0..frames)
        .flat_map(|i| {
            let t = i as f32 / 48000.0;
            let l = 0.4 * (std::f32::consts::TAU * 440.0 * t).sin();
            let r = 0.3 * (std::f32::consts::TAU * 1250.0 * t).sin();
            [l, r]
        })
        .collect()
}

fn pipeline(encoding: Encoding) -> ChunkPipeline {
    let format = ChunkFormat {
        encoding,
        sample_rate: SampleRate::Hz16000,
        chunk_ms: 20,
    };
    match ChunkPipeline::new(48000, 2, format) {
        Ok(p) => p,
        Err(e) => panic!("pipeline: {e}"),
    }
}

fn throughput(c: &mut Criterion) {
    let one_second = stereo_48k(1.0);
    let mut group = c.benchmark_group("resample_encode_48k_stereo_to_16k");
    // Elements = seconds of audio, so criterion's "elem/s" reads as times real time.
    group.throughput(Throughput::Elements(1));
    for encoding in [Encoding::Linear16, Encoding::Mulaw] {
        let mut p = pipeline(encoding);
        group.bench_function(encoding.as_str(), |b| {
            b.iter(|| {
                let mut bytes = 0usize;
                let pushed = p.push_interleaved(black_box(&one_second), &mut |chunk| {
                    bytes += chunk.bytes.len();
                });
                black_box((pushed.is_ok(), bytes))
            });
        });
    }
    group.finish();

    let twenty_ms = stereo_48k(0.02);
    let mut p = pipeline(Encoding::Linear16);
    c.bench_function("one_20ms_chunk_48k_stereo_to_16k_linear16", |b| {
        b.iter(|| {
            let mut chunks = 0usize;
            let pushed = p.push_interleaved(black_box(&twenty_ms), &mut |_| chunks += 1);
            black_box((pushed.is_ok(), chunks))
        });
    });
}

criterion_group!(benches, throughput);
criterion_main!(benches);
