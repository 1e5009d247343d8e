//! The decoder's projections, a few token rows at a time (one per beam hypothesis).
//!
//! The matrix library packs the weight matrix into its own layout before each product with more
//! than one row: for a decoding step of five hypotheses that copy cost more than the product
//! itself (40 % of a beam search's time went to packing). `lightning_kernels::product` reads
//! each weight row once, where it lies (f16 when the model stores it so: half the memory to
//! read), and multiplies it with every input row while it is in cache. An f32 weight times one
//! row, and many rows (the encoder), stay with the matrix library, which does those well.

use candle_core::{D, DType, Module, Storage, Tensor};
use candle_nn::Linear;
use half::f16;
use lightning_kernels::{Weights, product};

/// Products with up to this many input rows take the path here.
pub(super) const FEW_ROWS: usize = 64;

/// A linear layer: weight `(out, in)`, f32 or f16, and an optional f32 bias.
#[derive(Debug, Clone)]
pub(super) struct Projection {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Projection {
    pub(super) fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        project(x, &self.weight, self.bias.as_ref())
    }
}

/// `x · weightᵀ (+ bias)` over `x`'s last dimension: a few rows by [`product`] (an f16 weight
/// even for one row: its half-size read is the gain), more with the matrix library.
pub(super) fn project(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
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
    if out.len() != rows * n {
        candle_core::bail!("a weight of {n} x {k} that does not fit its tensor");
    }
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    Tensor::from_vec(out, dims, x.device())
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
                let ours = project(&x, &w, Some(&bias))?;
                assert_eq!(ours.dims(), &[rows, 1, n]);
                let worst = worst_difference(&expected, &ours)?;
                assert!(
                    worst < 1e-4,
                    "{rows}x{k}x{n} {:?}: off by {worst}",
                    w.dtype()
                );
            }
        }
        Ok(())
    }
}
