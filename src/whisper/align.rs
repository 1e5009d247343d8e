//! Word times from the alignment heads' cross-attention: z-normalised, median-filtered, averaged
//! over heads, then dynamic time warping (as the reference does).

use super::decode::{POSITIONS_PER_SECOND, Word};

/// Start and end time (seconds) of each text token, from the alignment heads' attention:
/// z-normalise each head over tokens, median-filter over time (width 7), average the heads,
/// then the cheapest monotonic path through −weights. Rows: [head][token + 1][position]; row
/// i is the input whose output is token i (the last row predicts end-of-text).
pub fn align(rows: &[Vec<Vec<f32>>], n_tokens: usize, positions: usize) -> Vec<(f64, f64)> {
    let n = n_tokens + 1;
    let usable: Vec<&Vec<Vec<f32>>> = rows
        .iter()
        .filter(|r| r.len() >= n && r.iter().all(|row| row.len() >= positions))
        .collect();
    if usable.is_empty() || positions == 0 {
        let step = positions as f64 / POSITIONS_PER_SECOND / n_tokens.max(1) as f64;
        return (0..n_tokens)
            .map(|i| (i as f64 * step, (i + 1) as f64 * step))
            .collect();
    }
    let mut matrix = vec![0f64; n * positions];
    for head in &usable {
        let mut w: Vec<f64> = (0..n)
            .flat_map(|i| head[i][..positions].iter().map(|&v| f64::from(v)))
            .collect();
        for t in 0..positions {
            let mean = (0..n).map(|i| w[i * positions + t]).sum::<f64>() / n as f64;
            let var = (0..n)
                .map(|i| (w[i * positions + t] - mean).powi(2))
                .sum::<f64>()
                / n as f64;
            let std = var.sqrt().max(1e-8);
            for i in 0..n {
                w[i * positions + t] = (w[i * positions + t] - mean) / std;
            }
        }
        for i in 0..n {
            let filtered = median_filter(&w[i * positions..(i + 1) * positions], 7);
            for (t, v) in filtered.into_iter().enumerate() {
                matrix[i * positions + t] += v / usable.len() as f64;
            }
        }
    }
    let path = dtw(&matrix.iter().map(|v| -v).collect::<Vec<_>>(), n, positions);
    // The first time each token row appears on the path: its start (in positions).
    let mut first = vec![None; n];
    for &(i, t) in &path {
        if first[i].is_none() {
            first[i] = Some(t);
        }
    }
    let mut starts: Vec<f64> = Vec::with_capacity(n);
    let mut last = 0usize;
    for f in first {
        let t = f.unwrap_or(last).max(last);
        last = t;
        starts.push(t as f64 / POSITIONS_PER_SECOND);
    }
    (0..n_tokens).map(|i| (starts[i], starts[i + 1])).collect()
}

fn median_filter(x: &[f64], width: usize) -> Vec<f64> {
    let half = width / 2;
    let n = x.len();
    if n <= half {
        return x.to_vec();
    }
    (0..n)
        .map(|i| {
            // Reflect at the edges, as the reference does.
            let mut window: Vec<f64> = (0..width)
                .map(|k| {
                    let j = i as isize + k as isize - half as isize;
                    let j = if j < 0 {
                        -j
                    } else if j >= n as isize {
                        2 * (n as isize - 1) - j
                    } else {
                        j
                    };
                    x[j.clamp(0, n as isize - 1) as usize]
                })
                .collect();
            window.sort_by(f64::total_cmp);
            window[half]
        })
        .collect()
}

