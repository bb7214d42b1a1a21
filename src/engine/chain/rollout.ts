// One agent's latent thoughts (spec section 3): run the prompt, then m-1 single positions, each fed
// with the inner link of the previous last-layer (post-norm) hidden state, on the decoder state
// (a KV cache, plus the fixed conv/recurrent state of linear-attention layers in hybrid models).
import type { RecursiveLink } from '../links/link';
import type { Tensor } from 'onnxruntime-node';
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
  given?: DecoderState,
): Promise<Float32Array> {
  const d = model.config.hiddenSize;
  const thoughts = new Float32Array(m * d);
  const state = given ?? model.newState();
  // The agent's graph applies its inner link itself: one run per step, the input stays on the device.
  const fused = model.latentHeadKey !== undefined && model.latentHeadKey === inner.key;
  let next: Tensor | undefined;
  try {
    let r = await model.forward(state, promptEmbeds, promptCount, 0, { next: fused && m > 1 });
    for (let i = 0; i < m; i++) {
      const h = r.hidden.subarray(r.hidden.length - d);
      thoughts.set(h, i * d);
      hooks.onStep?.(i + 1, m);
      next = r.next;
      if (i === m - 1) break;
      hooks.check?.();
      if (next) {
        r = await model.forwardNext(state, next, i < m - 2);
        next = undefined;
      } else r = await model.forward(state, await inner.apply(h, 1), 1, 0);
    }
  } finally {
    next?.dispose();
    // A state the caller gave stays the caller's to release.
    if (!given) state.release();
  }
  return thoughts;
}
