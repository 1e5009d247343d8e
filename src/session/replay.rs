//! What a dictation keeps so that nothing is lost across connections: the audio no final covers
//! yet ([`ReplayBuffer`]), how far the finals have confirmed the timeline ([`Coverage`]), and the
//! filter that keeps a replay's second recognition of already delivered words out of the
//! transcript ([`Dedupe`]).
//!
//! The rule that never guesses: audio is released only when a final's word times say it was
//! recognised, or when the server's `is_last` confirms everything it was sent. A final without
//! word times releases nothing; its words are remembered instead, and when a replay recognises
//! them again they are recognised by aligning the texts and dropped.

use std::collections::VecDeque;

use tokio_tungstenite::tungstenite::Bytes;

use crate::protocol::WordTimestamp;

/// One chunk as sent on the wire, with its place on the dictation's timeline.
#[derive(Clone)]
pub(crate) struct SentChunk {
    pub first_sample: u64,
    pub samples: u32,
    pub bytes: Bytes,
}

impl SentChunk {
    fn end_sample(&self) -> u64 {
        self.first_sample + u64::from(self.samples)
    }
}

/// Audio that no final covers yet, in order: what a new connection must hear again.
pub(crate) struct ReplayBuffer {
    chunks: VecDeque<SentChunk>,
    samples: u64,
    limit_samples: u64,
    /// Unconfirmed audio dropped at the limit since the last release, as a sample range: lost for
    /// good if the connection fails before a final covers it.
    dropped: Option<(u64, u64)>,
}

impl ReplayBuffer {
    pub fn new(limit_samples: u64) -> Self {
        ReplayBuffer {
            chunks: VecDeque::new(),
            samples: 0,
            limit_samples: limit_samples.max(1),
            dropped: None,
        }
    }

    /// Samples kept.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Whether the buffer holds its limit: a source that can wait must wait.
    pub fn is_full(&self) -> bool {
        self.samples >= self.limit_samples
    }

    /// Where the kept audio begins (`None` when nothing is kept).
    pub fn start_sample(&self) -> Option<u64> {
        self.chunks.front().map(|c| c.first_sample)
    }

    pub fn chunks(&self) -> impl Iterator<Item = &SentChunk> {
        self.chunks.iter()
    }

    /// Adds a chunk; returns the samples dropped from the front to stay within the limit.
    pub fn push(&mut self, chunk: SentChunk) -> u64 {
        self.samples += u64::from(chunk.samples);
        self.chunks.push_back(chunk);
        let mut dropped = 0;
        while self.samples > self.limit_samples {
            let Some(old) = self.chunks.pop_front() else {
                break;
            };
            self.samples -= u64::from(old.samples);
            dropped += u64::from(old.samples);
            let range = self
                .dropped
                .get_or_insert((old.first_sample, old.end_sample()));
            range.1 = old.end_sample();
        }
        dropped
    }

    /// Adds a chunk, whatever the limit (a source that waits keeps the buffer near it).
    pub fn push_keep(&mut self, chunk: SentChunk) {
        self.samples += u64::from(chunk.samples);
        self.chunks.push_back(chunk);
    }

    /// Forgets the chunks that end at or before `sample` (covered by a final).
    pub fn release_until(&mut self, sample: u64) {
        while let Some(front) = self.chunks.front() {
            if front.end_sample() > sample {
                break;
            }
            self.samples -= u64::from(front.samples);
            self.chunks.pop_front();
        }
        if let Some((start, end)) = self.dropped {
            if end <= sample {
                self.dropped = None;
            } else if start < sample {
                self.dropped = Some((sample, end));
            }
        }
    }

    /// Forgets everything: the server confirmed all it was sent.
    pub fn release_all(&mut self) {
        self.chunks.clear();
        self.samples = 0;
        self.dropped = None;
    }

    /// The unconfirmed audio dropped at the limit, if any; forgotten once taken.
    pub fn take_dropped(&mut self) -> Option<(u64, u64)> {
        self.dropped.take()
    }
}

/// Audio kept before a final's last word end when releasing (see [`Coverage::on_final`]).
const RELEASE_MARGIN_SECS: f64 = 0.25;

