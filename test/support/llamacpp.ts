// Test tooling: llama.cpp (through node-llama-cpp) as an independent oracle for greedy decoding
// (CPU) and as a speed baseline (CPU, or a GPU build where RECURSIVEMAS_LLAMA_GPU names one that
// node-llama-cpp has a prebuilt binary for: cuda or vulkan; the GPU benchmark script sets it). Token ids go in directly: no llama.cpp tokenization, no BOS.
//
// node-llama-cpp 3.21 exposes no raw logits, only the softmax of the full-vocabulary logits
// (controlledEvaluate's `probabilities`, computed natively from llama_get_logits_ith when the
// sampler is plain greedy). So the "logits" returned here are log-probabilities: the raw logits
// shifted by their log-sum-exp. Argmax, and every difference between two tokens' values, are those
// of the raw logits; compare an engine's logits after log-softmax.
import type { ControlledEvaluateInputItem, Llama, LlamaModel, Token } from 'node-llama-cpp';
import { statSync } from 'node:fs';

type LlamaGpu = false | 'cuda' | 'vulkan';
const LLAMA_GPU: LlamaGpu = ((): LlamaGpu => {
  const v = process.env.RECURSIVEMAS_LLAMA_GPU;
  if (!v || v === 'cpu' || v === 'none') return false;
  if (v === 'cuda' || v === 'vulkan') return v;
  throw new Error(`RECURSIVEMAS_LLAMA_GPU must be cpu, cuda, vulkan or none, not ${v}`);
})();

let llamaPromise: Promise<Llama> | undefined;
const models = new Map<string, Promise<LlamaModel>>();

async function getLlamaInstance(): Promise<Llama> {
  llamaPromise ??= (async () => {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    try {
      // maxThreads 0: each context gets exactly the thread count it asks for.
      return await getLlama({ gpu: LLAMA_GPU, build: 'never', skipDownload: true, maxThreads: 0, logLevel: LlamaLogLevel.error, progressLogs: false });
    } catch (e) {
      throw new Error(
        `node-llama-cpp could not load its prebuilt ${LLAMA_GPU || 'CPU'} binary (${(e as Error).message}). ` +
          'Reinstall node_modules so @node-llama-cpp/linux-x64 (or your platform\'s package) is present.',
      );
    }
  })();
  llamaPromise.catch(() => (llamaPromise = undefined));
  return llamaPromise;
}

async function loadModel(ggufPath: string): Promise<LlamaModel> {
  const st = statSync(ggufPath);
  const key = `${ggufPath}:${st.size}:${st.mtimeMs}`;
  let p = models.get(key);
  if (!p) {
    p = getLlamaInstance().then((llama) => llama.loadModel({ modelPath: ggufPath, gpuLayers: LLAMA_GPU ? 'max' : 0, useMmap: true }));
    p.catch(() => models.delete(key));
    models.set(key, p);
  }
  return p;
}

function vocabSizeOf(model: LlamaModel): number {
  const tokens = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer?.ggml?.tokens;
  if (!Array.isArray(tokens)) throw new Error('the GGUF file has no tokenizer.ggml.tokens list');
  return tokens.length;
}

