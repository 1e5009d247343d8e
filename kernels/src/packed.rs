//! An f16 weight matrix stored for products with a few rows: blocks of eight output columns,
//! each block's `k` weights for those columns side by side (`[k][8]`), so one eight-lane vector
//! holds the same input position of eight outputs. A product then needs no horizontal sums:
//! each input value is broadcast and multiplied into eight outputs at once, and every input
//! row of a tile reuses the block's weights, widened once, from cache.

use half::f16;
use rayon::prelude::{IndexedParallelIterator, ParallelIterator, ParallelSlice, ParallelSliceMut};

use pulp::bytemuck::cast;
use pulp::x86::V3;
use pulp::{Simd, f32x8, i16x8, i32x8, u32x8};

use crate::widen;

/// Output columns per block (one 8-lane vector of f32).
const LANES: usize = 8;
/// Input rows multiplied together against widened blocks.
const TILE: usize = 5;
/// Weights up to which a product stays on the calling thread: waking another costs more than
/// it saves (a 512 × 512 product of five rows takes ~50 µs on one core).
const SMALL: usize = 1 << 20;

/// An `(n, k)` f16 weight in blocks of [`LANES`] rows of `w` (output columns); the last block
/// is padded with zeros.
#[derive(Clone)]
pub struct Packed {
    n: usize,
    k: usize,
    bits: Vec<u16>,
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packed")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl Packed {
    /// Packs a row-major `(n, k)` weight; `None` when its length is not a multiple of `k` or
    /// a value is infinite or NaN (the product's widening assumes finite values).
    #[must_use]
    pub fn new(w: &[f16], k: usize) -> Option<Self> {
        if k == 0 || w.is_empty() || !w.len().is_multiple_of(k) || w.iter().any(|v| !v.is_finite())
        {
            return None;
        }
        let n = w.len() / k;
        let blocks = n.div_ceil(LANES);
        let mut bits = vec![0u16; blocks * k * LANES];
        for (j, row) in w.chunks_exact(k).enumerate() {
            let (block, lane) = (j / LANES, j % LANES);
            let base = block * k * LANES + lane;
            for (i, v) in row.iter().enumerate() {
                bits[base + i * LANES] = v.to_bits();
            }
        }
        Some(Self { n, k, bits })
    }

    /// Output columns (rows of the original weight).
    #[must_use]
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input width.
    #[must_use]
    pub fn k(&self) -> usize {
        self.k
    }

    /// Row `j` of the original weight, widened (an embedding lookup); empty past the end.
    #[must_use]
    pub fn row(&self, j: usize) -> Vec<f32> {
        if j >= self.n {
            return Vec::new();
        }
        let base = (j / LANES) * self.k * LANES + j % LANES;
        (0..self.k)
            .map(|i| widen(self.bits[base + i * LANES]))
            .collect()
    }

    /// The whole original weight, row-major `(n, k)`, widened.
    #[must_use]
    pub fn unpack(&self) -> Vec<f32> {
        (0..self.n).flat_map(|j| self.row(j)).collect()
    }

