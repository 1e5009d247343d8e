//! Server text frames: parsing must never panic, and whatever parses must feed the transcript
//! without panicking either (absurd times included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightning_dictate::protocol::{ServerMessage, parse_client_control, parse_server_message};
use lightning_dictate::session::{FinalSegment, SessionEvent};
use lightning_dictate::transcript::Transcript;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_client_control(text);
    if let Ok(ServerMessage::Transcript(message)) = parse_server_message(text) {
        let mut transcript = Transcript::default();
        let event = if message.is_final {
            SessionEvent::Final(FinalSegment {
                text: message.transcript,
                language: message.language,
                words: message.word_timestamps.unwrap_or_default(),
                is_last: message.is_last,
                audio_sent_secs: 1.0,
                unconfirmed: false,
            })
        } else {
            SessionEvent::Interim {
                text: message.transcript,
            }
        };
        transcript.apply(&event);
        let _ = transcript.to_srt();
        let _ = transcript.to_vtt();
        let _ = transcript.to_json();
    }
});