/// How far the finals received so far vouch for the timeline.
#[derive(Debug, Default, Clone)]
pub(crate) struct Coverage {
    /// Seconds on the dictation's timeline up to which timed finals delivered every word.
    pub confirmed_secs: f64,
    /// Words of finals without word times whose audio is still kept for replay, in order.
    pub untimed: Vec<String>,
    /// Whether a final on the current connection came without word times.
    pub saw_untimed: bool,
}

impl Coverage {
    /// Takes a delivered final (times on the dictation's timeline); returns the sample up to which
    /// the replay buffer may be released.
    pub fn on_final(&mut self, text: &str, words: &[WordTimestamp], rate: u32) -> Option<u64> {
        if let Some(last) = words.last() {
            self.confirmed_secs = self.confirmed_secs.max(last.end);
            self.untimed.clear();
            // Word times from a real recogniser are approximate: keep a little audio before
            // the reported end, so a late time never releases the start of the next word.
            // A replay hears that word's tail again; the dedupe drops it by its time.
            let keep_from = (last.end - RELEASE_MARGIN_SECS).max(0.0);
            Some((keep_from * f64::from(rate)) as u64)
        } else {
            if !text.trim().is_empty() {
                self.saw_untimed = true;
                self.untimed
                    .extend(text.split_whitespace().map(str::to_owned));
            }
            None
        }
    }

    /// Everything sent was confirmed (`is_last`) up to `secs`.
    pub fn confirm_all(&mut self, secs: f64) {
        self.confirmed_secs = self.confirmed_secs.max(secs);
        self.untimed.clear();
    }
}

/// Removes, from the finals of a connection that replays audio, the words an earlier connection
/// already delivered.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dedupe {
    /// Timed words whose middle lies before this point (on the dictation's timeline) were
    /// delivered already.
    confirmed_secs: f64,
    /// Untimed words delivered already, expected again at the start of the replay.
    expected: VecDeque<String>,
}

impl Dedupe {
    pub fn new(coverage: &Coverage) -> Self {
        Dedupe {
            confirmed_secs: coverage.confirmed_secs,
            expected: coverage.untimed.iter().cloned().collect(),
        }
    }

    /// Filters one final: returns its text and words without the repeated leading words, and how
    /// many words were dropped.
    pub fn filter(
        &mut self,
        text: &str,
        words: Vec<WordTimestamp>,
    ) -> (String, Vec<WordTimestamp>, usize) {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let mut drop_timed = words
            .iter()
            .take_while(|w| f64::midpoint(w.start, w.end) < self.confirmed_secs)
            .count();
        // The text's tokens follow the words one to one when the counts agree; otherwise the
        // timed rule cannot say which tokens to drop, and only the text alignment is used.
        if words.len() != tokens.len() {
            drop_timed = 0;
        }
        let dropped = drop_timed + align_prefix(&mut self.expected, &tokens[drop_timed..]);
        if dropped == 0 {
            return (text.trim().to_owned(), words, 0);
        }
        let kept_text = tokens[dropped..].join(" ");
        let kept_words = if words.len() == tokens.len() {
            words.into_iter().skip(dropped).collect()
        } else {
            words
        };
        (kept_text, kept_words, dropped)
    }
}

/// How many leading `tokens` repeat the `expected` words (consumed as they match). Tolerates one
/// expected word missing from the repeat (a word cut at the replay's start is heard differently).
fn align_prefix(expected: &mut VecDeque<String>, tokens: &[&str]) -> usize {
    let mut matched = 0;
    for token in tokens {
        let Some(first) = expected.front() else {
            break;
        };
        let token = normalize(token);
        if normalize(first) == token {
            expected.pop_front();
        } else if expected
            .get(1)
            .is_some_and(|second| normalize(second) == token)
        {
            expected.pop_front();
            expected.pop_front();
        } else {
            // Not a repeat: the replay has moved past what was delivered.
            expected.clear();
            break;
        }
        matched += 1;
    }
    matched
}

fn normalize(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "the values compared are exact binary fractions"
)]
mod tests {
    use super::*;

    fn chunk(first: u64, samples: u32) -> SentChunk {
        SentChunk {
            first_sample: first,
            samples,
            bytes: Bytes::new(),
        }
    }

