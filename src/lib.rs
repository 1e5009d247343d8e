//! lightning-dictate: dictation over Smallest AI's Lightning streaming speech-to-text API.
//!
//! Data flows one way: an audio source feeds the [`audio`] pipeline (downmix → resample → encode →
//! chunks) into a crossbeam channel; the [`session`] task streams the chunks over a WebSocket and
//! reports [`session::SessionEvent`]s, which build a [`transcript::Transcript`]. The [`server`] is
//! the same protocol on loopback, in front of a recogniser engine: the test tone engine or the
//! offline [`whisper`] recogniser.

pub mod audio;
pub mod channel;
pub mod control;
pub mod desktop;
pub mod dictation;
pub mod history;
pub mod keystore;
pub mod models;
pub mod paths;
pub mod protocol;
pub mod remedy;
pub mod server;
pub mod session;
pub mod tones;
pub mod transcript;
pub mod ui;
pub mod whisper;
