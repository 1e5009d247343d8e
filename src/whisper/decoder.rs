//! The text decoder on plain vectors: layer norms, the packed projections
//! ([`Projection::apply`]), attention over keys and values kept as rows
//! (`lightning_kernels::attention`) and the GELU, one layer after the other.
//!
//! A decoding step is one to five token rows. As tensor operations its few dozen small steps
//! (heads split and joined, caches concatenated, tiny matrix products, softmax) cost more in
//! bookkeeping than in arithmetic: a step took ~13 ms where reading its weights takes ~4 ms.

use candle_core::Tensor;
use lightning_kernels::{Span, attention, gelu_erf};

use super::decoder_state::{DecoderState, Rows};
use super::loader::Loader;
use super::matmul::Projection;
use super::model::{Dims, HeadWeights, Result, err};

/// A layer norm's scale and shift (ε = 10⁻⁵).
pub(super) struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    pub(super) fn new(gamma: Vec<f32>, beta: Vec<f32>) -> Result<Self> {
        if gamma.is_empty() || gamma.len() != beta.len() {
            return Err(format!(
                "a layer norm of {} scales and {} shifts",
                gamma.len(),
                beta.len()
            ));
        }
        Ok(Norm { gamma, beta })
    }

    /// Each row of `x` normalised (the mean and variance as candle's layer norm takes them, so
    /// that the values are the same).
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.gamma.len();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(d) {
            let (sum, squares) = row
                .iter()
                .fold((0f32, 0f32), |(s, q), &v| (s + v, q + v * v));
            let mean = sum / d as f32;
            let variance = squares / d as f32 - mean * mean;
            let inverse = (variance + 1e-5).sqrt().recip();
            out.extend(
                row.iter()
                    .zip(&self.gamma)
                    .zip(&self.beta)
                    .map(|((v, g), b)| (v - mean) * inverse * g + b),
            );
        }
        out
    }
}

struct Layer {
    attn_ln: Norm,
    q: Projection,
    k: Projection,
    v: Projection,
    attn_out: Projection,
    cross_ln: Norm,
    cross_q: Projection,
    /// The audio's keys and values: many rows, once per segment.
    cross_k: Projection,
    cross_v: Projection,
    cross_out: Projection,
    mlp_ln: Norm,
    fc1: Projection,
    fc2: Projection,
}

/// The decoder's weights.
pub(super) struct TextDecoder {
    layers: Vec<Layer>,
    ln: Norm,
    /// The token embeddings, also the output projection (tied).
    embed: Projection,
    /// Learned positions, rows of the model's width.
    positions: Vec<f32>,
    width: usize,
    heads: usize,
    n_text_ctx: usize,
    n_vocab: usize,
}

/// `x += y`, element by element.
fn add(x: &mut [f32], y: &[f32]) {
    for (x, y) in x.iter_mut().zip(y) {
        *x += y;
    }
}

impl TextDecoder {
    pub(super) fn load(l: &mut Loader<'_>, dims: &Dims) -> Result<Self> {
        let mut layers = Vec::with_capacity(dims.decoder_layers);
        for i in 0..dims.decoder_layers {
            let p = format!("decoder/layer_{i}");
            let qkv = l.split_linear(&format!("{p}/self_attention/linear_0"), 3, true)?;
            let [q, k, v]: [Projection; 3] = qkv
                .try_into()
                .map_err(|_| "a fused projection did not split in three".to_string())?;
            let kv = l.split_linear(&format!("{p}/attention/linear_1"), 2, false)?;
            let [cross_k, cross_v]: [Projection; 2] = kv
                .try_into()
                .map_err(|_| "a fused projection did not split in two".to_string())?;
            layers.push(Layer {
                attn_ln: l.norm(&format!("{p}/self_attention/layer_norm"))?,
                q,
                k,
                v,
                attn_out: l.compact_linear(&format!("{p}/self_attention/linear_1"))?,
                cross_ln: l.norm(&format!("{p}/attention/layer_norm"))?,
                cross_q: l.compact_linear(&format!("{p}/attention/linear_0"))?,
                cross_k,
                cross_v,
                cross_out: l.compact_linear(&format!("{p}/attention/linear_2"))?,
                mlp_ln: l.norm(&format!("{p}/ffn/layer_norm"))?,
                fc1: l.compact_linear(&format!("{p}/ffn/linear_0"))?,
                fc2: l.compact_linear(&format!("{p}/ffn/linear_1"))?,
            });
        }
        let positions = l.var("decoder/position_encodings/encodings")?;
        if positions.data.len() != dims.n_text_ctx * dims.d_model {
            return Err("the decoder's positions do not fit the model's width".into());
        }
        Ok(TextDecoder {
            layers,
            ln: l.norm("decoder/layer_norm")?,
            embed: Projection::new(l.compact_tensor("decoder/embeddings/weight")?, None),
            positions: positions.data,
            width: dims.d_model,
            heads: dims.n_heads,
            n_text_ctx: dims.n_text_ctx,
            n_vocab: dims.n_vocab,
        })
    }

