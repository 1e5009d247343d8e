//! A segment's decoder state: what the decoder keeps between steps (cross-attention keys and
//! values of the audio, self-attention caches), and how beam search copies and reorders it.

use candle_core::Tensor;

use super::model::{Result, err};

/// Per-segment decoder caches. A clone is a snapshot (tensors are shared, never changed in place:
/// a step replaces the caches with longer ones).
#[derive(Clone)]
pub struct DecoderState {
    /// Each decoder layer's cross-attention keys and values of the audio (shared by beams).
    pub(super) cross: Vec<(Tensor, Tensor)>,
    /// Each layer's self-attention keys and values so far (one row per hypothesis).
    pub(super) cache: Vec<Option<(Tensor, Tensor)>>,
    /// Tokens decoded so far.
    pub(super) position: usize,
}

impl DecoderState {
    pub fn position(&self) -> usize {
        self.position
    }

    /// This one-hypothesis state copied for `beams` hypotheses decoded side by side (the
    /// audio's keys and values stay shared).
    pub fn beams(&self, beams: usize) -> Result<DecoderState> {
        let cache = self
            .cache
            .iter()
            .map(|kv| {
                kv.as_ref()
                    .map(|(k, v)| Ok((k.repeat((beams, 1, 1, 1))?, v.repeat((beams, 1, 1, 1))?)))
                    .transpose()
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(err)?;
        Ok(DecoderState {
            cross: self.cross.clone(),
            cache,
            position: self.position,
        })
    }

    /// Forgets every position from `position` on (a draft's tokens the model did not confirm).
    pub fn truncate(&mut self, position: usize) -> Result<()> {
        if position >= self.position {
            return Ok(());
        }
        for kv in self.cache.iter_mut().flatten() {
            *kv = (
                kv.0.narrow(2, 0, position).map_err(err)?,
                kv.1.narrow(2, 0, position).map_err(err)?,
            );
        }
        self.position = position;
        Ok(())
    }

    /// Hypothesis `i` goes on from hypothesis `from[i]` (some are dropped, some copied).
    pub fn reorder(&mut self, from: &[u32]) -> Result<()> {
        let Some(device) = self.cross.first().map(|(k, _)| k.device().clone()) else {
            return Ok(());
        };
        let index = Tensor::from_slice(from, from.len(), &device).map_err(err)?;
        for kv in self.cache.iter_mut().flatten() {
            *kv = (
                kv.0.index_select(&index, 0).map_err(err)?,
                kv.1.index_select(&index, 0).map_err(err)?,
            );
        }
        Ok(())
    }
}
