//! The audio input path: WAV bytes through hound and our checks, then the whole pipeline (downmix,
//! resample, every encoding), and the server's decoder on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightning_dictate::audio::encode::Decoder;
use lightning_dictate::audio::wav::decode_wav_bytes;
use lightning_dictate::audio::{ChunkFormat, ChunkPipeline};
use lightning_dictate::protocol::{Encoding, SampleRate};

fuzz_target!(|data: &[u8]| {
    let selector = data.first().copied().unwrap_or(0);
    let encoding = Encoding::ALL[usize::from(selector) % 4];
    let mut samples = Vec::new();
    Decoder::new(encoding).decode_into(data, &mut samples);

    let Ok((info, frames)) = decode_wav_bytes(data) else {
        return;
    };
    // Keep each run short: the first second of audio is plenty.
    let limit = (info.sample_rate as usize * usize::from(info.channels)).min(frames.len());
    let format = ChunkFormat {
        encoding,
        sample_rate: SampleRate::ALL[usize::from(selector / 4) % 6],
        chunk_ms: 20,
    };
    for low_latency in [false, true] {
        let built = if low_latency {
            ChunkPipeline::new_low_latency(info.sample_rate, info.channels, format)
        } else {
            ChunkPipeline::new(info.sample_rate, info.channels, format)
        };
        let Ok(mut pipeline) = built else {
            return;
        };
        let mut total = 0usize;
        let _ = pipeline.push_interleaved(&frames[..limit], &mut |c| total += c.bytes.len());
        let _ = pipeline.finish(&mut |c| total += c.bytes.len());
    }
});