    /// `x · wᵀ + bias` for `rows` rows of `k` in `x`; returns `rows` rows of `n`. Empty when
    /// the sizes do not fit.
    #[must_use]
    pub fn product(&self, x: &[f32], rows: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        if rows == 0 || x.len() != rows * k || bias.is_some_and(|b| b.len() != n) {
            return Vec::new();
        }
        let blocks = n.div_ceil(LANES);
        // Per block, its rows × 8 outputs; blocks split between the threads in at most 32
        // groups, each of at least 64 K weights, so that handing them out stays cheap (a
        // decoder step makes dozens of products of 512 × 512).
        let mut by_block = vec![0f32; blocks * rows * LANES];
        if self.bits.len() <= SMALL {
            blocks_product(x, rows, k, &self.bits, &mut by_block);
        } else {
            let group = (blocks / 32).max((1 << 16) / (k * LANES)).max(1);
            by_block
                .par_chunks_mut(group * rows * LANES)
                .zip(self.bits.par_chunks(group * k * LANES))
                .for_each(|(out, bits)| blocks_product(x, rows, k, bits, out));
        }
        let mut out = vec![0f32; rows * n];
        for (block, values) in by_block.chunks_exact(rows * LANES).enumerate() {
            for (r, lanes) in values.chunks_exact(LANES).enumerate() {
                let start = block * LANES;
                let width = LANES.min(n - start);
                let row = &mut out[r * n + start..r * n + start + width];
                row.copy_from_slice(&lanes[..width]);
                if let Some(bias) = bias {
                    for (o, b) in row.iter_mut().zip(&bias[start..start + width]) {
                        *o += b;
                    }
                }
            }
        }
        out
    }
}

/// Products of every input row with the blocks in `bits` (`[block][k][8]`); `out` gets
/// `[block][row][8]`. AVX2 and FMA where the CPU has them, else plain loops.
fn blocks_product(x: &[f32], rows: usize, k: usize, bits: &[u16], out: &mut [f32]) {
    if let Some(simd) = V3::try_new() {
        let blocks: &[i16x8] = pulp::bytemuck::cast_slice(bits);
        simd.vectorize(BlocksV3 {
            simd,
            x,
            rows,
            k,
            blocks,
            out,
        });
    } else {
        blocks_product_plain(x, rows, k, bits, out);
    }
}

/// [`blocks_v3`]'s arguments, called inlined inside [`V3::vectorize`] (a closure doing the same
/// is not always inlined there, and its vector instructions then become calls).
struct BlocksV3<'a> {
    simd: V3,
    x: &'a [f32],
    rows: usize,
    k: usize,
    blocks: &'a [i16x8],
    out: &'a mut [f32],
}

impl pulp::NullaryFnOnce for BlocksV3<'_> {
    type Output = ();

    #[allow(
        clippy::inline_always,
        reason = "runs inside V3::vectorize, which needs its callees inlined"
    )]
    #[inline(always)]
    fn call(self) {
        blocks_v3(self.simd, self.x, self.rows, self.k, self.blocks, self.out);
    }
}

/// [`blocks_product`] with AVX2 vectors: the rows in tiles of rows × blocks multiplied
/// together, enough independent sums in flight to hide the multiply-add's latency (one row
/// alone waited on it at every weight), few enough to stay in the 16 vector registers.
#[allow(
    clippy::inline_always,
    reason = "runs inside V3::vectorize, which needs its callees inlined"
)]
#[inline(always)]
fn blocks_v3(simd: V3, x: &[f32], rows: usize, k: usize, blocks: &[i16x8], out: &mut [f32]) {
    let mut r = 0;
    while r < rows {
        let take = TILE.min(rows - r);
        let x = &x[r * k..(r + take) * k];
        let tile = Tile { k, rows, first: r };
        match take {
            5 => tile_v3::<5, 1>(simd, x, blocks, tile, out),
            4 => tile_v3::<4, 2>(simd, x, blocks, tile, out),
            3 => tile_v3::<3, 3>(simd, x, blocks, tile, out),
            2 => tile_v3::<2, 4>(simd, x, blocks, tile, out),
            _ => tile_v3::<1, 4>(simd, x, blocks, tile, out),
        }
        r += take;
    }
}

/// [`blocks_product`] without vectors, for CPUs without AVX2 and FMA.
fn blocks_product_plain(x: &[f32], rows: usize, k: usize, bits: &[u16], out: &mut [f32]) {
    for (block, out) in bits
        .chunks_exact(k * LANES)
        .zip(out.chunks_exact_mut(rows * LANES))
    {
        for (row, out) in x.chunks_exact(k).zip(out.chunks_exact_mut(LANES)) {
            for (i, v) in row.iter().enumerate() {
                for (l, o) in out.iter_mut().enumerate() {
                    *o += v * widen(block[i * LANES + l]);
                }
            }
        }
    }
}

