// Text generation on a DecoderModel: prefill the prompt, then one position per token with the KV
// cache, sampling, stop tokens, a token budget and streamed text.
import { CancelledError } from '../api';
import type { DecoderModel, DecoderState } from './decoder';
import { Sampler, type SamplingOptions } from './sampling';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  /** Called with each generated token id before the next step runs. */
  onToken?: (id: number) => void;
}

export interface GenerateResult {
  tokens: number[];
  stoppedBy: 'stop-token' | 'max-tokens';
  prefillMs: number;
  decodeMs: number;
}

/** Generates after `promptEmbeds` ([count * hidden]) has been appended to `state`. */
export async function generateFromEmbeds(
  model: DecoderModel,
  state: DecoderState,
  promptEmbeds: Float32Array,
  promptCount: number,
  options: GenerateOptions,
): Promise<GenerateResult> {
  const sampler = new Sampler(options);
  const stops = new Set(options.stopTokens ?? model.config.eosTokenIds);
  const tokens: number[] = [];
  const t0 = performance.now();
  let { logits } = await model.forward(state, promptEmbeds, promptCount, 1);
  const prefillMs = performance.now() - t0;
  const embed = new Float32Array(model.config.hiddenSize);
  let stoppedBy: GenerateResult['stoppedBy'] = 'max-tokens';
  while (tokens.length < options.maxNewTokens) {
    if (options.signal?.aborted) throw new CancelledError();
    const next = sampler.sample(logits);
    if (stops.has(next)) {
      stoppedBy = 'stop-token';
      break;
    }
    tokens.push(next);
    options.onToken?.(next);
    if (tokens.length >= options.maxNewTokens) break;
    ({ logits } = await model.forward(state, model.embedding.lookup([next], embed), 1, 1));
  }
  return { tokens, stoppedBy, prefillMs, decodeMs: performance.now() - t0 - prefillMs };
}
