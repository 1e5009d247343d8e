//! Loading the network's layers from a CTranslate2 model's variables: plain f32 weights for the
//! encoder, f16 kept as stored for the decoder's few-row products.

use candle_core::{DType, Device, Tensor};
use candle_nn::LayerNorm;

use super::ct2::{Ct2Model, Variable};
use super::decoder::Norm;
use super::matmul::Projection;
use super::model::{FusedAttention, Result, err};

/// Takes a CTranslate2 model's variables out one by one as the network's layers.
pub(super) struct Loader<'a> {
    pub(super) model: &'a mut Ct2Model,
    pub(super) device: &'a Device,
}

impl Loader<'_> {
    pub(super) fn var(&mut self, name: &str) -> Result<Variable> {
        self.model
            .take(name)
            .ok_or_else(|| format!("the model has no variable {name}"))
    }

    pub(super) fn tensor(&mut self, name: &str) -> Result<Tensor> {
        let v = self.var(name)?;
        Tensor::from_vec(v.data, v.dims.as_slice(), self.device).map_err(err)
    }

    pub(super) fn linear(&mut self, prefix: &str) -> Result<Projection> {
        let w = self.tensor(&format!("{prefix}/weight"))?;
        let b = self.tensor(&format!("{prefix}/bias")).ok();
        Ok(Projection::new(w, b))
    }

    /// A weight that is multiplied with a few rows at a time (the decoder's): kept as f16 when
    /// the model stores it so (exactly the same values, half the memory to read at each step).
    pub(super) fn compact_tensor(&mut self, name: &str) -> Result<Tensor> {
        let v = self.var(name)?;
        let half = v.half;
        let t = Tensor::from_vec(v.data, v.dims.as_slice(), self.device).map_err(err)?;
        if half {
            t.to_dtype(DType::F16).map_err(err)
        } else {
            Ok(t)
        }
    }

    /// A decoder projection applied to a few token rows at a time (see [`Self::compact_tensor`]).
    pub(super) fn compact_linear(&mut self, prefix: &str) -> Result<Projection> {
        let w = self.compact_tensor(&format!("{prefix}/weight"))?;
        let b = self.tensor(&format!("{prefix}/bias")).ok();
        Ok(Projection::new(w, b))
    }

    /// A layer norm's scale and shift as plain values (the decoder's).
    pub(super) fn norm(&mut self, prefix: &str) -> Result<Norm> {
        let g = self.var(&format!("{prefix}/gamma"))?;
        let b = self.var(&format!("{prefix}/beta"))?;
        Norm::new(g.data, b.data)
    }

    pub(super) fn layer_norm(&mut self, prefix: &str) -> Result<LayerNorm> {
        let g = self.tensor(&format!("{prefix}/gamma"))?;
        let b = self.tensor(&format!("{prefix}/beta"))?;
        Ok(LayerNorm::new(g, b, 1e-5))
    }

    /// A fused projection split into `parts` equal row blocks (`compact`: see
    /// [`Self::compact_tensor`]).
    pub(super) fn split_linear(
        &mut self,
        prefix: &str,
        parts: usize,
        compact: bool,
    ) -> Result<Vec<Projection>> {
        let name = format!("{prefix}/weight");
        let w = if compact {
            self.compact_tensor(&name)?
        } else {
            self.tensor(&name)?
        };
        let b = self.tensor(&format!("{prefix}/bias")).ok();
        let rows = w.dim(0).map_err(err)? / parts;
        (0..parts)
            .map(|i| {
                let wi = w
                    .narrow(0, i * rows, rows)
                    .map_err(err)?
                    .contiguous()
                    .map_err(err)?;
                let bi = match &b {
                    Some(b) => Some(
                        b.narrow(0, i * rows, rows)
                            .map_err(err)?
                            .contiguous()
                            .map_err(err)?,
                    ),
                    None => None,
                };
                Ok(Projection::new(wi, bi))
            })
            .collect()
    }
}

impl Loader<'_> {
    /// An encoder layer's self-attention: its layer norm, the fused q/k/v projection kept whole,
    /// and the output projection.
    pub(super) fn encoder_attention(
        &mut self,
        layer: &str,
        n_heads: usize,
    ) -> Result<(LayerNorm, FusedAttention)> {
        let qkv = self.linear(&format!("{layer}/self_attention/linear_0"))?;
        let out = self.linear(&format!("{layer}/self_attention/linear_1"))?;
        let ln = self.layer_norm(&format!("{layer}/self_attention/layer_norm"))?;
        Ok((ln, FusedAttention { qkv, out, n_heads }))
    }
}
