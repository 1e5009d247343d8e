//! The decoder's projections, a few token rows at a time (one per beam hypothesis).
//!
//! The matrix library packs the weight matrix into its own layout before each product with more
//! than one row: for a decoding step of five hypotheses that copy cost more than the product
//! itself (40 % of a beam search's time went to packing). The decoder's f16 weights are instead
//! packed once, at load, for `lightning_kernels::Packed`: eight output columns side by side, so
//! a product reads each weight once, from where it lies, at half the size of f32, and multiplies
//! it into every input row with no horizontal sums. An f32 weight goes through
//! `lightning_kernels::product` for a few rows; many rows (the encoder, the audio's keys) stay
//! with the matrix library, which does those well.

use std::sync::Arc;

use candle_core::{D, DType, Device, Module, Storage, Tensor};
use candle_nn::Linear;
use half::f16;
use lightning_kernels::{Packed, Weights, product};

/// Products with up to this many input rows take the path here.
pub(super) const FEW_ROWS: usize = 64;

/// A linear layer: weight `(out, in)`, and an optional f32 bias. An f16 weight (finite, as a
/// model's are) is kept packed for [`Packed::product`].
#[derive(Debug, Clone)]
pub(super) struct Projection {
    weight: Weight,
    bias: Option<Tensor>,
    /// The bias's values, for products on plain vectors.
    bias_values: Option<Vec<f32>>,
}

#[derive(Debug, Clone)]
enum Weight {
    Plain(Tensor),
    Packed(Arc<Packed>, Device),
}

impl Projection {
    pub(super) fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        let weight = match pack(&weight) {
            Some(packed) => Weight::Packed(Arc::new(packed), weight.device().clone()),
            None => Weight::Plain(weight),
        };
        let bias_values = bias
            .as_ref()
            .and_then(|b| b.flatten_all().and_then(|b| b.to_vec1::<f32>()).ok());
        Self {
            weight,
            bias,
            bias_values,
        }
    }

    /// `x · weightᵀ (+ bias)` for `rows` rows of plain values: a few rows of a packed weight
    /// straight through [`Packed::product`], anything else as a tensor through
    /// [`Self::forward`].
    pub(super) fn apply(&self, x: &[f32], rows: usize) -> candle_core::Result<Vec<f32>> {
        if rows == 0 || !x.len().is_multiple_of(rows) {
            candle_core::bail!("{} values are not {rows} rows", x.len());
        }
        let k = x.len() / rows;
        if let Weight::Packed(packed, _) = &self.weight
            && rows <= FEW_ROWS
        {
            if packed.k() != k {
                candle_core::bail!(
                    "projection of width {k} by a weight of width {}",
                    packed.k()
                );
            }
            return Ok(packed.product(x, rows, self.bias_values.as_deref()));
        }
        let x = Tensor::from_slice(x, (rows, k), &Device::Cpu)?;
        self.forward(&x)?.flatten_all()?.to_vec1::<f32>()
    }

    /// `x · weightᵀ (+ bias)` over `x`'s last dimension.
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let k = x.dim(D::Minus1)?;
        let rows = x.elem_count() / k.max(1);
        match &self.weight {
            Weight::Packed(packed, device) => {
                if packed.k() != k {
                    candle_core::bail!(
                        "projection of width {k} by a weight of width {}",
                        packed.k()
                    );
                }
                if rows == 0 || rows > FEW_ROWS {
                    // Not the decoder's own use (a long conditioning prompt): widened for the
                    // matrix library, this once.
                    let weight = Tensor::from_vec(packed.unpack(), (packed.n(), k), device)?;
                    return Linear::new(weight, self.bias.clone()).forward(x);
                }
                let input = x.flatten_all()?.to_vec1::<f32>()?;
                let out = packed.product(&input, rows, self.bias_values.as_deref());
                shaped(out, rows, packed.n(), x)
            }
            Weight::Plain(weight) => project(x, weight, self.bias.as_ref()),
        }
    }

    /// Rows `ids` of the weight, widened, one after the other: the weight used as an embedding
    /// table.
    pub(super) fn row_values(&self, ids: &[u32]) -> candle_core::Result<Vec<f32>> {
        match &self.weight {
            Weight::Packed(packed, _) => {
                let mut values = Vec::with_capacity(ids.len() * packed.k());
                for &id in ids {
                    let row = packed.row(id as usize);
                    if row.is_empty() {
                        candle_core::bail!("token {id} is past the embedding table");
                    }
                    values.extend(row);
                }
                Ok(values)
            }
            Weight::Plain(weight) => {
                let ids = Tensor::from_slice(ids, ids.len(), weight.device())?;
                weight
                    .index_select(&ids, 0)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()
            }
        }
    }
}

/// An f16 `(n, k)` weight packed, or `None` (f32, not two-dimensional, or not finite).
fn pack(weight: &Tensor) -> Option<Packed> {
    if weight.dtype() != DType::F16 {
        return None;
    }
    let (_, k) = weight.dims2().ok()?;
    let values = weight.flatten_all().ok()?.to_vec1::<f16>().ok()?;
    Packed::new(&values, k)
}

/// `out` (`rows` rows of `n`) in `x`'s shape with its last dimension `n`.
fn shaped(out: Vec<f32>, rows: usize, n: usize, x: &Tensor) -> candle_core::Result<Tensor> {
    if out.len() != rows * n {
        candle_core::bail!("a weight of {n} columns that does not fit its input");
    }
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    Tensor::from_vec(out, dims, x.device())
}