    /// A decoder state for one encoded segment (`audio`: (1, positions, width)): the audio's
    /// keys and values computed once.
    pub(super) fn start(&self, audio: &Tensor) -> Result<DecoderState> {
        let rows_of = |p: &Projection| -> candle_core::Result<Vec<f32>> {
            p.forward(audio)?.flatten_all()?.to_vec1::<f32>()
        };
        let audio = self
            .layers
            .iter()
            .map(|layer| {
                Ok(Rows {
                    keys: rows_of(&layer.cross_k)?,
                    values: rows_of(&layer.cross_v)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(err)?;
        Ok(DecoderState::new(audio, self.width))
    }

    /// The decoder on `batch` hypotheses of `tokens.len() / batch` new tokens each (row-major),
    /// extending `state`'s caches. Returns the logits of each hypothesis's last token (batch
    /// rows of n_vocab), or with `every` (a batch of one) of each new token, and, for a batch
    /// of one, the cross-attention weights of `attention_heads` ((layer, head) pairs):
    /// [heads][tokens][audio positions].
    pub(super) fn forward(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        batch: usize,
        attention_heads: &[(usize, usize)],
        every: bool,
    ) -> Result<(Vec<Vec<f32>>, HeadWeights)> {
        if tokens.is_empty() || batch == 0 || !tokens.len().is_multiple_of(batch) {
            return Err("no tokens to decode".into());
        }
        if state.hypotheses() != batch {
            return Err(format!(
                "{batch} hypotheses given to a decoder state of {}",
                state.hypotheses()
            ));
        }
        if state.width != self.width || state.audio.len() != self.layers.len() {
            return Err("a decoder state made for another model".into());
        }
        let (n, d, rows) = (tokens.len() / batch, self.width, tokens.len());
        let past = state.position;
        if past + n > self.n_text_ctx {
            return Err("the decoder's context is full".into());
        }
        let mut x = self.embed.row_values(tokens).map_err(err)?;
        for (r, row) in x.chunks_exact_mut(d).enumerate() {
            let at = (past + r % n) * d;
            add(row, &self.positions[at..at + d]);
        }
        let mut weights_out: HeadWeights = Vec::new();
        for (li, layer) in self.layers.iter().enumerate() {
            // Self-attention: each hypothesis's new rows over its own past, causally.
            let h = layer.attn_ln.apply(&x);
            let q = layer.q.apply(&h, rows).map_err(err)?;
            let k = layer.k.apply(&h, rows).map_err(err)?;
            let v = layer.v.apply(&h, rows).map_err(err)?;
            let mut heads_out = Vec::with_capacity(rows * d);
            for (b, own) in state.own.iter_mut().enumerate() {
                let own = own
                    .get_mut(li)
                    .ok_or("a decoder state with too few layers")?;
                let new = b * n * d..(b + 1) * n * d;
                own.keys.extend_from_slice(&k[new.clone()]);
                own.values.extend_from_slice(&v[new.clone()]);
                let shared = state
                    .shared
                    .get(li)
                    .ok_or("a decoder state with too few layers")?;
                let spans = [
                    Span {
                        keys: &shared.keys,
                        values: &shared.values,
                    },
                    Span {
                        keys: &own.keys,
                        values: &own.values,
                    },
                ];
                let (out, _) = attention(&q[new], self.heads, d, &spans, &|i| past + i + 1, false);
                heads_out.extend(out);
            }
            add(
                &mut x,
                &layer.attn_out.apply(&heads_out, rows).map_err(err)?,
            );
            // Cross-attention: every row over the whole audio.
            let h = layer.cross_ln.apply(&x);
            let q = layer.cross_q.apply(&h, rows).map_err(err)?;
            let audio = state
                .audio
                .get(li)
                .ok_or("a decoder state with too few layers")?;
            let span = [Span {
                keys: &audio.keys,
                values: &audio.values,
            }];
            let keep = batch == 1 && attention_heads.iter().any(|&(l, _)| l == li);
            let (out, weights) = attention(&q, self.heads, d, &span, &|_| usize::MAX, keep);
            if keep {
                let positions = audio.keys.len() / d;
                for &(_, head) in attention_heads.iter().filter(|(l, _)| *l == li) {
                    let rows_of_head = (0..n)
                        .map(|i| {
                            let start = (i * self.heads + head) * positions;
                            weights.get(start..start + positions).map(<[f32]>::to_vec)
                        })
                        .collect::<Option<Vec<_>>>()
                        .ok_or("an attention head the model does not have")?;
                    weights_out.push(rows_of_head);
                }
            }
            add(&mut x, &layer.cross_out.apply(&out, rows).map_err(err)?);
            // The MLP.
            let h = layer.mlp_ln.apply(&x);
            let mut hidden = layer.fc1.apply(&h, rows).map_err(err)?;
            gelu_erf(&mut hidden);
            add(&mut x, &layer.fc2.apply(&hidden, rows).map_err(err)?);
        }
        state.position += n;
        let last: Vec<f32> = if every && batch == 1 {
            x
        } else {
            x.chunks_exact(n * d)
                .flat_map(|hypothesis| &hypothesis[(n - 1) * d..])
                .copied()
                .collect()
        };
        let count = last.len() / d;
        let logits = self
            .embed
            .apply(&self.ln.apply(&last), count)
            .map_err(err)?;
        if logits.len() != count * self.n_vocab {
            return Err("the output projection does not fit the vocabulary".into());
        }
        Ok((
            logits
                .chunks_exact(self.n_vocab)
                .map(<[f32]>::to_vec)
                .collect(),
            weights_out,
        ))
    }
}
