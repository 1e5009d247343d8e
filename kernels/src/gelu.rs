//! The exact GELU, `x · Φ(x)`, over a buffer in place: Whisper's activation after each encoder
//! layer's first projection (a fifth of the encoder's time went to a scalar `erf` per value).
//!
//! `Φ(x) = (1 + erf(x / √2)) / 2`, with `1 − erf(|z|)` from Abramowitz and Stegun's formula
//! 7.1.26 (a fifth-degree polynomial in `t = 1 / (1 + p·|z|)` times `e^(−z²)`, absolute error
//! under 1.5·10⁻⁷) and `e^(−z²)` from `2^n · 2^f` (a rounded power of two and a Taylor
//! polynomial for the fraction). Written without branches so that each loop compiles to vector
//! instructions; the buffer is split between the threads when it is large.

use multiversion::multiversion;
use rayon::prelude::{ParallelIterator, ParallelSliceMut};

/// Values per thread's share; smaller buffers stay on the calling thread.
const CHUNK: usize = 1 << 16;

/// Replaces each value `x` by `x · Φ(x)` (the exact GELU, to within 5·10⁻⁷ of `|x|`).
pub fn gelu_erf(values: &mut [f32]) {
    if values.len() <= CHUNK {
        gelu_chunk(values);
    } else {
        values.par_chunks_mut(CHUNK).for_each(gelu_chunk);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "x86_64+avx"))]
fn gelu_chunk(values: &mut [f32]) {
    for v in values {
        *v = gelu(*v);
    }
}

/// Adding and taking away 1.5·2²³ rounds an f32 to a whole number (exact below 2²² in size).
const ROUND: f32 = 12_582_912.0;

/// Abramowitz and Stegun 7.1.26.
const P: f32 = 0.327_591_1;
const A: [f32; 5] = [
    0.254_829_6,
    -0.284_496_74,
    1.421_413_7,
    -1.453_152_1,
    1.061_405_4,
];

#[allow(
    clippy::inline_always,
    reason = "inlined into each multiversion target's loop, so that it is vectorised there"
)]
#[inline(always)]
fn gelu(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let az = z.abs();
    let t = 1.0 / (1.0 + P * az);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    // 1 − erf(|z|): accurate in the far negative tail, where 1 + erf(z) is this, not 1 − 1.
    let complement = poly * exp_neg(az * az);
    let one_plus_erf = if z < 0.0 {
        complement
    } else {
        2.0 - complement
    };
    0.5 * x * one_plus_erf
}

/// `e^(−y)` for `y ≥ 0` (NaN stays NaN; below 2⁻¹²⁶ it is 0).
#[allow(
    clippy::inline_always,
    reason = "inlined into each multiversion target's loop, so that it is vectorised there"
)]
#[inline(always)]
pub(crate) fn exp_neg(y: f32) -> f32 {
    // e^(−y) = 2^a, a = −y·log₂e, split into a whole n (rounded to nearest) and f in [−½, ½].
    let a = (-y * std::f32::consts::LOG2_E).max(-126.0);
    let n = (a + ROUND) - ROUND;
    let f = (a - n) * std::f32::consts::LN_2;
    // e^f for |f| ≤ ln2 / 2, Taylor to the 7th power: relative error under 10⁻⁸.
    let ef = 1.0
        + f * (1.0
            + f * (1.0 / 2.0
                + f * (1.0 / 6.0
                    + f * (1.0 / 24.0
                        + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f * (1.0 / 5040.0)))))));
    // 2^n from its exponent bits (n in [−126, 0]).
    let scale = f32::from_bits((n as i32 + 127).cast_unsigned() << 23);
    ef * scale
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    reason = "test inputs are small whole numbers scaled, and the values compared are exact"
)]
mod tests {
    use super::*;

    /// The exact GELU in f64.
    fn reference(x: f32) -> f64 {
        let x = f64::from(x);
        0.5 * x * libm::erfc(-x / std::f64::consts::SQRT_2)
    }

    #[test]
    fn the_gelu_is_the_exact_one_to_within_half_a_millionth_of_x() {
        let mut xs: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 0.001).collect();
        xs.extend([
            -1e4, -300.0, -87.0, -30.0, 1e-30, -1e-30, 0.0, -0.0, 30.0, 300.0, 1e4,
        ]);
        let mut got = xs.clone();
        gelu_erf(&mut got);
        for (&x, &g) in xs.iter().zip(&got) {
            let want = reference(x);
            let error = (f64::from(g) - want).abs();
            assert!(
                error <= 5e-7 * f64::from(x.abs()).max(1e-3) + 1e-37,
                "gelu({x}) = {g}, want {want} (error {error:e})"
            );
        }
        // The far negative tail is relatively right too, not 0 minus a rounding error.
        let tail = got[xs.iter().position(|&x| x == -5.0).unwrap_or(0)];
        assert!(tail < 0.0 && (f64::from(tail) / reference(-5.0) - 1.0).abs() < 0.05);
    }

    #[test]
    fn large_buffers_split_between_threads_give_the_same_values() {
        let xs: Vec<f32> = (0..3 * CHUNK + 17)
            .map(|i| ((i * 7919) % 20_001) as f32 * 0.001 - 10.0)
            .collect();
        let mut whole = xs.clone();
        gelu_erf(&mut whole);
        let each: Vec<f32> = xs.iter().map(|&x| gelu(x)).collect();
        assert_eq!(whole, each);
        assert!(gelu(f32::NAN).is_nan());
        assert_eq!(gelu(f32::INFINITY), f32::INFINITY);
        assert_eq!(gelu(0.0), 0.0);
    }
}
