// One agent's latent thoughts (spec section 3): run the prompt, then m-1 single positions, each fed
// with the inner link of the previous last-layer (post-norm) hidden state, on the decoder state
// (a KV cache, plus the fixed conv/recurrent state of linear-attention layers in hybrid models).
import type { RecursiveLink } from '../links/link';
import type { DecoderModel, DecoderState } from '../model/decoder';

export interface RolloutHooks {
  onStep?: (step: number, steps: number) => void;
  /** Throws to stop (cancellation); called between model steps. */
  check?: () => void;
}

/**
 * Returns H = [h_1 .. h_m] ([m * hidden]), the raw post-norm states. No logits are computed.
 * `state`, when given, already holds the start of the prompt (a reused prefix); `promptEmbeds` continues it.
 */
export async function latentRollout(
  model: DecoderModel,
  inner: RecursiveLink,
  promptEmbeds: Float32Array,
  promptCount: number,
  m: number,
  hooks: RolloutHooks = {},
  state: DecoderState = model.newState(),
): Promise<Float32Array> {
  const d = model.config.hiddenSize;
  const thoughts = new Float32Array(m * d);
  let { hidden } = await model.forward(state, promptEmbeds, promptCount, 0);
  for (let i = 0; i < m; i++) {
    const h = hidden.subarray(hidden.length - d);
    thoughts.set(h, i * d);
    hooks.onStep?.(i + 1, m);
    if (i === m - 1) break;
    hooks.check?.();
    ({ hidden } = await model.forward(state, await inner.apply(h, 1), 1, 0));
  }
  return thoughts;
}
