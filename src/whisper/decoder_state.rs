//! A segment's decoder state: what the decoder keeps between steps (the audio's keys and values
//! for cross-attention, each hypothesis's self-attention keys and values so far), and how beam
//! search copies and reorders it.

use std::sync::Arc;

use super::model::Result;

/// One layer's keys and values of some positions, each a row of the model's width.
#[derive(Debug, Clone, Default)]
pub(super) struct Rows {
    pub keys: Vec<f32>,
    pub values: Vec<f32>,
}

impl Rows {
    fn truncated(&self, rows: usize, width: usize) -> Rows {
        let len = (rows * width).min(self.keys.len());
        Rows {
            keys: self.keys[..len].to_vec(),
            values: self.values[..len].to_vec(),
        }
    }
}

/// Per-segment decoder caches. A clone is a snapshot: the audio's rows and the positions every
/// hypothesis shares are shared, a hypothesis's own positions (those since a beam search
/// began) are copied.
#[derive(Debug, Clone)]
pub struct DecoderState {
    /// Per layer, the audio's keys and values.
    pub(super) audio: Arc<Vec<Rows>>,
    /// Per layer, the positions before the hypotheses parted (the prompt and the text greedy
    /// decoding was sure of).
    pub(super) shared: Arc<Vec<Rows>>,
    /// Per hypothesis, per layer, its positions after the shared ones.
    pub(super) own: Vec<Vec<Rows>>,
    /// Tokens decoded so far.
    pub(super) position: usize,
    /// The model's width (values per row).
    pub(super) width: usize,
}

impl DecoderState {
    /// A state of one hypothesis and no tokens, over the audio's keys and values per layer.
    pub(super) fn new(audio: Vec<Rows>, width: usize) -> Self {
        let layers = audio.len();
        DecoderState {
            audio: Arc::new(audio),
            shared: Arc::new(vec![Rows::default(); layers]),
            own: vec![vec![Rows::default(); layers]],
            position: 0,
            width,
        }
    }

    pub fn position(&self) -> usize {
        self.position
    }

    /// Hypotheses decoded side by side.
    pub(super) fn hypotheses(&self) -> usize {
        self.own.len()
    }

    /// Positions every hypothesis shares.
    fn shared_len(&self) -> usize {
        self.shared
            .first()
            .map_or(0, |r| r.keys.len() / self.width.max(1))
    }

    /// This one-hypothesis state copied for `beams` hypotheses decoded side by side: its
    /// positions become the shared ones.
    pub fn beams(&self, beams: usize) -> Result<DecoderState> {
        let [own] = self.own.as_slice() else {
            return Err(format!(
                "beams from a state of {} hypotheses, not one",
                self.own.len()
            ));
        };
        let shared = self
            .shared
            .iter()
            .zip(own)
            .map(|(shared, own)| Rows {
                keys: [shared.keys.as_slice(), &own.keys].concat(),
                values: [shared.values.as_slice(), &own.values].concat(),
            })
            .collect();
        Ok(DecoderState {
            audio: Arc::clone(&self.audio),
            shared: Arc::new(shared),
            own: vec![vec![Rows::default(); self.audio.len()]; beams],
            position: self.position,
            width: self.width,
        })
    }

    /// Forgets every position from `position` on (a draft's tokens the model did not confirm).
    pub fn truncate(&mut self, position: usize) -> Result<()> {
        if position >= self.position {
            return Ok(());
        }
        let (shared_len, width) = (self.shared_len(), self.width);
        if position < shared_len {
            self.shared = Arc::new(
                self.shared
                    .iter()
                    .map(|r| r.truncated(position, width))
                    .collect(),
            );
            for rows in self.own.iter_mut().flatten() {
                *rows = Rows::default();
            }
        } else {
            let keep = (position - shared_len) * width;
            for rows in self.own.iter_mut().flatten() {
                rows.keys.truncate(keep);
                rows.values.truncate(keep);
            }
        }
        self.position = position;
        Ok(())
    }

    /// Keeps the hypotheses `from` (by index, repeats allowed) in that order: beam search's
    /// survivors after a step.
    pub fn reorder(&mut self, from: &[u32]) -> Result<()> {
        self.own = from
            .iter()
            .map(|&i| {
                self.own
                    .get(i as usize)
                    .cloned()
                    .ok_or_else(|| format!("no hypothesis {i} to keep"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[f32]) -> Rows {
        Rows {
            keys: values.to_vec(),
            values: values.iter().map(|v| -v).collect(),
        }
    }

    #[test]
    fn beams_share_the_past_and_keep_their_own_rows_through_reorder_and_truncate() {
        // Width 2, one layer: two positions decoded before the beams part.
        let mut one = DecoderState::new(vec![rows(&[9.0, 9.0])], 2);
        one.own[0][0] = rows(&[1.0, 1.0, 2.0, 2.0]);
        one.position = 2;
        let mut beams = one.beams(3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(beams.shared_len(), 2);
        assert_eq!(beams.hypotheses(), 3);
        for (h, own) in beams.own.iter_mut().enumerate() {
            own[0] = rows(&[h as f32 * 10.0, 0.0]);
        }
        beams.position = 3;
        beams.reorder(&[2, 2, 0]).unwrap_or_else(|e| panic!("{e}"));
        let firsts: Vec<f32> = beams.own.iter().map(|o| o[0].keys[0]).collect();
        assert_eq!(firsts, vec![20.0, 20.0, 0.0]);
        assert!(beams.reorder(&[3]).is_err());
        assert!(beams.beams(2).is_err(), "beams only from one hypothesis");
        // Back into the shared positions: the shared rows are cut, the own ones emptied.
        beams.truncate(1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(beams.position(), 1);
        assert_eq!(beams.shared[0].keys, vec![1.0, 1.0]);
        assert!(beams.own.iter().all(|o| o[0].keys.is_empty()));
        // The one-hypothesis state the beams came from is untouched.
        assert_eq!(one.own[0][0].keys, vec![1.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn truncating_within_a_hypothesis_keeps_the_shared_rows() {
        let mut state = DecoderState::new(vec![Rows::default()], 1);
        state.own[0][0] = rows(&[1.0, 2.0, 3.0]);
        state.position = 3;
        state.truncate(5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.position(), 3);
        state.truncate(1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.own[0][0].keys, vec![1.0]);
        assert_eq!(state.own[0][0].values, vec![-1.0]);
    }
}
