//! `tones`: a WAV file of tone words, the language the local test engine understands.

use std::path::PathBuf;

use clap::Args;

use lightning_dictate::audio::wav::{WavFormat, write_wav};
use lightning_dictate::tones;

use super::{exit, fail};

#[derive(Debug, Args)]
pub struct TonesArgs {
    /// Where to write the WAV file.
    pub out: PathBuf,
    /// Segments: each argument is one segment of vocabulary words, e.g. "hello world".
    #[arg(required = true)]
    pub segments: Vec<String>,
    #[arg(long, default_value_t = 16000)]
    pub rate: u32,
    #[arg(long, default_value_t = 1)]
    pub channels: u16,
    /// Bits per sample (8, 16, 24, 32), or 0 for 32-bit float.
    #[arg(long, default_value_t = 16)]
    pub bits: u16,
}

pub fn run(args: &TonesArgs) -> u8 {
    let segments: Vec<Vec<&str>> = args
        .segments
        .iter()
        .map(|s| s.split_whitespace().collect())
        .collect();
    for word in segments.iter().flatten() {
        if tones::word_index(word).is_none() {
            return fail(
                exit::USAGE,
                format!(
                    "`{word}` is not a tone word; use: {}",
                    tones::VOCABULARY.join(", ")
                ),
            );
        }
    }
    let refs: Vec<&[&str]> = segments.iter().map(Vec::as_slice).collect();
    let format = match args.bits {
        0 => WavFormat::Float32,
        8 | 16 | 24 | 32 => WavFormat::Int(args.bits),
        other => {
            return fail(
                exit::USAGE,
                format!("--bits {other}: use 8, 16, 24, 32 or 0"),
            );
        }
    };
    if !(8000..=192_000).contains(&args.rate) || !(1..=8).contains(&args.channels) {
        return fail(exit::USAGE, "use --rate 8000..192000 and --channels 1..8");
    }
    let (samples, _) = tones::synthesize(&refs, args.rate, tones::ToneTiming::default());
    match write_wav(&args.out, &samples, args.rate, args.channels, format) {
        Ok(()) => exit::OK,
        Err(e) => fail(
            exit::AUDIO,
            format!("cannot write {}: {e}", args.out.display()),
        ),
    }
}
