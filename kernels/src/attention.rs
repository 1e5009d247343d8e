//! Scaled dot-product attention for the decoder's few query rows, on plain buffers: keys and
//! values as the projections leave them (rows of the full width, the heads side by side), so
//! nothing is transposed into heads, and a cache grows by appending rows.
//!
//! Per query row and head: the scores against every position it may see, a softmax (its
//! `e^x` branch-free, so that it vectorises), and the weighted sum of the values. The heads
//! are split between the threads when there is enough work.

use pulp::bytemuck::cast;
use pulp::x86::V3;
use pulp::{Simd, f32x8};
use rayon::prelude::{IntoParallelIterator, ParallelIterator};

use crate::gelu::exp_neg;

/// Query rows × positions × width from which the heads go to the thread pool.
const PARALLEL: usize = 1 << 20;

/// Keys and values of consecutive positions, each a row of the full width.
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
}

/// Attention of `queries` (rows of `width` = `heads` × head width) over the positions of
/// `spans`, in order; query row `i` sees the first `seen(i)` positions (all of them when that
/// is more). Returns the outputs (rows of `width`) and, with `keep_weights`, the attention
/// weights, `[row][head][position]` (zero past what a row sees; else empty). Empty outputs when
/// the sizes do not fit together.
#[must_use]
pub fn attention(
    queries: &[f32],
    heads: usize,
    width: usize,
    spans: &[Span<'_>],
    seen: &(dyn Fn(usize) -> usize + Sync),
    keep_weights: bool,
) -> (Vec<f32>, Vec<f32>) {
    if heads == 0
        || width == 0
        || !width.is_multiple_of(heads)
        || !queries.len().is_multiple_of(width)
        || spans
            .iter()
            .any(|s| s.keys.len() != s.values.len() || !s.keys.len().is_multiple_of(width))
    {
        return (Vec::new(), Vec::new());
    }
    let rows = queries.len() / width;
    let dh = width / heads;
    let total: usize = spans.iter().map(|s| s.keys.len() / width).sum();
    let mut out = vec![0f32; rows * width];
    if total == 0 {
        return (out, Vec::new());
    }
    let seen: Vec<usize> = (0..rows).map(|i| seen(i).min(total)).collect();
    let task = |head: usize| {
        let offset = head * dh;
        let query: Vec<f32> = queries
            .chunks_exact(width)
            .flat_map(|row| &row[offset..offset + dh])
            .copied()
            .collect();
        let head = HeadColumns {
            spans,
            offset,
            width,
            dh,
            total,
        };
        attend_head(&query, head, &seen)
    };
    let per_head: Vec<(Vec<f32>, Vec<f32>)> = if rows * total * width >= PARALLEL {
        (0..heads).into_par_iter().map(task).collect()
    } else {
        (0..heads).map(task).collect()
    };
    let mut weights = if keep_weights {
        vec![0f32; rows * heads * total]
    } else {
        Vec::new()
    };
    for (head, (head_out, head_weights)) in per_head.iter().enumerate() {
        for (r, o) in head_out.chunks_exact(dh).enumerate() {
            out[r * width + head * dh..][..dh].copy_from_slice(o);
        }
        if keep_weights {
            for (r, w) in head_weights.chunks_exact(total).enumerate() {
                weights[(r * heads + head) * total..][..total].copy_from_slice(w);
            }
        }
    }
    (out, weights)
}

/// Where one head's columns lie in the rows of keys and values.
#[derive(Clone, Copy)]
struct HeadColumns<'a> {
    spans: &'a [Span<'a>],
    offset: usize,
    width: usize,
    dh: usize,
    total: usize,
}

impl<'a> HeadColumns<'a> {
    /// The head's part of each position's key (`values`: value), in order.
    fn rows(self, values: bool) -> impl Iterator<Item = &'a [f32]> {
        let Self {
            offset, width, dh, ..
        } = self;
        self.spans
            .iter()
            .flat_map(move |s| if values { s.values } else { s.keys }.chunks_exact(width))
            .map(move |row| &row[offset..offset + dh])
    }
}