function logProbs(probabilities: Map<number, number> | undefined, vocab: number): Float32Array {
  if (!probabilities) throw new Error('node-llama-cpp returned no probabilities');
  const out = new Float32Array(vocab).fill(-Infinity);
  for (const [token, p] of probabilities) out[token] = Math.log(p);
  return out;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/**
 * Greedy decoding by llama.cpp on CPU with our own argmax loop. `logits[i]` are the
 * log-probabilities (see the file comment) over the whole vocabulary before `ids[i]`; logits[0]
 * follow the prompt. The KV cache is kept in F32 (llama.cpp's default is F16) so the oracle is as
 * close to float32 inference as llama.cpp gets; one thread by default for reproducibility.
 */
export async function llamaGreedy(
  ggufPath: string,
  promptIds: number[],
  maxNew: number,
  opts: { threads?: number } = {},
): Promise<{ ids: number[]; logits: Float32Array[] }> {
  if (promptIds.length === 0) throw new Error('llamaGreedy needs at least one prompt token');
  const model = await loadModel(ggufPath);
  const vocab = vocabSizeOf(model);
  const bad = promptIds.find((id) => !(Number.isInteger(id) && id >= 0 && id < vocab));
  if (bad !== undefined) throw new Error(`prompt token ${bad} is outside the model's vocabulary of ${vocab}`);
  const context = await model.createContext({
    contextSize: Math.max(promptIds.length + maxNew, 16),
    batchSize: promptIds.length,
    sequences: 1,
    threads: opts.threads ?? 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    failedCreationRemedy: false,
  });
  try {
    const sequence = context.getSequence();
    const ids: number[] = [];
    const logits: Float32Array[] = [];
    const withNext = (id: number): ControlledEvaluateInputItem => [id as Token, { generateNext: { probabilities: true } }];
    let input: ControlledEvaluateInputItem[] = [...(promptIds.slice(0, -1) as Token[]), withNext(promptIds[promptIds.length - 1]!)];
    for (let n = 0; n < maxNew; n++) {
      const results = await sequence.controlledEvaluate(input);
      const lp = logProbs(results[input.length - 1]?.next.probabilities, vocab);
      const next = argmax(lp);
      ids.push(next);
      logits.push(lp);
      input = [withNext(next)];
    }
    return { ids, logits };
  } finally {
    await context.dispose();
  }
}

function pseudoRandomTokens(n: number, vocab: number): number[] {
  let s = 0x2545f491;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % vocab;
  });
}

/**
 * llama.cpp's CPU speed with its default settings (F16 KV cache, flash attention as llama.cpp
 * chooses): prefill of `promptTokens` in one batch, then `newTokens` single-token decode steps
 * (greedy sampling, no probabilities). A short warm-up run is not counted.
 */
export async function llamaSpeed(
  ggufPath: string,
  opts: { promptTokens: number; newTokens: number; threads?: number },
): Promise<{ prefillTokS: number; decodeTokS: number }> {
  if (opts.promptTokens < 1 || opts.newTokens < 1) throw new Error('llamaSpeed needs at least one prompt and one new token');
  const llama = await getLlamaInstance();
  const model = await loadModel(ggufPath);
  const vocab = vocabSizeOf(model);
  const context = await model.createContext({
    contextSize: opts.promptTokens + opts.newTokens + 1,
    batchSize: opts.promptTokens,
    sequences: 1,
    threads: opts.threads ?? llama.cpuMathCores,
    failedCreationRemedy: false,
  });
  try {
    const sequence = context.getSequence();
    const prompt = pseudoRandomTokens(opts.promptTokens, vocab) as Token[];
    const generate = (id: number): ControlledEvaluateInputItem => [id as Token, { generateNext: { token: true } }];
    await sequence.controlledEvaluate([...prompt.slice(0, Math.min(8, prompt.length - 1)), generate(prompt[prompt.length - 1]!)]);
    await sequence.clearHistory();

    let t0 = performance.now();
    const first = await sequence.controlledEvaluate([...prompt.slice(0, -1), generate(prompt[prompt.length - 1]!)]);
    const prefillS = (performance.now() - t0) / 1000;
    let next: number = first[prompt.length - 1]?.next.token ?? 0;
    t0 = performance.now();
    for (let n = 0; n < opts.newTokens; n++) {
      const r = await sequence.controlledEvaluate([generate(next)]);
      next = r[0]?.next.token ?? 0;
    }
    const decodeS = (performance.now() - t0) / 1000;
    return { prefillTokS: opts.promptTokens / prefillS, decodeTokS: opts.newTokens / decodeS };
  } finally {
    await context.dispose();
  }
}

/** Frees every loaded model and the llama.cpp backend (call from a test's `after`). */
export async function disposeLlama(): Promise<void> {
  const loaded = [...models.values()];
  models.clear();
  for (const p of loaded) {
    const m = await p.catch(() => undefined);
    await m?.dispose();
  }
  const llama = await llamaPromise?.catch(() => undefined);
  llamaPromise = undefined;
  await llama?.dispose();
}
