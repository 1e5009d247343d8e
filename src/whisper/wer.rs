//! Word error rate, for the offline recogniser's tests and benchmark: words compared after a
//! light normalisation (case, punctuation, British spellings of the test sentences, small numbers
//! as words), so only recognition mistakes count.

/// Lower case, punctuation gone, "colour"/"favourite" as American spellings, 0-10 as words.
pub fn normalise(text: &str) -> Vec<String> {
    const NUMBERS: [&str; 11] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    text.to_lowercase()
        .replace("colour", "color")
        .replace("favourite", "favorite")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(|w| match w.parse::<usize>() {
            Ok(n) if n < NUMBERS.len() => NUMBERS[n].to_owned(),
            _ => w.to_owned(),
        })
        .collect()
}

/// Word-level edit distance (substitutions, insertions, deletions).
pub fn edits(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let prev = row.clone();
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            row[j + 1] = (prev[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev[j] + usize::from(r != h));
        }
    }
    row[hypothesis.len()]
}

/// Errors and reference words of one comparison; add them up to pool several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordErrors {
    pub edits: usize,
    pub words: usize,
}

impl WordErrors {
    pub fn between(reference: &str, hypothesis: &str) -> Self {
        let r = normalise(reference);
        WordErrors {
            edits: edits(&r, &normalise(hypothesis)),
            words: r.len(),
        }
    }

    pub fn rate(&self) -> f64 {
        self.edits as f64 / self.words.max(1) as f64
    }
}

impl std::ops::Add for WordErrors {
    type Output = WordErrors;
    fn add(self, other: WordErrors) -> WordErrors {
        WordErrors {
            edits: self.edits + other.edits,
            words: self.words + other.words,
        }
    }
}

impl std::iter::Sum for WordErrors {
    fn sum<I: Iterator<Item = WordErrors>>(iter: I) -> WordErrors {
        iter.fold(WordErrors::default(), |a, b| a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_substitutions_insertions_and_deletions() {
        let r = "The cat sat on the mat.";
        assert_eq!(WordErrors::between(r, "the cat sat on the mat").edits, 0);
        assert_eq!(WordErrors::between(r, "the cat sat on mat").edits, 1);
        assert_eq!(WordErrors::between(r, "a cat sat in the hat too").edits, 4);
        assert_eq!(WordErrors::between(r, "").edits, 6);
        assert_eq!(
            normalise("Platform 4, my favourite!"),
            ["platform", "four", "my", "favorite"]
        );
        let pooled: WordErrors = [
            WordErrors::between(r, "the cat"),
            WordErrors::between("a b", "a b"),
        ]
        .into_iter()
        .sum();
        assert_eq!(pooled, WordErrors { edits: 4, words: 8 });
        assert!((pooled.rate() - 0.5).abs() < 1e-12);
    }
}
