// One agent's latent thoughts (spec section 3): run the prompt, then m-1 single positions, each fed
// with the inner link of the previous last-layer (post-norm) hidden state, with the KV cache.
import type { RecursiveLink } from '../links/link';
import type { DecoderModel } from '../model/decoder';

export interface RolloutHooks {
  onStep?: (step: number, steps: number) => void;
  /** Throws to stop (cancellation); called between model steps. */
  check?: () => void;
}

/** Returns H = [h_1 .. h_m] ([m * hidden]), the raw post-norm states. No logits are computed. */
export async function latentRollout(
  model: DecoderModel,
  inner: RecursiveLink,
  promptEmbeds: Float32Array,
  promptCount: number,
  m: number,
  hooks: RolloutHooks = {},
): Promise<Float32Array> {
  const d = model.config.hiddenSize;
  const state = model.newState();
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
