//! Guards against the decoder's hallucination loops: a block repeated too often, and a repeat the
//! token cap cut off in the middle.

/// Where a run of repeats starts, if the tokens end in one block repeated too often (a
/// hallucination loop): a block of 1 token 8 times, of 2 to 7 tokens 4 times, or of 8 or more
/// tokens twice.
pub(super) fn repetition(tokens: &[u32]) -> Option<usize> {
    for block in 1..=tokens.len() / 2 {
        let times = match block {
            1 => 8,
            2..=7 => 4,
            _ => 2,
        };
        let span = block * times;
        if tokens.len() < span {
            continue;
        }
        let tail = &tokens[tokens.len() - span..];
        let first = &tail[..block];
        if tail.chunks(block).all(|c| c == first) {
            // Keep one copy of the block.
            return Some(tokens.len() - span + block);
        }
    }
    None
}

/// Where to cut text that the token cap stopped in the middle of a repeat: the longest tail (at
/// least 6 tokens) that already occurred earlier, contiguously, is the loop starting over.
pub(super) fn cut_repeat(tokens: &[u32]) -> Option<usize> {
    repeated_tail(tokens, 6)
}

/// Where the text starts over, checked as it grows: its last `RESTART` tokens already occurred
/// earlier, contiguously. After the speech ends the decoder tends to say it all again ("Turn left
/// at the corner. Turn left at the corner"), and beam search ranks such a confident loop above
/// the end of the text; people seldom repeat eight tokens (about six words) word for word.
pub(super) fn restart(tokens: &[u32]) -> Option<usize> {
    const RESTART: usize = 8;
    let n = tokens.len();
    if n < 2 * RESTART || !tail_occurred(tokens, RESTART) {
        return None;
    }
    Some(n - RESTART)
}

/// Where the text starts over from its own beginning after a sentence: its first
/// [`START_OVER`] tokens again right after a token that ends a sentence (`ends_sentence`). The
/// usual shape of the decoder's loop past the speech ("… the bridge. Turn left at"), caught
/// five tokens sooner than [`restart`] does, so a beam search waiting for its last hypotheses
/// to finish stops sooner. Cut after the sentence's end; the first sentence must be longer than
/// the repeat.
pub(super) fn starts_over(tokens: &[u32], ends_sentence: impl Fn(u32) -> bool) -> Option<usize> {
    let n = tokens.len();
    if n < 2 * START_OVER + 2 {
        return None;
    }
    let end = n - START_OVER - 1;
    (ends_sentence(tokens[end]) && tokens[end + 1..] == tokens[..START_OVER]).then_some(end + 1)
}

/// Tokens of a text's beginning that, said again after its first sentence, are the decoder
/// starting over (about two or three words).
const START_OVER: usize = 3;

/// Where to cut a finished text that is one block said twice ("Turn left. Turn left,"): the
/// decoder's habit on short utterances, which beam search ranks high. The second copy may differ
/// from the first by one token (a comma); a block of 4 tokens or more said twice in a row, word
/// for word, is seldom what was said.
pub(super) fn doubled(tokens: &[u32]) -> Option<usize> {
    let n = tokens.len();
    // The longer first copy first: a token that is in one copy only is kept.
    (n.saturating_sub(1) / 2..=n.div_ceil(2))
        .rev()
        .find(|&split| {
            let (first, second) = tokens.split_at(split.min(n));
            first.len().min(second.len()) >= 4 && at_most_one_edit(first, second)
        })
}

/// Whether `a` becomes `b` by at most one token changed, inserted or removed.
fn at_most_one_edit(a: &[u32], b: &[u32]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let same_start = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    match long.len() - short.len() {
        0 => short[same_start.min(short.len())..]
            .iter()
            .skip(1)
            .eq(long[same_start.min(long.len())..].iter().skip(1)),
        1 => short[same_start..] == long[same_start + 1..],
        _ => false,
    }
}

/// The start of the longest tail (at least `shortest` tokens) that already occurred earlier.
fn repeated_tail(tokens: &[u32], shortest: usize) -> Option<usize> {
    let n = tokens.len();
    (shortest..=n / 2)
        .rev()
        .find(|&len| tail_occurred(tokens, len))
        .map(|len| n - len)
}

