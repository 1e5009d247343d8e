//! Audio: the stages every source shares (downmix, resample, encode, chunk) and the sources (WAV
//! files, the microphone).

pub mod capture;
pub mod devices;
pub mod encode;
pub mod g711;
pub mod missed;
pub mod pipeline;
pub mod resample;
pub mod wav;

pub use pipeline::{AudioChunk, ChunkFormat, ChunkPipeline};