    fn word(w: &str, start: f64, end: f64) -> WordTimestamp {
        WordTimestamp {
            word: w.to_owned(),
            start,
            end,
            confidence: None,
        }
    }

    #[test]
    fn the_replay_buffer_drops_the_oldest_at_its_limit_and_remembers_the_range() {
        let mut buffer = ReplayBuffer::new(300);
        for i in 0..4 {
            buffer.push(chunk(i * 100, 100));
        }
        assert_eq!(buffer.samples(), 300);
        assert!(buffer.is_full());
        assert_eq!(buffer.start_sample(), Some(100));
        assert_eq!(buffer.take_dropped(), Some((0, 100)));
        assert_eq!(buffer.take_dropped(), None);
    }

    #[test]
    fn a_release_past_the_dropped_audio_means_nothing_was_lost() {
        let mut buffer = ReplayBuffer::new(200);
        for i in 0..4 {
            buffer.push(chunk(i * 100, 100));
        }
        // Dropped 0..200, then a final covers up to 250.
        buffer.release_until(250);
        assert_eq!(buffer.take_dropped(), None);
        assert_eq!(
            buffer.start_sample(),
            Some(200),
            "the chunk 200..300 is not fully covered"
        );
        let mut buffer = ReplayBuffer::new(200);
        for i in 0..4 {
            buffer.push(chunk(i * 100, 100));
        }
        buffer.release_until(150);
        assert_eq!(buffer.take_dropped(), Some((150, 200)));
    }

    #[test]
    fn untimed_finals_release_nothing_and_are_remembered() {
        let mut coverage = Coverage::default();
        assert_eq!(coverage.on_final("one two", &[], 16000), None);
        assert_eq!(coverage.untimed, ["one", "two"]);
        let release = coverage.on_final("three", &[word("three", 1.0, 1.5)], 16000);
        assert_eq!(
            release,
            Some(20000),
            "a quarter second before the end is kept"
        );
        assert!(coverage.untimed.is_empty());
        assert_eq!(coverage.confirmed_secs, 1.5);
    }

    #[test]
    fn timed_words_before_the_confirmed_point_are_dropped_once() {
        let coverage = Coverage {
            confirmed_secs: 2.0,
            ..Coverage::default()
        };
        let mut dedupe = Dedupe::new(&coverage);
        let words = vec![word("lost", 1.8, 1.98), word("one", 2.3, 2.5)];
        let (text, kept, dropped) = dedupe.filter("lost one", words);
        assert_eq!((text.as_str(), dropped), ("one", 1));
        assert_eq!(kept.len(), 1);
        let (text, _, dropped) = dedupe.filter("two", vec![word("two", 2.6, 2.8)]);
        assert_eq!((text.as_str(), dropped), ("two", 0));
    }

    #[test]
    fn untimed_repeats_are_aligned_across_finals() {
        let coverage = Coverage {
            untimed: ["hello", "world", "one", "two"].map(String::from).to_vec(),
            ..Coverage::default()
        };
        let mut dedupe = Dedupe::new(&coverage);
        assert_eq!(dedupe.filter("Hello, world.", vec![]).0, "");
        assert_eq!(dedupe.filter("one two three", vec![]).0, "three");
        assert_eq!(dedupe.filter("one", vec![]).0, "one", "a new 'one' is kept");
    }

    #[test]
    fn a_word_cut_at_the_replay_start_is_tolerated() {
        let coverage = Coverage {
            untimed: ["quick", "brown", "fox"].map(String::from).to_vec(),
            ..Coverage::default()
        };
        let mut dedupe = Dedupe::new(&coverage);
        // "quick" was cut and not heard again.
        assert_eq!(dedupe.filter("brown fox jumps", vec![]).0, "jumps");
    }

    #[test]
    fn a_replay_that_says_something_else_keeps_everything() {
        let coverage = Coverage {
            untimed: ["alpha", "beta", "gamma"].map(String::from).to_vec(),
            ..Coverage::default()
        };
        let mut dedupe = Dedupe::new(&coverage);
        assert_eq!(dedupe.filter("delta epsilon", vec![]).0, "delta epsilon");
        assert_eq!(dedupe.filter("alpha", vec![]).0, "alpha");
    }
}
