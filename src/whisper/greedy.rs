//! One decoding of an encoded segment token by token: greedy (checking a draft, the last
//! interim's text, in one decoder pass first) or sampled at a temperature; with a doubt
//! threshold, greedy hands over to beam search at its first doubtful token.

use std::sync::atomic::AtomicBool;

use super::decode::{Begun, Recognizer, STOPPED, stopped};
use super::fallback::{self, Attempt};
use super::model::log_softmax;
use super::repeat::{cut_repeat, repetition, restart, starts_over};

/// How one attempt picks its tokens.
#[derive(Debug, Clone, Copy)]
pub(super) struct Steps<'a> {
    /// 0 for greedy.
    pub temperature: f32,
    /// Tokens the text is expected to start with (greedy only).
    pub draft: &'a [u32],
    /// Hand over to beam search at the first token less probable than this.
    pub doubt: Option<f32>,
}

/// What an attempt ended with.
pub(super) enum Decoded {
    Done(Attempt),
    /// Greedy decoding met a doubtful token: beam search goes on from there.
    Doubt(Box<BeamStart>),
}

/// Where beam search starts: the text decoded before the first doubtful token, and the decoder
/// there; and the state after the prompt, for the winner's word times.
pub(super) struct BeamStart {
    pub after_prompt: super::model::DecoderState,
    pub prompt_weights: super::model::HeadWeights,
    pub no_speech: f64,
    pub tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
    pub score: f64,
    pub state: super::model::DecoderState,
    /// The logits for the token after `tokens`.
    pub logits: Vec<f32>,
}

impl Recognizer {
    /// Where to cut text that has fallen into a loop, checked as it grows (greedy decoding
    /// and each beam): a block repeated too often, the text starting over, or its first words
    /// again right after its first sentence.
    pub(super) fn loop_cut(&self, tokens: &[u32]) -> Option<usize> {
        repetition(tokens)
            .or_else(|| restart(tokens))
            .or_else(|| starts_over(tokens, |t| self.tokenizer.ends_sentence(t)))
    }

    /// One decoding after the prompt (`begun`) at `steps.temperature` (0: greedy). Greedy
    /// decoding checks `steps.draft` in one decoder pass first and goes on step by step from
    /// where the model disagrees with it (the same text, fewer passes). With `steps.doubt`, it
    /// stops at the first token the model gives less than that probability, and returns the
    /// decoder there for beam search to go on from.
    pub(super) fn attempt(
        &self,
        begun: Begun,
        steps: Steps<'_>,
        seconds: f64,
        rng: &mut fastrand::Rng,
        stop: &[&AtomicBool],
    ) -> Result<Decoded, String> {
        let Begun {
            mut state,
            no_speech,
            mut logits,
            weights,
        } = begun;
        let heads = &self.alignment_heads;
        let after_prompt = steps.doubt.map(|_| (state.clone(), weights.clone()));
        // Rows of attention per head: the last prompt position predicts the first text token.
        let mut rows: Vec<Vec<Vec<f32>>> = weights
            .into_iter()
            .map(|per_token| per_token.last().cloned().into_iter().collect())
            .collect();
        let mut tokens: Vec<u32> = Vec::new();
        let mut token_logprobs: Vec<f32> = Vec::new();
        let limit = self.token_limit(seconds);
        let n_text_ctx = self.model.dims.n_text_ctx;
        let s = &self.tokenizer.specials;
        let base = state.position();
        let greedy = steps.temperature <= 0.0;
        let draft = if greedy {
            // At most as many rows as the decoder's own products take (beyond, the output
            // projection's f16 weights would be widened into a copy for the matrix library);
            // a longer draft's rest is decoded step by step.
            let room = n_text_ctx
                .saturating_sub(base + 1)
                .min(limit)
                .min(super::matmul::FEW_ROWS);
            &steps.draft[..steps.draft.len().min(room)]
        } else {
            &[]
        };
        // The model's logits and attention rows after each draft token, while the text so far
        // is the draft's.
        let mut accepted = 0;
        let mut checked = if draft.is_empty() {
            None
        } else {
            Some(self.model.decode_each(&mut state, draft, heads)?)
        };
        loop {
            if stopped(stop) {
                return Err(STOPPED.to_owned());
            }
            self.suppress(&mut logits, tokens.is_empty());
            let logprobs = log_softmax(&logits);
            let picked = if greedy {
                logprobs
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, &lp)| (i as u32, lp))
            } else {
                fallback::sample(&logprobs, steps.temperature, rng)
            };
            let (next, lp) = picked.ok_or("the model produced no logits")?;
            if let (Some(doubt), Some((after_prompt, prompt_weights))) =
                (steps.doubt, &after_prompt)
                && lp.exp() < doubt
            {
                // Beam search takes it from here: the decoder back to the text so far.
                state.truncate(base + tokens.len())?;
                let score = token_logprobs.iter().map(|&l| f64::from(l)).sum();
                return Ok(Decoded::Doubt(Box::new(BeamStart {
                    after_prompt: after_prompt.clone(),
                    prompt_weights: prompt_weights.clone(),
                    no_speech,
                    tokens,
                    logprobs: token_logprobs,
                    score,
                    state,
                    logits,
                })));
            }
            if next == s.eot {
                break;
            }
            if tokens.len() >= limit || base + tokens.len() + 1 >= n_text_ctx {
                // The cap cut the text: a loop it cut short is not caught below.
                if let Some(cut) = cut_repeat(&tokens) {
                    tokens.truncate(cut);
                    token_logprobs.truncate(cut);
                    for row in &mut rows {
                        row.truncate(cut + 1);
                    }
                }
                break;
            }
            tokens.push(next);
            token_logprobs.push(lp);
            if let Some(cut) = self.loop_cut(&tokens) {
                tokens.truncate(cut);
                token_logprobs.truncate(cut);
                for row in &mut rows {
                    row.truncate(cut + 1);
                }
                break;
            }
            let at = tokens.len() - 1;
            match &mut checked {
                Some((after, w)) if draft.get(at) == Some(&next) => {
                    // The draft holds: its pass already gave what follows.
                    accepted += 1;
                    logits = std::mem::take(&mut after[at]);
                    for (r, head) in rows.iter_mut().zip(w.iter_mut()) {
                        r.push(std::mem::take(&mut head[at]));
                    }
                }
                _ => {
                    if checked.take().is_some() {
                        // The model parts from the draft here: forget the draft's rest.
                        state.truncate(base + at)?;
                    }
                    let (l, w) = self.model.decode(&mut state, &[next], heads)?;
                    logits = l;
                    for (r, mut new) in rows.iter_mut().zip(w) {
                        r.append(&mut new);
                    }
                }
            }
        }
        tracing::debug!(draft = draft.len(), accepted, "greedy decoding");
        let text = self.tokenizer.decode(&tokens).trim().to_owned();
        Ok(Decoded::Done(Attempt {
            tokens,
            token_logprobs,
            rows,
            text,
            no_speech,
            temperature: steps.temperature,
        }))
    }
}
