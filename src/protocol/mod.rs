//! The Lightning streaming speech-to-text protocol: stream parameters, the URL, the API key and the
//! server's messages. Pure code, no I/O, so it is easy to test and fuzz.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod endpoint;
mod key;
mod message;

pub use endpoint::{
    Dialect, Endpoint, PULSE_LIVE_URL, PULSE_URL, UrlError, build_endpoint, is_loopback_host,
    websocket_config,
};
pub use key::ApiKey;
pub use message::{
    CLOSE_STREAM_MESSAGE, ClientControl, END_MESSAGE, ParseError, ServerMessage, TranscriptMessage,
    WordTimestamp, parse_client_control, parse_server_message,
};

/// The endpoint named by the API document.
pub const DEFAULT_URL: &str = "wss://waves-api.smallest.ai/api/v1/lightning/get_text";

/// Paths the service has used for the same protocol; the local server accepts all of them.
pub const KNOWN_PATHS: [&str; 4] = [
    "/api/v1/lightning/get_text",
    "/waves/v1/lightning/get_text",
    "/waves/v1/pulse/get_text",
    "/waves/v1/stt/live",
];

/// A parameter value that is not one the API allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} `{value}` is not supported; allowed: {allowed}")]
pub struct InvalidParam {
    /// The query parameter (`encoding`, `sample_rate`, ...).
    pub name: &'static str,
    /// What was given.
    pub value: String,
    /// The allowed values, comma separated, for the message.
    pub allowed: String,
}

/// How audio samples are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Signed 16-bit little-endian PCM.
    #[default]
    Linear16,
    /// Signed 32-bit little-endian integer PCM. The API document does not say integer or float;
    /// integer is the choice, made here and only here.
    Linear32,
    /// G.711 A-law, one byte a sample.
    Alaw,
    /// G.711 µ-law, one byte a sample.
    Mulaw,
}

impl Encoding {
    /// Every encoding, in the API document's order.
    pub const ALL: [Encoding; 4] = [
        Encoding::Linear16,
        Encoding::Linear32,
        Encoding::Alaw,
        Encoding::Mulaw,
    ];

    /// The value of the `encoding` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Linear16 => "linear16",
            Encoding::Linear32 => "linear32",
            Encoding::Alaw => "alaw",
            Encoding::Mulaw => "mulaw",
        }
    }

    /// Bytes one mono sample takes on the wire.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::Linear16 => 2,
            Encoding::Linear32 => 4,
            Encoding::Alaw | Encoding::Mulaw => 1,
        }
    }

    /// The rate the encoding is meant for, if it has one (G.711 is telephone audio).
    pub fn suggested_rate(self) -> Option<SampleRate> {
        match self {
            Encoding::Alaw | Encoding::Mulaw => Some(SampleRate::Hz8000),
            Encoding::Linear16 | Encoding::Linear32 => None,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Encoding {
    type Err = InvalidParam;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Encoding::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| InvalidParam {
                name: "encoding",
                value: s.to_owned(),
                allowed: join(Encoding::ALL.iter().map(|e| e.as_str())),
            })
    }
}

/// The sample rates the API accepts. Audio is mono; the server does not resample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SampleRate {
    Hz8000,
    #[default]
    Hz16000,
    Hz22050,
    Hz24000,
    Hz44100,
    Hz48000,
}

impl SampleRate {
    /// Every rate, ascending.
    pub const ALL: [SampleRate; 6] = [
        SampleRate::Hz8000,
        SampleRate::Hz16000,
        SampleRate::Hz22050,
        SampleRate::Hz24000,
        SampleRate::Hz44100,
        SampleRate::Hz48000,
    ];

    /// Samples per second.
    pub fn hz(self) -> u32 {
        match self {
            SampleRate::Hz8000 => 8000,
            SampleRate::Hz16000 => 16000,
            SampleRate::Hz22050 => 22050,
            SampleRate::Hz24000 => 24000,
            SampleRate::Hz44100 => 44100,
            SampleRate::Hz48000 => 48000,
        }
    }

    /// The rate as the query string (and the command line) writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SampleRate::Hz8000 => "8000",
            SampleRate::Hz16000 => "16000",
            SampleRate::Hz22050 => "22050",
            SampleRate::Hz24000 => "24000",
            SampleRate::Hz44100 => "44100",
            SampleRate::Hz48000 => "48000",
        }
    }

    /// The rate with this many samples per second, if the API allows it.
    pub fn from_hz(hz: u32) -> Option<SampleRate> {
        SampleRate::ALL.into_iter().find(|r| r.hz() == hz)
    }
}