/// `x · weightᵀ (+ bias)` over `x`'s last dimension for a weight kept as a tensor: a few rows by
/// [`product`] (an f16 weight even for one row: its half-size read is the gain), more with the
/// matrix library.
fn project(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let k = x.dim(D::Minus1)?;
    let rows = x.elem_count() / k.max(1);
    let half = weight.dtype() == DType::F16;
    if rows > FEW_ROWS || rows == 0 || (rows == 1 && !half) {
        let weight = if half {
            weight.to_dtype(DType::F32)?
        } else {
            weight.clone()
        };
        return Linear::new(weight, bias.cloned()).forward(x);
    }
    let (n, weight_k) = weight.dims2()?;
    if weight_k != k {
        candle_core::bail!("projection of width {k} by a weight of width {weight_k}");
    }
    let input = x.flatten_all()?.to_vec1::<f32>()?;
    let bias = bias.map(Tensor::to_vec1::<f32>).transpose()?;
    let out = {
        let (storage, layout) = weight.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            candle_core::bail!("the few-rows product runs on the CPU only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("the few-rows product needs a contiguous weight");
        };
        let weights = if half {
            Weights::F16(cpu.as_slice::<f16>()?.get(start..end).unwrap_or_default())
        } else {
            Weights::F32(cpu.as_slice::<f32>()?.get(start..end).unwrap_or_default())
        };
        product(&input, rows, weights, k, bias.as_deref())
    };
    shaped(out, rows, n, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn worst_difference(a: &Tensor, b: &Tensor) -> candle_core::Result<f32> {
        let a = a.flatten_all()?.to_vec1::<f32>()?;
        let b = b.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(a.len(), b.len());
        Ok(a.iter()
            .zip(&b)
            .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
            .fold(0f32, f32::max))
    }

    #[test]
    fn every_path_gives_what_the_matrix_library_gives() -> candle_core::Result<()> {
        let device = Device::Cpu;
        // Odd sizes (a width that is not a multiple of 32, output rows not a multiple of a
        // block), one row, a few, and more than the few-rows path takes.
        for (rows, k, n) in [
            (1, 40, 9),
            (2, 13, 7),
            (5, 64, 100),
            (8, 37, 257),
            (5, 512, 2048),
            (FEW_ROWS, 33, 65),
            (FEW_ROWS + 3, 70, 30),
        ] {
            // Weights that are exact in f16, as a model stored in f16 has.
            let weight = Tensor::randn(0f32, 1.0, (n, k), &device)?
                .to_dtype(DType::F16)?
                .to_dtype(DType::F32)?;
            let bias = Tensor::randn(0f32, 1.0, n, &device)?;
            let x = Tensor::randn(0f32, 1.0, (rows, 1, k), &device)?;
            let expected = Linear::new(weight.clone(), Some(bias.clone())).forward(&x)?;
            for w in [weight.clone(), weight.to_dtype(DType::F16)?] {
                let packed = Projection::new(w.clone(), Some(bias.clone()));
                assert_eq!(
                    matches!(packed.weight, Weight::Packed(..)),
                    w.dtype() == DType::F16
                );
                for ours in [project(&x, &w, Some(&bias))?, packed.forward(&x)?] {
                    assert_eq!(ours.dims(), &[rows, 1, n]);
                    let worst = worst_difference(&expected, &ours)?;
                    assert!(
                        worst < 1e-4,
                        "{rows}x{k}x{n} {:?}: off by {worst}",
                        w.dtype()
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn an_embedding_table_gives_its_rows_packed_or_not() -> candle_core::Result<()> {
        let device = Device::Cpu;
        let table = Tensor::randn(0f32, 1.0, (21, 12), &device)?.to_dtype(DType::F16)?;
        let ids = [0u32, 20, 7, 7, 13];
        let expected = table
            .index_select(&Tensor::from_slice(&ids, 5, &device)?, 0)?
            .to_dtype(DType::F32)?;
        let packed = Projection::new(table.clone(), None);
        assert!(matches!(packed.weight, Weight::Packed(..)));
        let rows = |p: &Projection| -> candle_core::Result<Tensor> {
            Tensor::from_vec(p.row_values(&ids)?, (ids.len(), 12), &device)
        };
        assert!(worst_difference(&expected, &rows(&packed)?)? <= 0.0);
        assert!(packed.row_values(&[21]).is_err());
        let plain = Projection::new(table.to_dtype(DType::F32)?, None);
        assert!(worst_difference(&expected, &rows(&plain)?)? <= 0.0);
        Ok(())
    }

    #[test]
    fn a_weight_that_is_not_finite_is_not_packed() -> candle_core::Result<()> {
        let device = Device::Cpu;
        let mut values = vec![0.5f32; 16 * 4];
        values[9] = f32::INFINITY;
        let weight = Tensor::from_vec(values, (16, 4), &device)?.to_dtype(DType::F16)?;
        let p = Projection::new(weight, None);
        assert!(matches!(p.weight, Weight::Plain(..)));
        let out = p.forward(&Tensor::ones((1, 4), DType::F32, &device)?)?;
        let out = out.flatten_all()?.to_vec1::<f32>()?;
        assert!((out[0] - 2.0).abs() < 1e-6);
        assert!(out[2].is_infinite() && out[2] > 0.0);
        Ok(())
    }
}