/// Whether the last `len` tokens already occurred earlier, contiguously.
fn tail_occurred(tokens: &[u32], len: usize) -> bool {
    let n = tokens.len();
    let tail = &tokens[n - len..];
    tokens[..n - len].windows(len).any(|w| w == tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_said_twice_is_cut_to_once() {
        assert_eq!(doubled(&[1, 2, 3, 4, 1, 2, 3, 4]), Some(4));
        assert_eq!(
            doubled(&[1, 2, 3, 1, 2, 3]),
            None,
            "short blocks can be real"
        );
        // A comma added, or a word changed, in the second copy.
        assert_eq!(doubled(&[1, 2, 3, 4, 1, 2, 9, 3, 4]), Some(4));
        assert_eq!(doubled(&[1, 2, 3, 4, 1, 2, 3, 5]), Some(4));
        assert_eq!(doubled(&[1, 2, 3, 4, 5, 1, 2, 3, 4]), Some(5));
        assert_eq!(doubled(&[1, 2, 3, 4, 5, 6, 7, 8]), None);
        assert_eq!(doubled(&[1, 2, 3, 4, 1, 2, 5, 6]), None, "two edits");
        assert_eq!(doubled(&[]), None);
    }

    #[test]
    fn repetition_loops_are_cut_to_one_copy() {
        let mut t = vec![5, 6];
        for _ in 0..4 {
            t.extend([1, 2, 3]);
        }
        assert_eq!(repetition(&t), Some(5));
        assert_eq!(repetition(&[1, 2, 3, 4, 5, 6, 7]), None);
        assert_eq!(repetition(&[9; 8]), Some(1));
    }

    #[test]
    fn a_repeat_the_cap_cut_short_is_cut_off() {
        // A sentence, then the same sentence starting over until the cap.
        let sentence: Vec<u32> = (1..=12).collect();
        let mut t = sentence.clone();
        t.extend(&sentence[..7]);
        assert_eq!(cut_repeat(&t), Some(12));
        // Text with no repeat of 6 tokens is kept whole.
        let plain: Vec<u32> = (1..=30).chain([1, 2, 3, 4, 5]).collect();
        assert_eq!(cut_repeat(&plain), None);
    }

    #[test]
    fn a_sentence_followed_by_its_own_first_words_is_cut_after_the_sentence() {
        let full_stop = |t: u32| t == 99;
        // "1 2 3 4 5 ." then "1 2 3": cut after the full stop, when the third arrives.
        let mut t: Vec<u32> = vec![1, 2, 3, 4, 5, 99, 1, 2];
        assert_eq!(starts_over(&t, full_stop), None);
        t.push(3);
        assert_eq!(starts_over(&t, full_stop), Some(6));
        // Other words after the sentence, or no sentence end before them, are left alone.
        assert_eq!(starts_over(&[1, 2, 3, 4, 5, 99, 1, 2, 7], full_stop), None);
        assert_eq!(starts_over(&[1, 2, 3, 4, 5, 98, 1, 2, 3], full_stop), None);
        // A first sentence no longer than the repeat is not the decoder starting over.
        assert_eq!(starts_over(&[1, 2, 3, 99, 1, 2, 3], full_stop), None);
        assert_eq!(starts_over(&[1, 2, 99, 1, 2, 99, 1], full_stop), None);
    }

    #[test]
    fn text_that_starts_over_is_cut_where_the_repeat_began() {
        // A 17-token sentence ending in a full stop (99), then the same words again: caught
        // when the eighth repeated token arrives, cut back to the sentence.
        let sentence: Vec<u32> = (1..=16).chain([99]).collect();
        let mut t = sentence.clone();
        let mut caught = None;
        for &token in &sentence[..16] {
            t.push(token);
            if let Some(cut) = restart(&t) {
                caught = Some((t.len(), cut));
                break;
            }
        }
        assert_eq!(caught, Some((17 + 8, 17)));
        // Seven repeated tokens are left alone, as is text with no repeat.
        let seven: Vec<u32> = (1..=16).chain([99]).chain(1..=7).collect();
        assert_eq!(restart(&seven), None);
        let plain: Vec<u32> = (1..=40).collect();
        assert_eq!(restart(&plain), None);
        // Checked from the first token on: short text is never cut.
        assert_eq!(restart(&[7]), None);
        assert_eq!(restart(&[7; 15]), None);
    }
}
