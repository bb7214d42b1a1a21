// Test tooling: greedy decoding with the engine, keeping each step's log-probabilities, to compare
// with an oracle (llamacpp.ts returns log-probabilities too).
import type { DecoderModel } from '../../src/engine/model/decoder';
import { argmax } from '../../src/engine/model/sampling';

export function logSoftmax(x: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return x.map((v) => v - lse);
}

/** A prefill of `prompt`, then `n` greedy single steps on the KV cache; logprobs[i] come before ids[i]. */
export async function engineGreedy(model: DecoderModel, prompt: number[], n: number): Promise<{ ids: number[]; logprobs: Float32Array[] }> {
  const state = model.newState();
  let r = await model.forward(state, model.embedding.lookup(prompt), prompt.length, 1);
  const ids: number[] = [];
  const logprobs: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    logprobs.push(logSoftmax(r.logits));
    const next = argmax(r.logits);
    ids.push(next);
    if (i < n - 1) r = await model.forward(state, model.embedding.lookup([next]), 1, 1);
  }
  return { ids, logprobs };
}