/// Dynamic time warping over an n × m cost matrix (row-major); the path from (0, 0) to
/// (n − 1, m − 1) with steps down, right or diagonal, as (row, column) pairs in order.
pub fn dtw(cost: &[f64], n: usize, m: usize) -> Vec<(usize, usize)> {
    let mut acc = vec![f64::INFINITY; (n + 1) * (m + 1)];
    let mut trace = vec![0u8; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    acc[0] = 0.0;
    for i in 1..=n {
        for j in 1..=m {
            let diag = acc[at(i - 1, j - 1)];
            let up = acc[at(i - 1, j)];
            let left = acc[at(i, j - 1)];
            let (best, step) = if diag <= up && diag <= left {
                (diag, 0)
            } else if up <= left {
                (up, 1)
            } else {
                (left, 2)
            };
            acc[at(i, j)] = cost[(i - 1) * m + (j - 1)] + best;
            trace[at(i, j)] = step;
        }
    }
    let (mut i, mut j) = (n, m);
    let mut path = Vec::with_capacity(n + m);
    while i > 0 && j > 0 {
        path.push((i - 1, j - 1));
        match trace[at(i, j)] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path
}

impl super::decode::Recognizer {
    /// Groups tokens into words and times them by aligning tokens to audio positions.
    pub(super) fn words(
        &self,
        tokens: &[u32],
        logprobs: &[f32],
        rows: &[Vec<Vec<f32>>],
        audio_positions: usize,
    ) -> Vec<Word> {
        if tokens.is_empty() || audio_positions == 0 {
            return Vec::new();
        }
        // Word boundaries: a token starting with a space starts a word; punctuation-only
        // tokens stay with the word before them.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        for (i, &id) in tokens.iter().enumerate() {
            let bytes = self.tokenizer.bytes(id);
            let starts_word = bytes.first() == Some(&b' ')
                && bytes
                    .iter()
                    .skip(1)
                    .any(|b| b.is_ascii_alphanumeric() || *b >= 0x80);
            match groups.last_mut() {
                Some(last) if !starts_word => last.1 = i + 1,
                _ => groups.push((i, i + 1)),
            }
        }
        let token_times = align(rows, tokens.len(), audio_positions);
        groups
            .into_iter()
            .filter_map(|(a, b)| {
                let text = self.tokenizer.decode(&tokens[a..b]).trim().to_owned();
                if text.is_empty() {
                    return None;
                }
                let (start, _) = token_times.get(a).copied().unwrap_or((0.0, 0.0));
                let (_, end) = token_times.get(b - 1).copied().unwrap_or((start, start));
                let probability = logprobs[a..b]
                    .iter()
                    .map(|&l| f64::from(l.exp()))
                    .sum::<f64>()
                    / (b - a) as f64;
                Some(Word {
                    text,
                    start,
                    end: end.max(start),
                    probability,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtw_follows_the_cheap_diagonal() {
        // 3 × 6 with cheap cells at (0,0-1), (1,2-3), (2,4-5).
        let mut cost = vec![1.0; 18];
        for (i, j) in [(0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)] {
            cost[i * 6 + j] = -1.0;
        }
        let path = dtw(&cost, 3, 6);
        assert_eq!(path.first(), Some(&(0, 0)));
        assert_eq!(path.last(), Some(&(2, 5)));
        assert!(path.contains(&(1, 2)) && path.contains(&(2, 4)));
        assert!(
            path.windows(2)
                .all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1)
        );
    }

    #[test]
    fn alignment_times_tokens_where_their_attention_peaks() {
        // Two tokens (+ the end row), 100 positions: token 0 attends at 10-30, token 1 at
        // 50-70, the end row at 90-99.
        let mut head = vec![vec![0.0f32; 100]; 3];
        head[0][10..30].fill(1.0);
        head[1][50..70].fill(1.0);
        head[2][90..100].fill(1.0);
        let times = align(&[head], 2, 100);
        assert_eq!(times.len(), 2);
        assert!(times[0].0 <= 0.2 + 1e-9, "{times:?}");
        assert!((0.8..=1.2).contains(&times[1].0), "{times:?}");
        assert!((1.6..=1.9).contains(&times[1].1), "{times:?}");
    }

    #[test]
    fn median_filter_removes_a_spike() {
        let x = [0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0];
        assert!(median_filter(&x, 7).iter().all(|&v| v == 0.0));
    }
}
