//! What the engine tells the client from successive recognitions of a growing utterance: the
//! words two hypotheses agree on (shown as interim text), and which recognitions are noise.

/// Above this no-speech probability, with low confidence, a segment is treated as noise.
const NO_SPEECH_THRESHOLD: f64 = 0.6;
const LOW_LOGPROB: f64 = -1.0;

/// Whisper's usual output for non-speech: nothing, a bracketed tag, or a confident "no speech".
pub(super) fn is_noise(r: &super::decode::Recognition) -> bool {
    let text = r.text.trim();
    if text.is_empty() {
        return true;
    }
    let bracketed = (text.starts_with('[') && text.ends_with(']'))
        || (text.starts_with('(') && text.ends_with(')'))
        || (text.starts_with('*') && text.ends_with('*'));
    bracketed || (r.no_speech > NO_SPEECH_THRESHOLD && r.avg_logprob < LOW_LOGPROB)
}

fn normalise(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// How many leading words two hypotheses share (ignoring case and punctuation); the last shared
/// word only counts when both go on past it, since a word at the very end may still be growing.
pub(super) fn common_prefix(a: &[String], b: &[String]) -> usize {
    let same = a
        .iter()
        .zip(b)
        .take_while(|(x, y)| normalise(x) == normalise(y))
        .count();
    if same == a.len().min(b.len()) && same > 0 && (same == a.len() || same == b.len()) {
        same - 1
    } else {
        same
    }
}

pub(super) fn round_ms(secs: f64) -> f64 {
    (secs.max(0.0) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_agreed_prefix_ignores_case_and_punctuation_and_holds_back_the_last_word() {
        assert_eq!(
            common_prefix(&words("the quick brown"), &words("The quick, brown fox")),
            2
        );
        assert_eq!(
            common_prefix(&words("the quick brawn"), &words("the quick brown fox")),
            2
        );
        assert_eq!(common_prefix(&[], &words("hello")), 0);
        assert_eq!(common_prefix(&words("a b c d"), &words("a b c d e")), 3);
    }

    #[test]
    fn bracketed_tags_and_confident_silence_are_noise() {
        let r = |text: &str, no_speech: f64, avg: f64| super::super::decode::Recognition {
            text: text.into(),
            no_speech,
            avg_logprob: avg,
            ..Default::default()
        };
        assert!(is_noise(&r("[BLANK_AUDIO]", 0.0, 0.0)));
        assert!(is_noise(&r("(music)", 0.0, 0.0)));
        assert!(is_noise(&r("Thank you.", 0.9, -1.5)));
        assert!(!is_noise(&r("Thank you.", 0.9, -0.2)));
        assert!(!is_noise(&r("Hello there.", 0.1, -0.4)));
    }
}
