//! The Whisper network built from a CTranslate2 model: an encoder in candle that runs on only as
//! many frames as the audio needs (not always 30 s), and the text decoder (`decoder.rs`, on plain
//! vectors) with cached self-attention keys/values and cross-attention keys/values computed once
//! per encoded segment.

use candle_core::{Device, Module, Tensor};
use candle_nn::LayerNorm;

use super::matmul::Projection;

use super::ct2::Ct2Model;
use super::decoder::TextDecoder;
pub use super::decoder_state::DecoderState;
use super::loader::Loader;

/// Shapes of a loaded model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dims {
    pub n_mels: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub n_vocab: usize,
    /// Encoder positions (1500 = 30 s).
    pub n_audio_ctx: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
}

pub type Result<T> = std::result::Result<T, String>;

/// Cross-attention weights of the requested heads: [head][token][audio position].
pub type HeadWeights = Vec<Vec<Vec<f32>>>;

pub(super) fn err(e: candle_core::Error) -> String {
    e.to_string()
}

/// Scaled dot-product attention of `q` (B, H, Tq, Dh) over `k`, `v` (B, H, Tk, Dh): the heads'
/// outputs side by side (B, Tq, H·Dh), and the attention weights.
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> candle_core::Result<(Tensor, Tensor)> {
    let dh = q.dim(3)?;
    let scale = 1.0 / (dh as f64).sqrt();
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    let out = weights.matmul(v)?;
    let (b, h, t, d) = out.dims4()?;
    let out = out.transpose(1, 2)?.reshape((b, t, h * d))?;
    Ok((out, weights))
}

/// The encoder's self-attention: its query, key and value projections as the model stores them,
/// fused (one product of three times the width, and one copy into heads).
pub(super) struct FusedAttention {
    pub(super) qkv: Projection,
    pub(super) out: Projection,
    pub(super) n_heads: usize,
}

impl FusedAttention {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let qkv = self.qkv.forward(x)?;
        let (b, t, width) = qkv.dims3()?;
        let dh = width / 3 / self.n_heads;
        // (B, T, 3, H, Dh) -> (3, B, H, T, Dh)
        let qkv = qkv
            .reshape((b, t, 3, self.n_heads, dh))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let (out, _) = attend(&qkv.get(0)?, &qkv.get(1)?, &qkv.get(2)?, None)?;
        self.out.forward(&out)
    }
}

struct EncoderLayer {
    attn_ln: LayerNorm,
    attn: FusedAttention,
    mlp_ln: LayerNorm,
    fc1: Projection,
    fc2: Projection,
}

fn mlp(
    ln: &LayerNorm,
    fc1: &Projection,
    fc2: &Projection,
    x: &Tensor,
) -> candle_core::Result<Tensor> {
    fc2.forward(&gelu(&fc1.forward(&ln.forward(x)?)?)?)
}

/// The exact GELU (the one Whisper was trained with), vectorised: candle's is a scalar `erf`
/// per value, a fifth of the encoder's time.
fn gelu(x: &Tensor) -> candle_core::Result<Tensor> {
    let mut values = x.flatten_all()?.to_vec1::<f32>()?;
    lightning_kernels::gelu_erf(&mut values);
    Tensor::from_vec(values, x.shape(), x.device())
}

/// The loaded network; shared between sessions (it holds no per-stream state).
pub struct Whisper {
    pub dims: Dims,
    device: Device,
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    enc_pos: Tensor,
    encoder: Vec<EncoderLayer>,
    enc_ln: LayerNorm,
    decoder: TextDecoder,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whisper")
            .field("dims", &self.dims)
            .finish_non_exhaustive()
    }
}

/// Sinusoidal positions as Whisper's encoder uses them.
fn sinusoids(length: usize, channels: usize) -> Vec<f32> {
    let half = channels / 2;
    let increment = (10_000f64).ln() / (half as f64 - 1.0);
    let mut out = vec![0f32; length * channels];
    for t in 0..length {
        for i in 0..half {
            let scaled = t as f64 * (-(increment * i as f64)).exp();
            out[t * channels + i] = scaled.sin() as f32;
            out[t * channels + half + i] = scaled.cos() as f32;
        }
    }
    out
}

#[allow(
    clippy::maybe_infinite_iter,
    reason = "ends at the first layer index the model does not have"
)]
fn count_layers(model: &Ct2Model, prefix: &str) -> usize {
    (0..)
        .take_while(|i| {
            model
                .get(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))
                .is_some()
        })
        .count()
}

