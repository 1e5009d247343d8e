//! The real client against the real local server on loopback: every encoding at every sample
//! rate, from WAV files at other rates, channel counts and sample formats.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]

mod common;

use common::*;
use lightning_dictate::audio::wav::{WavFormat, read_all};
use lightning_dictate::protocol::{Encoding, Language, SampleRate, StreamParams};
use lightning_dictate::server::{BackgroundServer, ServerConfig};

/// Source formats, each at a rate none of the targets share... except where noted below.
const SOURCES: [(u32, u16, WavFormat); 8] = [
    (44100, 2, WavFormat::Int(16)),
    (96000, 1, WavFormat::Float32),
    (11025, 3, WavFormat::Int(24)),
    (32000, 2, WavFormat::Int(32)),
    (192_000, 1, WavFormat::Int(16)),
    (12000, 8, WavFormat::Int(8)),
    (88200, 6, WavFormat::Float32),
    (37800, 1, WavFormat::Int(16)),
];

#[test]
fn every_encoding_at_every_rate_arrives_complete_and_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BackgroundServer::start(ServerConfig::loopback(0)).expect("server");
    let mut case = 0;
    for encoding in Encoding::ALL {
        for rate in SampleRate::ALL {
            let (src_rate, channels, format) = SOURCES[case % SOURCES.len()];
            case += 1;
            let (wav, placed) = tone_wav(
                dir.path(),
                &format!("case{case}.wav"),
                &SCRIPT,
                src_rate,
                channels,
                format,
            );
            let params = StreamParams {
                language: Language::MULTI,
                encoding,
                sample_rate: rate,
                word_timestamps: true,
            };
            let run = run_client(server.url(), &wav, params, 20, |_| {});
            let label =
                format!("{encoding} at {rate} Hz from {src_rate} Hz x{channels} {format:?}");
            let summary = run
                .outcome
                .as_ref()
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(run.finals(), script_text(), "{label}");
            assert!(run.interims() >= placed.len(), "{label}: interims");
            // Word times within 15 ms of where they were synthesized: nothing lost or doubled.
            assert_word_times(&run.transcript, &placed, 0.015);
            // Every byte: the stream length equals the file's duration at the target rate.
            let expected_bytes = (placed_duration(&wav) * f64::from(rate.hz())).round() as u64
                * encoding.bytes_per_sample() as u64;
            let diff = summary.bytes_sent.abs_diff(expected_bytes);
            assert!(
                diff <= 2 * encoding.bytes_per_sample() as u64,
                "{label}: {} vs {expected_bytes}",
                summary.bytes_sent
            );
            assert!(
                run.transcript
                    .segments
                    .iter()
                    .all(|s| s.language.as_deref() == Some("en"))
            );
        }
    }
}

fn placed_duration(wav: &std::path::Path) -> f64 {
    let reader = hound::WavReader::open(wav).expect("wav");
    f64::from(reader.duration()) / f64::from(reader.spec().sample_rate)
}

#[test]
fn linear16_at_the_file_rate_arrives_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::loopback(0);
    config.record_sessions = true;
    let server = BackgroundServer::start(config).expect("server");
    for rate in [SampleRate::Hz16000, SampleRate::Hz44100] {
        let (wav, _) = tone_wav(
            dir.path(),
            "exact.wav",
            &SCRIPT,
            rate.hz(),
            1,
            WavFormat::Int(16),
        );
        let params = StreamParams {
            sample_rate: rate,
            ..StreamParams::default()
        };
        let run = run_client(server.url(), &wav, params, 30, |_| {});
        assert!(run.outcome.is_ok(), "{:?}", run.outcome);
        assert_eq!(run.finals(), script_text());
        let record = server
            .records()
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("session record");
        let (_, samples) = read_all(&wav).expect("read");
        let file_bytes: Vec<u8> = samples
            .iter()
            .flat_map(|&s| ((s * 32768.0) as i16).to_le_bytes())
            .collect();
        // The data chunk of the file, independently: hound's raw samples.
        let raw: Vec<u8> = hound::WavReader::open(&wav)
            .expect("wav")
            .samples::<i16>()
            .flat_map(|s| s.expect("sample").to_le_bytes())
            .collect();
        assert_eq!(file_bytes, raw);
        assert_eq!(record.audio.len(), raw.len());
        assert!(record.audio == raw, "audio differs from the file");
        assert!(record.end_received);
        // Word times are always asked for (they say which audio each final covers).
        assert_eq!(
            record.params,
            StreamParams {
                word_timestamps: true,
                ..params
            }
        );
    }
}

#[test]
fn a_file_the_fuzzer_found_goes_through_the_pipeline() {
    // Float samples that overflowed rubato's FFT and made it panic, before samples were tamed.
    let bytes = std::fs::read("tests/data/fuzz-fft-overflow.wav").expect("fixture");
    let (info, frames) = lightning_dictate::audio::wav::decode_wav_bytes(&bytes).expect("decodes");
    for rate in SampleRate::ALL {
        let format = lightning_dictate::audio::ChunkFormat {
            encoding: Encoding::Linear16,
            sample_rate: rate,
            chunk_ms: 20,
        };
        let mut pipeline =
            lightning_dictate::audio::ChunkPipeline::new(info.sample_rate, info.channels, format)
                .expect("pipeline");
        let mut samples = 0u64;
        pipeline
            .push_interleaved(&frames, &mut |c| samples += u64::from(c.samples))
            .expect("push");
        pipeline
            .finish(&mut |c| samples += u64::from(c.samples))
            .expect("finish");
        let expected = (frames.len() as f64 / f64::from(info.channels)) * f64::from(rate.hz())
            / f64::from(info.sample_rate);
        assert_eq!(samples, expected.round() as u64);
    }
}
