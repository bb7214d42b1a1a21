// Next-token choice: greedy at temperature 0, otherwise temperature, top-k and top-p (nucleus)
// sampling driven by a seeded generator, so a seed reproduces a run.
import { UserError } from '../api';
import { SeededRandom } from '../random';

export interface SamplingOptions {
  temperature: number;
  topP?: number;
  topK?: number;
  seed?: number;
}

export function argmax(logits: Float32Array, offset = 0, length = logits.length - offset): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = logits[offset + i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

export class Sampler {
  private readonly random: SeededRandom;

  constructor(private readonly options: SamplingOptions) {
    const { temperature, topP = 1, topK = 0 } = options;
    if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new UserError(`temperature must be 0 or more, got ${temperature}.`, 'bad-input');
    if (!(topP > 0 && topP <= 1)) throw new UserError(`top-p must be in (0, 1], got ${topP}.`, 'bad-input');
    if (!(Number.isInteger(topK) && topK >= 0)) throw new UserError(`top-k must be a whole number of 0 or more, got ${topK}.`, 'bad-input');
    this.random = new SeededRandom(options.seed ?? Date.now());
  }

  /** Picks a token from one row of logits. */
  sample(logits: Float32Array): number {
    const { temperature, topP = 1, topK = 0 } = this.options;
    if (temperature === 0) return argmax(logits);
    const n = logits.length;
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
    const probs = new Float32Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += probs[i] = Math.exp((logits[i]! - max) / temperature);
    for (let i = 0; i < n; i++) probs[i]! /= sum;
    // Candidates: tokens that can matter for top-k / top-p, sorted by probability.
    const cutoff = topP < 1 ? (1 - topP) / (n - 1) : 0;
    let candidates: number[] = [];
    for (let i = 0; i < n; i++) if (probs[i]! >= cutoff) candidates.push(i);
    candidates.sort((a, b) => probs[b]! - probs[a]! || a - b);
    if (topK > 0) candidates = candidates.slice(0, topK);
    // A top-p below 1/vocabulary over a near-uniform row can leave no token above the cutoff.
    if (candidates.length === 0) return argmax(logits);
    let total = 0;
    let last = candidates.length - 1;
    for (let i = 0; i < candidates.length; i++) {
      total += probs[candidates[i]!]!;
      if (total > topP) {
        last = i;
        break;
      }
    }
    candidates = candidates.slice(0, last + 1);
    const mass = candidates.reduce((s, i) => s + probs[i]!, 0);
    let r = this.random.next() * mass;
    for (const i of candidates) {
      r -= probs[i]!;
      if (r <= 0) return i;
    }
    return candidates[candidates.length - 1]!;
  }
}