/// Where a tile's rows lie: the input width, the product's row count, and the tile's first row.
#[derive(Clone, Copy)]
struct Tile {
    k: usize,
    rows: usize,
    first: usize,
}

/// Eight f16 values widened to f32 (see [`tile_v3`]).
#[allow(
    clippy::inline_always,
    reason = "runs inside V3::vectorize, which needs its callees inlined"
)]
#[inline(always)]
fn widen8(simd: V3, h: i16x8, mask: u32x8, scale: f32x8) -> f32x8 {
    let wide: i32x8 = simd.convert_i16x8_to_i32x8(h);
    let shifted: u32x8 = cast(simd.shl_const_i32x8::<13>(wide));
    simd.mul_f32s(cast(simd.and_u32s(shifted, mask)), scale)
}

/// `R` input rows (`x`, rows of `k`, the first being row `tile.first` of `tile.rows`) times
/// every block, `B` blocks at a time: for each input position one vector of eight f16 weights
/// per block widened, and multiplied with each row's value broadcast.
#[allow(
    clippy::inline_always,
    reason = "runs inside V3::vectorize, which needs its callees inlined"
)]
#[inline(always)]
fn tile_v3<const R: usize, const B: usize>(
    simd: V3,
    x: &[f32],
    blocks: &[i16x8],
    tile: Tile,
    out: &mut [f32],
) {
    let Tile { k, rows, first } = tile;
    // Sign-extended and shifted by 13, an f16's sign lands on bit 31 (and copies of it on
    // 30..28, cleared by the mask) and its exponent and mantissa on an f32's low fields: that
    // f32 times 2^112 is the f16's value (subnormals included; the weights are finite).
    let mask = simd.splat_u32s(0x8fff_e000);
    let scale = simd.splat_f32s(f32::from_bits((127 + 112) << 23));
    // The rows' values side by side per input position: one bounds check per position.
    let xt: Vec<[f32; R]> = (0..k)
        .map(|i| std::array::from_fn(|r| x[r * k + i]))
        .collect();
    let mut groups = blocks
        .chunks_exact(k * B)
        .zip(out.chunks_exact_mut(rows * LANES * B));
    for (group, out) in &mut groups {
        let ws: [&[i16x8]; B] = std::array::from_fn(|b| &group[b * k..(b + 1) * k]);
        if ws.iter().any(|w| w.len() != xt.len()) {
            return;
        }
        let mut acc = [[simd.splat_f32s(0.0); R]; B];
        for (i, xi) in xt.iter().enumerate() {
            let xv: [f32x8; R] = std::array::from_fn(|r| simd.splat_f32s(xi[r]));
            for b in 0..B {
                let w = widen8(simd, ws[b][i], mask, scale);
                for r in 0..R {
                    acc[b][r] = simd.mul_add_e_f32s(xv[r], w, acc[b][r]);
                }
            }
        }
        for (b, acc) in acc.iter().enumerate() {
            let out = &mut out[b * rows * LANES..(b + 1) * rows * LANES];
            for (r, a) in acc.iter().enumerate() {
                let values: [f32; LANES] = cast(*a);
                out[(first + r) * LANES..(first + r + 1) * LANES].copy_from_slice(&values);
            }
        }
    }
    // The blocks short of a whole group, one at a time.
    let done = blocks.len() / (k * B) * B;
    for (block, out) in blocks[done * k..]
        .chunks_exact(k)
        .zip(out[done * rows * LANES..].chunks_exact_mut(rows * LANES))
    {
        let mut acc = [simd.splat_f32s(0.0); R];
        for (&h, xi) in block.iter().zip(&xt) {
            let w = widen8(simd, h, mask, scale);
            for r in 0..R {
                acc[r] = simd.mul_add_e_f32s(simd.splat_f32s(xi[r]), w, acc[r]);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let values: [f32; LANES] = cast(*a);
            out[(first + r) * LANES..(first + r + 1) * LANES].copy_from_slice(&values);
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_precision_loss, reason = "small test indices")]
mod tests {
    use super::*;

    /// Values exact in f16, among them subnormals, zeros of both signs and the largest.
    fn weights(n: usize, k: usize) -> Vec<f16> {
        let special = [0.0, -0.0, 6.0e-8, -3.0e-5, 65504.0, -65504.0, 1.0e-4];
        (0..n * k)
            .map(|i| {
                if i % 11 == 0 {
                    f16::from_f32(special[(i / 11) % special.len()])
                } else {
                    f16::from_f32(((i * 37 % 101) as f32 - 50.0) / 64.0)
                }
            })
            .collect()
    }

    fn textbook(x: &[f32], rows: usize, w: &[f16], k: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let n = w.len() / k;
        let mut out = Vec::new();
        for i in 0..rows {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|l| f64::from(x[i * k + l]) * f64::from(w[j * k + l].to_f32()))
                    .sum();
                out.push(dot as f32 + bias.map_or(0.0, |b| b[j]));
            }
        }
        out
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(a, b)| (a - b).abs() <= 1e-3 * a.abs().max(1.0))
    }

    #[test]
    fn the_packed_product_is_the_textbook_one_for_any_rows_and_widths() {
        // Widths below and above one block, output counts that leave the last block short,
        // every tile size and more rows than a tile, and enough weights to split on threads.
        for (n, k) in [(1, 1), (7, 3), (9, 40), (21, 64), (300, 17), (2100, 520)] {
            let w = weights(n, k);
            let packed = Packed::new(&w, k);
            let Some(packed) = packed else {
                panic!("{n} x {k} not packed");
            };
            assert_eq!((packed.n(), packed.k()), (n, k));
            let bias: Vec<f32> = (0..n).map(|j| j as f32 / 7.0 - 1.0).collect();
            for rows in [1, 2, 3, 4, 5, 6, 7, 13] {
                let x: Vec<f32> = (0..rows * k)
                    .map(|i| ((i * 7 % 23) as f32 - 11.0) / 9.0)
                    .collect();
                let expected = textbook(&x, rows, &w, k, Some(&bias));
                let ours = packed.product(&x, rows, Some(&bias));
                assert!(close(&expected, &ours), "{rows} rows of {n} x {k}");
                let mut plain = vec![0f32; n.div_ceil(LANES) * rows * LANES];
                blocks_product_plain(&x, rows, k, &packed.bits, &mut plain);
                let mut vector = vec![0f32; plain.len()];
                blocks_product(&x, rows, k, &packed.bits, &mut vector);
                assert!(
                    close(&plain, &vector),
                    "plain vs vectors: {rows} rows of {n} x {k}"
                );
            }
        }
    }

    #[test]
    fn rows_come_back_as_stored_and_bad_input_is_refused() {
        let (n, k) = (19, 6);
        let w = weights(n, k);
        let Some(packed) = Packed::new(&w, k) else {
            panic!("not packed");
        };
        let wide: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
        assert_eq!(packed.unpack(), wide);
        assert_eq!(packed.row(18), wide[18 * k..]);
        assert!(packed.row(19).is_empty());
        assert!(packed.product(&[1.0; 5], 1, None).is_empty());
        assert!(packed.product(&[1.0; 6], 1, Some(&[0.0; 3])).is_empty());
        assert!(Packed::new(&w[..w.len() - 1], k).is_none());
        let mut bad = w.clone();
        bad[40] = f16::INFINITY;
        assert!(Packed::new(&bad, k).is_none());
        bad[40] = f16::NAN;
        assert!(Packed::new(&bad, k).is_none());
    }
}
