//! lightning-dictate's matrix products for the Whisper decoder: `x · wᵀ` for a few rows of `x`
//! (one per beam hypothesis) and a weight `w` of f32 or f16 rows.
//!
//! A crate of its own so that test builds, which leave the app's own code unoptimised, still
//! run these loops vectorised (`[profile.dev.package.lightning-kernels]` in the app's
//! Cargo.toml).
//!
//! An f16 weight is best packed once ([`Packed`]: eight output columns side by side, multiplied
//! with explicit AVX2 vectors, no horizontal sums; 2-3× faster than [`product`]). [`product`]
//! takes a weight as it lies: each weight row read once (widened from f16 when stored so) and
//! multiplied with every input row while it is in cache. Blocks of output columns are split
//! between the threads. Written for few rows: with many, a packing matrix library does better.

mod attention;
mod gelu;
mod packed;

use half::f16;
use multiversion::multiversion;
use multiversion::target::target_cfg_f;
use rayon::prelude::{IndexedParallelIterator, ParallelIterator, ParallelSlice, ParallelSliceMut};

pub use attention::{Span, attention};
pub use gelu::gelu_erf;
pub use packed::Packed;

/// A weight matrix's values, row-major `(n, k)`.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

/// `x · wᵀ + bias`: `x` is `rows` rows of `k`, `w` is `n` rows of `k` (n = its length / k);
/// returns `rows` rows of `n`, row-major. Empty when the sizes do not fit together.
#[must_use]
pub fn product(
    x: &[f32],
    rows: usize,
    weights: Weights<'_>,
    k: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let len = match weights {
        Weights::F32(w) => w.len(),
        Weights::F16(w) => w.len(),
    };
    if k == 0 || rows == 0 || x.len() != rows * k || !len.is_multiple_of(k) {
        return Vec::new();
    }
    let n = len / k;
    let mut transposed = vec![0f32; n * rows];
    // Enough blocks for both threads to stay busy, few enough that scheduling is cheap.
    let block = (n / 32).max(16);
    match weights {
        Weights::F32(w) => transposed
            .par_chunks_mut(block * rows)
            .zip(w.par_chunks(block * k))
            .for_each(|(out, w)| weight_rows(x, rows, w, k, out)),
        Weights::F16(w) => transposed
            .par_chunks_mut(block * rows)
            .zip(w.par_chunks(block * k))
            .for_each(|(out, w)| half_weight_rows(x, rows, w, k, out)),
    }
    let mut out = vec![0f32; rows * n];
    for (j, column) in transposed.chunks_exact(rows).enumerate() {
        for (i, value) in column.iter().enumerate() {
            out[i * n + j] = *value;
        }
    }
    if let Some(bias) = bias {
        for row in out.chunks_exact_mut(n) {
            for (o, b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
    out
}

/// For each weight row `j` in `w` (rows of `k`): `out[j * rows + i] = x_i · w_j`. The weight
/// row comes from memory for the first input row and from cache for the others.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "x86_64+avx"))]
fn weight_rows(x: &[f32], rows: usize, w: &[f32], k: usize, out: &mut [f32]) {
    for (weights, out) in w.chunks_exact(k).zip(out.chunks_exact_mut(rows)) {
        for (x, o) in x.chunks_exact(k).zip(out.iter_mut()) {
            *o = if target_cfg_f!(target_feature = "fma") {
                dot::<true>(x, weights)
            } else {
                dot::<false>(x, weights)
            };
        }
    }
}

/// As [`weight_rows`] for f16 weights: each row is widened once, then used for every input row.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "x86_64+avx"))]
fn half_weight_rows(x: &[f32], rows: usize, w: &[f16], k: usize, out: &mut [f32]) {
    let mut wide = vec![0f32; k];
    for (weights, out) in w.chunks_exact(k).zip(out.chunks_exact_mut(rows)) {
        for (w, h) in wide.iter_mut().zip(weights) {
            *w = widen(h.to_bits());
        }
        for (x, o) in x.chunks_exact(k).zip(out.iter_mut()) {
            *o = if target_cfg_f!(target_feature = "fma") {
                dot::<true>(x, &wide)
            } else {
                dot::<false>(x, &wide)
            };
        }
    }
}

/// An f16 (as bits) widened to f32, without branches so a loop of them vectorises (the
/// library's conversion is a call per eight values). The f16's exponent and mantissa, moved
/// into an f32's fields, are that value times 2^-112 (subnormals included), so one
/// multiplication by 2^112 rebiases it; infinity and NaN keep an all-ones exponent.
#[allow(
    clippy::inline_always,
    reason = "compiled into each of the caller's target-feature versions"
)]
#[inline(always)]
pub(crate) fn widen(h: u16) -> f32 {
    let rebias = f32::from_bits((127 + 112) << 23);
    let magnitude = u32::from(h & 0x7fff) << 13;
    let finite = (f32::from_bits(magnitude) * rebias).to_bits();
    let special = magnitude | (0xff << 23);
    let bits = if magnitude >= 0x7c00 << 13 {
        special
    } else {
        finite
    };
    f32::from_bits(bits | (u32::from(h & 0x8000) << 16))
}

/// `a · b`, in four independent 8-lane sums so the additions overlap; `FUSED` multiplies and
/// adds in one instruction (only where the CPU has it: elsewhere it is a library call).
#[allow(
    clippy::inline_always,
    reason = "compiled into each of the caller's target-feature versions"
)]
#[inline(always)]
fn dot<const FUSED: bool>(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_tail) = a.as_chunks::<32>();
    let (b_chunks, b_tail) = b.as_chunks::<32>();
    let mut acc = [0f32; 32];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for l in 0..32 {
            acc[l] = if FUSED {
                x[l].mul_add(y[l], acc[l])
            } else {
                acc[l] + x[l] * y[l]
            };
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in a_tail.iter().zip(b_tail) {
        sum += x * y;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_matches_the_half_library_for_every_value() {
        for bits in 0..=u16::MAX {
            let expected = f16::from_bits(bits).to_f32();
            let ours = widen(bits);
            assert!(
                ours.to_bits() == expected.to_bits() || (ours.is_nan() && expected.is_nan()),
                "{bits:#06x}: {ours} vs {expected}"
            );
        }
    }

    #[test]
    fn the_product_is_the_textbook_one() {
        // x: 2 x 3; w: 4 x 3; bias 4.
        let x = [1.0, 2.0, 3.0, -1.0, 0.5, 2.0];
        let w: Vec<f32> = (0..12u8).map(|v| f32::from(v) - 5.0).collect();
        let bias = [0.5, -0.5, 1.0, 0.0];
        let mut expected = Vec::new();
        for i in 0..2 {
            for j in 0..4 {
                let dot: f32 = (0..3).map(|l| x[i * 3 + l] * w[j * 3 + l]).sum();
                expected.push(dot + bias[j]);
            }
        }
        let half: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
        assert_eq!(product(&x, 2, Weights::F32(&w), 3, Some(&bias)), expected);
        assert_eq!(
            product(&x, 2, Weights::F16(&half), 3, Some(&bias)),
            expected
        );
        assert!(product(&x, 2, Weights::F32(&w[..11]), 3, None).is_empty());
    }
}