impl fmt::Display for SampleRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.hz())
    }
}

impl FromStr for SampleRate {
    type Err = InvalidParam;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<u32>()
            .ok()
            .and_then(SampleRate::from_hz)
            .ok_or_else(|| InvalidParam {
                name: "sample_rate",
                value: s.to_owned(),
                allowed: join(SampleRate::ALL.iter().map(|r| r.hz().to_string())),
            })
    }
}

impl Serialize for SampleRate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.hz())
    }
}

impl<'de> Deserialize<'de> for SampleRate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hz = u32::deserialize(d)?;
        SampleRate::from_hz(hz)
            .ok_or_else(|| serde::de::Error::custom(format!("unsupported sample rate {hz}")))
    }
}

/// The languages of the API document, plus automatic detection.
/// (code, English name); `multi` comes last.
const LANGUAGES: [(&str, &str); 33] = [
    ("it", "Italian"),
    ("es", "Spanish"),
    ("en", "English"),
    ("pt", "Portuguese"),
    ("hi", "Hindi"),
    ("de", "German"),
    ("fr", "French"),
    ("uk", "Ukrainian"),
    ("ru", "Russian"),
    ("kn", "Kannada"),
    ("ml", "Malayalam"),
    ("pl", "Polish"),
    ("mr", "Marathi"),
    ("gu", "Gujarati"),
    ("cs", "Czech"),
    ("sk", "Slovak"),
    ("te", "Telugu"),
    ("or", "Odia"),
    ("nl", "Dutch"),
    ("bn", "Bengali"),
    ("lv", "Latvian"),
    ("et", "Estonian"),
    ("ro", "Romanian"),
    ("pa", "Punjabi"),
    ("fi", "Finnish"),
    ("sv", "Swedish"),
    ("bg", "Bulgarian"),
    ("ta", "Tamil"),
    ("hu", "Hungarian"),
    ("da", "Danish"),
    ("lt", "Lithuanian"),
    ("mt", "Maltese"),
    ("multi", "Automatic (multi)"),
];

/// Number of entries in [`LANGUAGES`]: the document lists 32 language codes plus `multi`.
const LANGUAGE_COUNT: usize = LANGUAGES.len();

/// A transcription language: one of the 32 codes of the API document, or `multi`.
///
/// Stored as an index into a fixed table, so it is `Copy` and cannot hold an unsupported code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language(u8);

impl Language {
    /// English, the API's default.
    pub const ENGLISH: Language = Language(2);
    /// Automatic language detection.
    pub const MULTI: Language = Language(32);

    /// Every language in the API document's order, `multi` last.
    pub fn all() -> impl Iterator<Item = Language> {
        (0..LANGUAGE_COUNT as u8).map(Language)
    }

    /// The query-parameter code (`en`, `multi`, ...).
    pub fn code(self) -> &'static str {
        LANGUAGES[usize::from(self.0)].0
    }

    /// The English name, for pickers.
    pub fn name(self) -> &'static str {
        LANGUAGES[usize::from(self.0)].1
    }

    /// Whether this is automatic detection.
    pub fn is_multi(self) -> bool {
        self == Language::MULTI
    }

    /// The language with this code, if the API supports it.
    pub fn from_code(code: &str) -> Option<Language> {
        LANGUAGES
            .iter()
            .position(|(c, _)| *c == code)
            .and_then(|i| u8::try_from(i).ok())
            .map(Language)
    }

    /// Every code, comma separated, for error messages.
    pub fn allowed_codes() -> String {
        join(Language::all().map(Language::code))
    }
}

impl Default for Language {
    fn default() -> Self {
        Language::ENGLISH
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({})", self.code())
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Language {
    type Err = InvalidParam;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Language::from_code(s).ok_or_else(|| InvalidParam {
            name: "language",
            value: s.to_owned(),
            allowed: Language::allowed_codes(),
        })
    }
}

impl Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything the query string carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamParams {
    pub language: Language,
    pub encoding: Encoding,
    pub sample_rate: SampleRate,
    pub word_timestamps: bool,
}

impl StreamParams {
    /// The query string (without `?`), all four parameters always explicit.
    pub fn query(&self) -> String {
        format!(
            "language={}&encoding={}&sample_rate={}&word_timestamps={}",
            self.language.code(),
            self.encoding.as_str(),
            self.sample_rate.hz(),
            self.word_timestamps
        )
    }

