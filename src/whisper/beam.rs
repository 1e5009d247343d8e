//! Beam search for a final's first (temperature 0) pass: several hypotheses decoded side by side
//! in one batch, each step keeping the most probable continuations, the finished text with the
//! best length-normalised log-probability winning (as the reference decoder and faster-whisper
//! rank them). Word times come from one more decoder pass over the winner's tokens, on the state
//! kept from after the prompt.

use std::sync::atomic::AtomicBool;

use super::decode::{Recognizer, STOPPED, stopped};
use super::fallback::Attempt;
use super::greedy::BeamStart;
use super::model::{DecoderState, log_softmax};
use super::repeat::cut_repeat;

/// One hypothesis: its text tokens, each one's log-probability, and their sum (with the
/// end-of-text token's, once finished).
#[derive(Debug, Clone, Default)]
struct Hypothesis {
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    score: f64,
}

impl Hypothesis {
    /// The score per token, what hypotheses of different lengths are ranked by.
    fn rank(&self) -> f64 {
        self.score / self.tokens.len().max(1) as f64
    }

    /// Ends a hypothesis at `cut` tokens (a loop cut off).
    fn truncate(&mut self, cut: usize) {
        self.tokens.truncate(cut);
        self.logprobs.truncate(cut);
        self.score = self.logprobs.iter().map(|&l| f64::from(l)).sum();
    }
}

/// The `k` most probable tokens of `logprobs`, most probable first (one pass, no copy of the
/// vocabulary).
fn top(logprobs: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (id, &lp) in (0u32..).zip(logprobs) {
        if !lp.is_finite() || (best.len() == k && best.last().is_some_and(|&(_, l)| lp <= l)) {
            continue;
        }
        let at = best.partition_point(|&(_, l)| l >= lp);
        best.insert(at, (id, lp));
        best.truncate(k);
    }
    best
}

impl Recognizer {
    /// One decoding keeping `beams` hypotheses, from `start` (the text greedy decoding was
    /// sure of, often none).
    pub(super) fn beam_attempt(
        &self,
        start: BeamStart,
        beams: usize,
        seconds: f64,
        stop: &[&AtomicBool],
    ) -> Result<Attempt, String> {
        let BeamStart {
            after_prompt,
            prompt_weights: weights,
            no_speech,
            tokens,
            logprobs,
            score,
            state: first,
            logits,
        } = start;
        let eot = self.tokenizer.specials.eot;
        let limit = self.token_limit(seconds);
        let n_text_ctx = self.model.dims.n_text_ctx;
        let mut state = None;
        let mut live = vec![Hypothesis {
            tokens,
            logprobs,
            score,
        }];
        let mut live_logits = vec![logits];
        let mut finished: Vec<Hypothesis> = Vec::new();
        loop {
            if stopped(stop) {
                return Err(STOPPED.to_owned());
            }
            // Each live hypothesis's best continuations, best overall first.
            let mut candidates: Vec<(usize, u32, f32, f64)> = Vec::new();
            for (i, (hypothesis, logits)) in live.iter().zip(&mut live_logits).enumerate() {
                self.suppress(logits, hypothesis.tokens.is_empty());
                let logprobs = log_softmax(logits);
                for (token, lp) in top(&logprobs, beams + 1) {
                    candidates.push((i, token, lp, hypothesis.score + f64::from(lp)));
                }
            }
            candidates.sort_by(|a, b| b.3.total_cmp(&a.3));
            let mut next: Vec<Hypothesis> = Vec::new();
            let mut from: Vec<u32> = Vec::new();
            for (i, token, lp, score) in candidates {
                if next.len() >= beams {
                    break;
                }
                let parent = &live[i];
                if token == eot {
                    if finished.len() < beams {
                        finished.push(Hypothesis {
                            score,
                            ..parent.clone()
                        });
                    }
                    continue;
                }
                let mut child = parent.clone();
                child.tokens.push(token);
                child.logprobs.push(lp);
                child.score = score;
                if let Some(cut) = self.loop_cut(&child.tokens) {
                    // A loop: this hypothesis ends where it started.
                    child.truncate(cut);
                    finished.push(child);
                    continue;
                }
                next.push(child);
                from.push(i as u32);
            }
            let position = state
                .as_ref()
                .map_or(first.position(), DecoderState::position);
            let full =
                next.first().is_some_and(|h| h.tokens.len() > limit) || position + 1 >= n_text_ctx;
            if finished.len() >= beams || next.is_empty() || full {
                if finished.is_empty() {
                    // The cap cut every hypothesis: a loop it cut short is cut here.
                    for mut h in next {
                        if let Some(cut) = cut_repeat(&h.tokens) {
                            h.truncate(cut);
                        }
                        finished.push(h);
                    }
                }
                break;
            }
            let batch = match &mut state {
                Some(state) => {
                    state.reorder(&from)?;
                    state
                }
                None => state.insert(first.beams(from.len())?),
            };
            let tokens: Vec<u32> = next
                .iter()
                .filter_map(|h| h.tokens.last().copied())
                .collect();
            live_logits = self.model.decode_beams(batch, &tokens)?;
            live = next;
        }
        let best = finished
            .into_iter()
            .max_by(|a, b| a.rank().total_cmp(&b.rank()))
            .ok_or("the beam search found no text")?;
        let rows = self.alignment_rows(after_prompt, weights, &best.tokens)?;
        let text = self.tokenizer.decode(&best.tokens).trim().to_owned();
        Ok(Attempt {
            tokens: best.tokens,
            token_logprobs: best.logprobs,
            rows,
            text,
            no_speech,
            temperature: 0.0,
        })
    }

    /// The alignment heads' cross-attention rows for `tokens` (as the greedy pass collects them:
    /// the last prompt position's, then each text token's): the prompt's rows are `prompt`, the
    /// tokens' come from one decoder pass on the state after the prompt.
    fn alignment_rows(
        &self,
        mut after_prompt: DecoderState,
        prompt: super::model::HeadWeights,
        tokens: &[u32],
    ) -> Result<Vec<Vec<Vec<f32>>>, String> {
        let mut rows: Vec<Vec<Vec<f32>>> = prompt
            .into_iter()
            .map(|per_token| per_token.last().cloned().into_iter().collect())
            .collect();
        if tokens.is_empty() {
            return Ok(rows);
        }
        let (_, weights) = self
            .model
            .decode(&mut after_prompt, tokens, &self.alignment_heads)?;
        for (row, mut new) in rows.iter_mut().zip(weights) {
            row.append(&mut new);
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_gives_the_most_probable_first_and_skips_impossible_tokens() {
        let logprobs = [-3.0, -0.5, f32::NEG_INFINITY, -1.0, -7.0];
        assert_eq!(top(&logprobs, 3), vec![(1, -0.5), (3, -1.0), (0, -3.0)]);
        assert_eq!(top(&[-1.0, f32::NEG_INFINITY], 2), vec![(0, -1.0)]);
    }

    #[test]
    fn hypotheses_rank_by_score_per_token() {
        let short = Hypothesis {
            tokens: vec![1],
            logprobs: vec![-1.0],
            score: -1.5,
        };
        let long = Hypothesis {
            tokens: vec![1, 2, 3],
            logprobs: vec![-1.0, -0.5, -0.5],
            score: -2.5,
        };
        assert!(long.rank() > short.rank());
    }
}