impl Whisper {
    pub fn from_ct2(mut model: Ct2Model) -> Result<Self> {
        if model.spec != "WhisperSpec" {
            return Err(format!("a {} model, not Whisper", model.spec));
        }
        let device = Device::Cpu;
        let n_heads = model
            .scalar("encoder/num_heads")
            .ok_or("the model has no encoder/num_heads")? as usize;
        let encoder_layers = count_layers(&model, "encoder");
        let decoder_layers = count_layers(&model, "decoder");
        let conv1_dims = model
            .get("encoder/conv1/weight")
            .ok_or("the model has no encoder/conv1/weight")?
            .dims
            .clone();
        let embed_dims = model
            .get("decoder/embeddings/weight")
            .ok_or("the model has no decoder/embeddings/weight")?
            .dims
            .clone();
        let dec_pos_dims = model
            .get("decoder/position_encodings/encodings")
            .ok_or("the model has no decoder/position_encodings/encodings")?
            .dims
            .clone();
        if conv1_dims.len() != 3 || embed_dims.len() != 2 || dec_pos_dims.len() != 2 {
            return Err("unexpected tensor ranks in the model".into());
        }
        let dims = Dims {
            n_mels: conv1_dims[1],
            d_model: conv1_dims[0],
            n_heads,
            encoder_layers,
            decoder_layers,
            n_vocab: embed_dims[0],
            n_audio_ctx: 1500,
            n_text_ctx: dec_pos_dims[0],
        };
        if n_heads == 0
            || !dims.d_model.is_multiple_of(n_heads)
            || encoder_layers == 0
            || decoder_layers == 0
        {
            return Err(format!("inconsistent model dimensions {dims:?}"));
        }
        let mut l = Loader {
            model: &mut model,
            device: &device,
        };
        let conv1 = (
            l.tensor("encoder/conv1/weight")?,
            l.tensor("encoder/conv1/bias")?,
        );
        let conv2 = (
            l.tensor("encoder/conv2/weight")?,
            l.tensor("encoder/conv2/bias")?,
        );
        let enc_pos = Tensor::from_vec(
            sinusoids(dims.n_audio_ctx, dims.d_model),
            (dims.n_audio_ctx, dims.d_model),
            &device,
        )
        .map_err(err)?;
        let mut encoder = Vec::with_capacity(encoder_layers);
        for i in 0..encoder_layers {
            let p = format!("encoder/layer_{i}");
            let (attn_ln, attn) = l.encoder_attention(&p, n_heads)?;
            encoder.push(EncoderLayer {
                attn_ln,
                attn,
                mlp_ln: l.layer_norm(&format!("{p}/ffn/layer_norm"))?,
                fc1: l.linear(&format!("{p}/ffn/linear_0"))?,
                fc2: l.linear(&format!("{p}/ffn/linear_1"))?,
            });
        }
        let enc_ln = l.layer_norm("encoder/layer_norm")?;
        let decoder = TextDecoder::load(&mut l, &dims)?;
        Ok(Self {
            dims,
            device,
            conv1,
            conv2,
            enc_pos,
            encoder,
            enc_ln,
            decoder,
        })
    }

    /// Encodes `frames` columns of an `n_mels`-row log-mel (row-major); `frames` must be even
    /// and at most 3000. Returns the audio features (1, frames / 2, d_model).
    /// Runs the encoder; `stop` is asked between layers, and `None` returned once it says so.
    pub fn encode(
        &self,
        mel: &[f32],
        frames: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Tensor>> {
        self.encode_inner(mel, frames, stop).map_err(err)
    }

    fn encode_inner(
        &self,
        mel: &[f32],
        frames: usize,
        stop: &dyn Fn() -> bool,
    ) -> candle_core::Result<Option<Tensor>> {
        let x = Tensor::from_slice(mel, (1, self.dims.n_mels, frames), &self.device)?;
        let x = x
            .conv1d(&self.conv1.0, 1, 1, 1, 1)?
            .broadcast_add(&self.conv1.1.reshape((1, (), 1))?)?;
        let x = gelu(&x)?;
        let x = x
            .conv1d(&self.conv2.0, 1, 2, 1, 1)?
            .broadcast_add(&self.conv2.1.reshape((1, (), 1))?)?;
        let x = gelu(&x)?;
        let x = x.transpose(1, 2)?;
        let ctx = x.dim(1)?;
        let mut x = x.broadcast_add(&self.enc_pos.narrow(0, 0, ctx)?)?;
        for layer in &self.encoder {
            if stop() {
                return Ok(None);
            }
            let a = layer.attn.forward(&layer.attn_ln.forward(&x)?)?;
            x = (x + a)?;
            x = (&x + mlp(&layer.mlp_ln, &layer.fc1, &layer.fc2, &x)?)?;
        }
        self.enc_ln.forward(&x).map(Some)
    }

    /// A decoder state for one encoded segment: cross-attention keys/values computed once.
    pub fn start_decoding(&self, audio: &Tensor) -> Result<DecoderState> {
        self.decoder.start(audio)
    }

    /// Runs new tokens through the decoder, extending `state`'s caches. Returns the logits of
    /// the last token (n_vocab) and, when `attention_heads` is not empty, each new token's
    /// cross-attention weights of those (layer, head) pairs: [heads][tokens][audio positions].
    pub fn decode(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        attention_heads: &[(usize, usize)],
    ) -> Result<(Vec<f32>, HeadWeights)> {
        let (logits, weights) = self
            .decoder
            .forward(state, tokens, 1, attention_heads, false)?;
        let logits = logits
            .into_iter()
            .next()
            .ok_or("the decoder gave no logits")?;
        Ok((logits, weights))
    }

    /// Runs new tokens through the decoder as [`Whisper::decode`] does, but returns the logits
    /// after each of them (`tokens.len()` rows of n_vocab): a draft checked in one pass, where
    /// each row says what the model would have picked after that token.
    pub fn decode_each(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        attention_heads: &[(usize, usize)],
    ) -> Result<(Vec<Vec<f32>>, HeadWeights)> {
        self.decoder
            .forward(state, tokens, 1, attention_heads, true)
    }

    /// Runs one new token per hypothesis through a state made by [`DecoderState::beams`]
    /// (`tokens[i]` extends hypothesis `i`); returns each hypothesis's logits.
    pub fn decode_beams(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.decoder
            .forward(state, tokens, tokens.len(), &[], false)
            .map(|(logits, _)| logits)
    }
}

/// Softmax over a slice, in place-free form (for language detection and probabilities).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    let log_sum = sum.ln() + max;
    logits.iter().map(|&l| l - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoids_start_with_sin_zero_and_cos_one() {
        let s = sinusoids(3, 8);
        assert_eq!(&s[0..4], &[0.0; 4]);
        assert_eq!(&s[4..8], &[1.0; 4]);
        // Position 1, channel 0: sin(1).
        assert!((s[8] - 1f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let l = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f32 = l.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(l[2] > l[1] && l[1] > l[0]);
    }
}