    /// Parses a query string the way the local server must: the document's defaults for missing
    /// parameters, unknown parameters ignored, any bad value refused.
    pub fn from_query(query: &str) -> Result<StreamParams, InvalidParam> {
        let mut params = StreamParams::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "language" => params.language = value.parse()?,
                "encoding" => params.encoding = value.parse()?,
                "sample_rate" => params.sample_rate = value.parse()?,
                "word_timestamps" => {
                    params.word_timestamps = match value {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(InvalidParam {
                                name: "word_timestamps",
                                value: value.to_owned(),
                                allowed: "true, false".to_owned(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(params)
    }

    /// Bytes of one second of audio in these parameters.
    pub fn bytes_per_second(&self) -> usize {
        self.sample_rate.hz() as usize * self.encoding.bytes_per_sample()
    }
}

pub(crate) fn join<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn thirty_three_languages_with_names() {
        let all: Vec<_> = Language::all().collect();
        assert_eq!(all.len(), 33);
        assert_eq!(all.last().copied(), Some(Language::MULTI));
        assert_eq!(Language::ENGLISH.code(), "en");
        assert_eq!(Language::ENGLISH.name(), "English");
        assert!(
            all.iter()
                .all(|l| !l.name().is_empty() && !l.code().is_empty())
        );
        assert!("xx".parse::<Language>().is_err());
        assert!("".parse::<Language>().is_err());
    }

    #[test]
    fn url_has_all_four_parameters() {
        let params = StreamParams {
            language: Language::MULTI,
            encoding: Encoding::Mulaw,
            sample_rate: SampleRate::Hz8000,
            word_timestamps: false,
        };
        let ep = build_endpoint(DEFAULT_URL, &params, true).unwrap();
        assert!(ep.is_tls);
        assert_eq!(ep.host, "waves-api.smallest.ai");
        assert_eq!(
            ep.url,
            "wss://waves-api.smallest.ai/api/v1/lightning/get_text?language=multi&encoding=mulaw&sample_rate=8000&word_timestamps=false"
        );
    }

    #[test]
    fn existing_query_is_kept_and_ours_replaced() {
        let ep = build_endpoint(
            "ws://127.0.0.1:9/x?foo=1&language=de",
            &StreamParams::default(),
            true,
        )
        .unwrap();
        assert_eq!(
            ep.url,
            "ws://127.0.0.1:9/x?foo=1&language=en&encoding=linear16&sample_rate=16000&word_timestamps=false"
        );
    }

    #[test]
    fn key_never_goes_over_plain_ws_to_another_host() {
        let p = StreamParams::default();
        assert!(matches!(
            build_endpoint("ws://example.com/a", &p, true),
            Err(UrlError::KeyOverPlainText(_))
        ));
        assert!(build_endpoint("ws://example.com/a", &p, false).is_ok());
        for local in [
            "ws://localhost:8787/a",
            "ws://127.0.0.1/a",
            "ws://127.5.6.7:1/a",
            "ws://[::1]:8787/a",
        ] {
            assert!(build_endpoint(local, &p, true).is_ok(), "{local}");
        }
        assert!(matches!(
            build_endpoint("http://x/a", &p, true),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            build_endpoint("nonsense", &p, true),
            Err(UrlError::Invalid(_))
        ));
    }

    #[test]
    fn api_key_is_never_printed() {
        let key = ApiKey::new("  sk-secret-123 ").unwrap();
        assert_eq!(key.expose(), "sk-secret-123");
        let shown = format!("{key:?} {key} {:?}", Some(&key));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(ApiKey::new("   ").is_none());
    }

    #[test]
    fn parses_the_documented_example() {
        let text = r#"{"session_id":"sess_12345abcde","transcript":"I'm doing great, thank you!",
            "full_transcript":"Hello, how are you? I'm doing great, thank you!","is_final":true,
            "is_last":true,"language":"en","word_timestamps":[{"word":"I'm","start":1.2,"end":1.4}]}"#;
        let ServerMessage::Transcript(m) = parse_server_message(text).unwrap() else {
            panic!("not a transcript");
        };
        assert!(m.is_final && m.is_last);
        assert_eq!(m.language.as_deref(), Some("en"));
        assert_eq!(m.word_timestamps.unwrap()[0].word, "I'm");
    }

    #[test]
    fn tolerates_later_service_versions() {
        let text = r#"{"type":"transcription","transcript":"hi","is_final":true,"words":[{"word":"hi","start":0.1,"end":0.3,"confidence":0.9,"speaker":0},{"word":7}],"extra":{"a":1}}"#;
        let ServerMessage::Transcript(m) = parse_server_message(text).unwrap() else {
            panic!("not a transcript");
        };
        assert_eq!(m.full_transcript, None);
        let words = m.word_timestamps.unwrap();
        assert_eq!(words.len(), 1);
        assert_eq!(words[0].confidence, Some(0.9));
        assert_eq!(
            parse_server_message(r#"{"type":"error","message":"bad audio"}"#).unwrap(),
            ServerMessage::Error {
                message: "bad audio".into()
            }
        );
        assert_eq!(
            parse_server_message(r#"{"type":"speech_started","timestamp":1.0}"#).unwrap(),
            ServerMessage::Event {
                kind: "speech_started".into()
            }
        );
        assert!(parse_server_message("{not json").is_err());
        assert!(parse_server_message("[1,2]").is_err());
        assert!(parse_server_message(r#"{"transcript":5}"#).is_err());
    }

    #[test]
    fn server_side_query_parsing() {
        let p = StreamParams::from_query("encoding=alaw&sample_rate=8000&unknown=1").unwrap();
        assert_eq!(p.encoding, Encoding::Alaw);
        assert_eq!(p.language, Language::ENGLISH);
        assert!(StreamParams::from_query("sample_rate=11025").is_err());
        assert!(StreamParams::from_query("word_timestamps=yes").is_err());
        assert!(StreamParams::from_query("language=xx").is_err());
    }

    #[test]
    fn client_controls() {
        assert_eq!(parse_client_control(END_MESSAGE), ClientControl::End);
        assert_eq!(
            parse_client_control(r#"{"type":"close_stream"}"#),
            ClientControl::End
        );
        assert_eq!(
            parse_client_control(r#"{"type":"finalize"}"#),
            ClientControl::Finalize
        );
        assert_eq!(parse_client_control("junk"), ClientControl::Unknown);
    }

    fn any_params() -> impl Strategy<Value = StreamParams> {
        (0usize..33, 0usize..4, 0usize..6, any::<bool>()).prop_map(|(l, e, r, w)| StreamParams {
            language: Language::all().nth(l).unwrap_or_default(),
            encoding: Encoding::ALL[e],
            sample_rate: SampleRate::ALL[r],
            word_timestamps: w,
        })
    }

    proptest! {
        #[test]
        fn query_round_trips(params in any_params()) {
            let ep = build_endpoint("wss://h.example/p", &params, true).unwrap();
            let query = ep.url.split_once('?').unwrap().1;
            prop_assert_eq!(StreamParams::from_query(query).unwrap(), params);
        }

        #[test]
        fn params_json_round_trips(params in any_params()) {
            let json = serde_json::to_string(&params).unwrap();
            prop_assert_eq!(serde_json::from_str::<StreamParams>(&json).unwrap(), params);
        }

        #[test]
        fn transcript_message_round_trips(
            text in ".{0,40}", is_final in any::<bool>(), is_last in any::<bool>(),
            words in proptest::collection::vec(("[a-z]{1,8}", 0.0f64..1e4, 0.0f64..10.0), 0..5),
        ) {
            let msg = TranscriptMessage {
                session_id: Some("s".into()),
                transcript: text,
                full_transcript: None,
                is_final,
                is_last,
                language: is_final.then(|| "en".to_owned()),
                word_timestamps: Some(words.into_iter().map(|(w, s, d)| WordTimestamp {
                    word: w, start: s, end: s + d, confidence: None,
                }).collect()),
            };
            let json = serde_json::to_string(&msg).unwrap();
            prop_assert_eq!(parse_server_message(&json).unwrap(), ServerMessage::Transcript(msg));
        }

        #[test]
        fn parsing_never_panics(text in ".{0,200}") {
            let _ = parse_server_message(&text);
            let _ = parse_client_control(&text);
        }
    }
}
