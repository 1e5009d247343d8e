//! Whisper's tokenizer, decoding only: token ids to text through the byte-level BPE vocabulary of
//! `tokenizer.json`, and the special tokens looked up by their text (their ids differ between
//! English-only and multilingual models).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::ModelError;

#[derive(Deserialize)]
struct TokenizerJson {
    model: BpeModel,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

#[derive(Deserialize)]
struct BpeModel {
    vocab: HashMap<String, u32>,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
}

/// The special tokens a decoder needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Specials {
    pub eot: u32,
    pub sot: u32,
    pub transcribe: Option<u32>,
    pub translate: Option<u32>,
    pub no_timestamps: u32,
    pub no_speech: Option<u32>,
    /// `<|startofprev|>`: what precedes previous text given as context.
    pub start_of_prev: Option<u32>,
    /// `<|0.00|>`; every id from here up is a timestamp.
    pub timestamp_begin: u32,
    /// Language code → token id (`en` → `<|en|>`).
    pub languages: Vec<(String, u32)>,
}

#[derive(Debug)]
pub struct Tokenizer {
    /// Token id → its bytes (special tokens: their text).
    pieces: Vec<Vec<u8>>,
    /// Ids at or above this are special (not text).
    first_special: u32,
    pub specials: Specials,
}

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|detail| ModelError::Corrupt {
            path: path.to_path_buf(),
            detail,
        })
    }

    pub fn parse(json: &str) -> Result<Self, String> {
        let parsed: TokenizerJson =
            serde_json::from_str(json).map_err(|e| format!("not a tokenizer.json: {e}"))?;
        let byte_of = unicode_to_byte();
        let mut by_id: HashMap<u32, Vec<u8>> = HashMap::with_capacity(parsed.model.vocab.len());
        for (piece, id) in &parsed.model.vocab {
            let bytes = piece
                .chars()
                .map(|c| byte_of.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .unwrap_or_else(|| piece.as_bytes().to_vec());
            by_id.insert(*id, bytes);
        }
        let first_special = parsed
            .added_tokens
            .iter()
            .map(|t| t.id)
            .min()
            .unwrap_or(u32::MAX);
        let mut named: HashMap<&str, u32> = HashMap::new();
        for t in &parsed.added_tokens {
            by_id.insert(t.id, t.content.as_bytes().to_vec());
            named.insert(t.content.as_str(), t.id);
        }
        let find = |name: &str| named.get(name).copied();
        let need = |name: &str| find(name).ok_or_else(|| format!("no {name} token"));
        let eot = need("<|endoftext|>")?;
        let sot = need("<|startoftranscript|>")?;
        let no_timestamps = need("<|notimestamps|>")?;
        let no_speech = find("<|nospeech|>").or_else(|| find("<|nocaptions|>"));
        let mut languages: Vec<(String, u32)> = parsed
            .added_tokens
            .iter()
            .filter_map(|t| {
                let inner = t.content.strip_prefix("<|")?.strip_suffix("|>")?;
                let is_code = (2..=3).contains(&inner.len())
                    && inner.chars().all(|c| c.is_ascii_lowercase())
                    || inner == "haw"
                    || inner == "yue";
                is_code.then(|| (inner.to_owned(), t.id))
            })
            .collect();
        languages.sort_by_key(|(_, id)| *id);
        let max_id = by_id.keys().copied().max().unwrap_or(0);
        // Timestamps are not always listed in tokenizer.json: they follow <|notimestamps|>.
        let timestamp_begin = find("<|0.00|>").unwrap_or(no_timestamps + 1);
        let mut pieces = vec![Vec::new(); max_id as usize + 1];
        for (id, bytes) in by_id {
            pieces[id as usize] = bytes;
        }
        Ok(Self {
            pieces,
            first_special,
            specials: Specials {
                eot,
                sot,
                transcribe: find("<|transcribe|>"),
                translate: find("<|translate|>"),
                no_timestamps,
                no_speech,
                start_of_prev: find("<|startofprev|>"),
                timestamp_begin,
                languages,
            },
        })
    }

    pub fn language_token(&self, code: &str) -> Option<u32> {
        self.specials
            .languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, id)| *id)
    }

    pub fn is_special(&self, id: u32) -> bool {
        id >= self.first_special
    }

    /// The bytes of one text token (empty for specials and unknown ids).
    pub fn bytes(&self, id: u32) -> &[u8] {
        if self.is_special(id) {
            return &[];
        }
        self.pieces.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Whether a text token ends a sentence (ends in `.`, `?`, `!` or their full-width forms).
    pub fn ends_sentence(&self, id: u32) -> bool {
        let bytes = self.bytes(id);
        [".", "?", "!", "。", "？", "！"]
            .iter()
            .any(|end| bytes.ends_with(end.as_bytes()))
    }

    /// Text of a token sequence; special tokens are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.bytes(id)).copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// GPT-2's reversible byte ↔ printable character map, inverted: character → byte.
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut next = 0;
    for b in 0..=255u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + next);
            next += 1;
        }
    }
    printable
        .into_iter()
        .zip(chars)
        .filter_map(|(b, c)| Some((char::from_u32(c)?, u8::try_from(b).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"{
        "model": {"type": "BPE", "vocab": {"Hello": 0, "Ġworld": 1, "!": 2, "Ċ": 3, "Ã©": 4}},
        "added_tokens": [
            {"id": 5, "content": "<|endoftext|>"},
            {"id": 6, "content": "<|startoftranscript|>"},
            {"id": 7, "content": "<|en|>"},
            {"id": 8, "content": "<|de|>"},
            {"id": 9, "content": "<|transcribe|>"},
            {"id": 10, "content": "<|nocaptions|>"},
            {"id": 11, "content": "<|notimestamps|>"}
        ]
    }"#;

    #[test]
    fn decodes_byte_level_pieces_and_skips_specials() {
        let t = Tokenizer::parse(SMALL).unwrap();
        assert_eq!(t.decode(&[6, 0, 1, 2, 5]), "Hello world!");
        assert_eq!(t.decode(&[3]), "\n");
        assert_eq!(t.decode(&[4]), "é");
        assert_eq!(t.specials.eot, 5);
        assert_eq!(t.specials.timestamp_begin, 12);
        assert_eq!(t.specials.no_speech, Some(10));
        assert_eq!(t.language_token("de"), Some(8));
        assert!(t.is_special(9) && !t.is_special(4));
    }

    #[test]
    fn the_byte_map_covers_every_byte_once() {
        let map = unicode_to_byte();
        assert_eq!(map.len(), 256);
        let mut bytes: Vec<u8> = map.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
    }
}