/// One head: `query` (rows of the head's width) over its keys and values, row `r` seeing the
/// first `seen[r]` positions. Returns the outputs (rows of the head's width) and the weights
/// (rows of every position). Whisper's heads are 64 wide: with AVX2 that width runs with its
/// rows held in vector registers.
fn attend_head(query: &[f32], head: HeadColumns<'_>, seen: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let HeadColumns { dh, total, .. } = head;
    let mut weights = vec![0f32; seen.len() * total];
    let mut out = vec![0f32; query.len()];
    if dh == 64
        && let Some(simd) = V3::try_new()
    {
        simd.vectorize(Head64 {
            simd,
            query,
            head,
            seen,
            weights: &mut weights,
            out: &mut out,
        });
        return (out, weights);
    }
    #[allow(
        clippy::cast_precision_loss,
        reason = "a head's width, a small whole number"
    )]
    let scale = 1.0 / (dh as f32).sqrt();
    for ((q, &seen), (weights, out)) in query.chunks_exact(dh).zip(seen).zip(
        weights
            .chunks_exact_mut(total)
            .zip(out.chunks_exact_mut(dh)),
    ) {
        let scores = &mut weights[..seen];
        for (s, k) in scores.iter_mut().zip(head.rows(false)) {
            *s = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
        }
        softmax(scores);
        for (&w, v) in scores.iter().zip(head.rows(true)) {
            for (o, v) in out.iter_mut().zip(v) {
                *o += w * v;
            }
        }
    }
    (out, weights)
}

/// A head's row 64 wide as eight vectors (zeros if it is not 64 wide, which the caller rules
/// out).
#[allow(
    clippy::inline_always,
    reason = "runs inside V3::vectorize, which needs its callees inlined"
)]
#[inline(always)]
fn vectors(row: &[f32]) -> [f32x8; 8] {
    cast(<[f32; 64]>::try_from(row).unwrap_or([0.0; 64]))
}

/// [`attend_head`] for heads 64 wide, with AVX2 vectors, called inlined inside
/// [`V3::vectorize`].
struct Head64<'a> {
    simd: V3,
    query: &'a [f32],
    head: HeadColumns<'a>,
    seen: &'a [usize],
    weights: &'a mut [f32],
    out: &'a mut [f32],
}

impl pulp::NullaryFnOnce for Head64<'_> {
    type Output = ();

    #[allow(
        clippy::inline_always,
        reason = "runs inside V3::vectorize, which needs its callees inlined"
    )]
    #[inline(always)]
    fn call(self) {
        let Head64 {
            simd,
            query,
            head,
            seen,
            weights,
            out,
        } = self;
        for ((row_query, &seen), (weights, out)) in query.chunks_exact(64).zip(seen).zip(
            weights
                .chunks_exact_mut(head.total)
                .zip(out.chunks_exact_mut(64)),
        ) {
            let query = vectors(row_query);
            let scores = &mut weights[..seen];
            // Each position's score is independent of the last, so the core overlaps several;
            // each is summed in two vectors. (Plain loops over the spans: an iterator chain's
            // steps are calls here, outside the vectorised code.)
            let mut at = 0;
            for span in head.spans {
                for row in span.keys.chunks_exact(head.width) {
                    if at >= scores.len() {
                        break;
                    }
                    let key = vectors(&row[head.offset..head.offset + 64]);
                    let mut even = simd.mul_f32s(query[0], key[0]);
                    let mut odd = simd.mul_f32s(query[1], key[1]);
                    for c in (2..8).step_by(2) {
                        even = simd.mul_add_e_f32s(query[c], key[c], even);
                        odd = simd.mul_add_e_f32s(query[c + 1], key[c + 1], odd);
                    }
                    scores[at] = simd.reduce_sum_f32s(simd.add_f32s(even, odd)) * 0.125;
                    at += 1;
                }
            }
            softmax(scores);
            // The weighted values: eight vectors of sums, in registers.
            let mut acc = [simd.splat_f32s(0.0); 8];
            let mut at = 0;
            for span in head.spans {
                for row in span.values.chunks_exact(head.width) {
                    if at >= scores.len() {
                        break;
                    }
                    let value = vectors(&row[head.offset..head.offset + 64]);
                    let weight = simd.splat_f32s(scores[at]);
                    for c in 0..8 {
                        acc[c] = simd.mul_add_e_f32s(weight, value[c], acc[c]);
                    }
                    at += 1;
                }
            }
            let acc: [f32; 64] = cast(acc);
            out.copy_from_slice(&acc);
        }
    }
}

/// Scores turned into weights in place: `e^(s − max)` normalised.
#[allow(
    clippy::inline_always,
    reason = "compiled into each of the caller's target-feature versions"
)]
#[inline(always)]
fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for s in scores.iter_mut() {
        *s = exp_neg(max - *s);
    }
    // Summed in eight lanes, so that the loop is one of vectors.
    let (eights, rest) = scores.as_chunks::<8>();
    let mut lanes = [0f32; 8];
    for chunk in eights {
        for l in 0..8 {
            lanes[l] += chunk[l];
        }
    }
    let sum = lanes.iter().sum::<f32>() + rest.iter().sum::<f32>();
    let inverse = 1.0 / sum;
    for s in scores.iter_mut() {
        *s *= inverse;
    }
}

#[cfg(test)]
#[allow(clippy::cast_precision_loss, reason = "small test indices")]
mod tests {
    use super::*;

    /// Attention in f64, the textbook way, over one buffer of keys and values.
    fn textbook(
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        heads: usize,
        width: usize,
        seen: &dyn Fn(usize) -> usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let dh = width / heads;
        let rows = q.len() / width;
        let total = keys.len() / width;
        let mut out = vec![0f64; rows * width];
        let mut weights = vec![0f64; rows * heads * total];
        for i in 0..rows {
            let n = seen(i).min(total);
            for h in 0..heads {
                let scores: Vec<f64> = (0..n)
                    .map(|p| {
                        (0..dh)
                            .map(|d| {
                                f64::from(q[i * width + h * dh + d])
                                    * f64::from(keys[p * width + h * dh + d])
                            })
                            .sum::<f64>()
                            / (dh as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for p in 0..n {
                    let w = exps[p] / sum;
                    weights[(i * heads + h) * total + p] = w;
                    for d in 0..dh {
                        out[i * width + h * dh + d] +=
                            w * f64::from(values[p * width + h * dh + d]);
                    }
                }
            }
        }
        (out, weights)
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1999) as f32 / 999.5 - 1.0) * 2.0)
            .collect()
    }

    fn close(ours: &[f32], expected: &[f64]) -> bool {
        ours.len() == expected.len()
            && ours
                .iter()
                .zip(expected)
                .all(|(&a, &b)| (f64::from(a) - b).abs() <= 1e-5 * b.abs().max(1.0))
    }

    #[test]
    fn attention_is_the_textbook_one_over_split_spans_and_causal_rows() {
        // One query row or several, a head width with a tail past the 8-lane chunks, positions
        // in one span or split in two (a shared prefix and a hypothesis's own), every row seeing
        // all or a causal prefix; sizes below and above the threads' share.
        for (rows, heads, dh, total, split) in [
            (1, 1, 8, 1, 1),
            (1, 8, 64, 300, 300),
            (5, 8, 64, 300, 120),
            (3, 2, 13, 17, 5),
            (40, 8, 64, 700, 650),
        ] {
            let width = heads * dh;
            let q = values(rows * width, 1);
            let keys = values(total * width, 2);
            let vals = values(total * width, 3);
            let spans = [
                Span {
                    keys: &keys[..split * width],
                    values: &vals[..split * width],
                },
                Span {
                    keys: &keys[split * width..],
                    values: &vals[split * width..],
                },
            ];
            let causal = move |i: usize| total - rows + i + 1;
            let all = |_: usize| usize::MAX;
            for seen in [&causal as &(dyn Fn(usize) -> usize + Sync), &all] {
                let (out, weights) = attention(&q, heads, width, &spans, seen, true);
                let (expected_out, expected_weights) =
                    textbook(&q, &keys, &vals, heads, width, seen);
                assert!(
                    close(&out, &expected_out),
                    "outputs: {rows} rows, {heads} heads of {dh}, {total} positions"
                );
                assert!(
                    close(&weights, &expected_weights),
                    "weights: {rows} rows, {heads} heads of {dh}, {total} positions"
                );
            }
        }
    }

    #[test]
    fn sizes_that_do_not_fit_give_nothing() {
        let q = [0.5f32; 8];
        let kv = [1.0f32; 16];
        let span = [Span {
            keys: &kv,
            values: &kv,
        }];
        assert!(attention(&q, 3, 8, &span, &|_| 1, true).0.is_empty());
        assert!(attention(&q[..7], 2, 8, &span, &|_| 1, true).0.is_empty());
        let short = [Span {
            keys: &kv,
            values: &kv[..8],
        }];
        assert!(attention(&q, 2, 8, &short, &|_| 1, true).0.is_empty());
        let (out, weights) = attention(&q, 2, 8, &[], &|_| 1, true);
        assert_eq!(out, vec![0.0; 8]);
        assert!(weights.is_empty());
    }
}
