// Generated Hugging Face checkpoints, from a spec to files: the real file set and real key/tensor
// names of Llama, Qwen2, Qwen3, Mistral, Gemma 3 (nested multimodal or flat text) and Qwen3.5, as
// transformers 4 or 5 writes them, with random weights and a byte-level BPE tokenizer learned from
// a small built-in text. Demo teams run on them offline; test/support/tiny-hf.ts adds what tests
// need on top (the stored values read back, a reference forward pass).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  writeSafetensors,
  writeShardedSafetensors,
  type SafetensorsTensor,
} from './safetensors-writer';
import type { SafetensorsFloatDType } from '../../dtype';
import { SeededRandom } from '../../random';
import type { HfFamilyName } from '../config';
import { qwen35Config, qwen35TensorPlan, type Qwen35Options } from './qwen3_5-checkpoint';

export type Family = HfFamilyName;

/**
 * How `save_pretrained` wrote the folder. transformers 4: top-level rope_theta / rope_scaling,
 * torch_dtype, the chat template inside tokenizer_config.json. transformers 5 (5.3, as the
 * RecursiveMAS release): RoPE only under rope_parameters, dtype, chat_template.jinja.
 */
export type CheckpointLayout = 'transformers4' | 'transformers5';

export interface CheckpointSpec {
  family: Family;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** qwen3 often has headDim != hidden/heads; default hidden/heads. */
  headDim?: number;
  /** Total vocabulary including the family's added (special) tokens. */
  vocabSize: number;
  /** Storage dtype of the weights; default F32. */
  dtype?: SafetensorsFloatDType;
  tieWordEmbeddings?: boolean;
  ropeTheta?: number;
  rmsNormEps?: number;
  maxPositionEmbeddings?: number;
  /** Llama 3.1-style rope_scaling (llama only). */
  ropeScalingLlama3?: boolean;
  /** Default transformers4. */
  layout?: CheckpointLayout;
  /** Gemma 3 only: the 4B-it multimodal wrapper (default: text_config, language_model. tensors, a small vision tower) or flat gemma3_text. */
  gemma3?: {
    multimodal?: boolean;
    /** Default 16. */
    slidingWindow?: number;
    /** Every pattern-th layer is full attention; default 6. */
    slidingWindowPattern?: number;
    /** The sliding layers' RoPE base; default 10000. */
    ropeLocalTheta?: number;
    /** Linear RoPE scaling of the full layers (the 4B uses 8). */
    ropeLinearFactor?: number;
    /** Default headDim (llama.cpp assumes that). */
    queryPreAttnScalar?: number;
    finalLogitSoftcapping?: number;
  };
  /** Qwen3.5 only: layout and linear-attention shapes (see qwen3_5-checkpoint.ts). */
  qwen3_5?: Qwen35Options;
  /** Number of safetensors shards; 1 or absent writes a single model.safetensors. */
  shards?: number;
  seed?: number;
  /** Standard deviation of the weight matrices; see defaultWeightScale. */
  weightScale?: number;
}

/** What was written, as data (the weights stay in the files). */
export interface GeneratedCheckpoint {
  dir: string;
  /** config.json as written (a multimodal Gemma 3's decoder keys are under text_config). */
  config: Record<string, unknown>;
  /** Token id -> token string (byte-level characters), added tokens included. */
  vocab: string[];
  merges: [string, string][];
  /** Every added token (special or not, e.g. Qwen3's <think>) -> id. */
  specialTokens: Record<string, number>;
  /** tokenizer.json's added_tokens: which of them are special. */
  addedTokens: { id: number; content: string; special: boolean }[];
  /** tokenizer_config.json as written. */
  tokenizerConfig: Record<string, unknown>;
  bosId: number | null;
  /** Ids that end generation (generation_config.json's eos_token_id list). */
  eosIds: number[];
}

/**
 * Default weight std: 0.7 * sqrt(64 / hiddenSize). Large on purpose: with the usual 0.02 the logits
 * of a random 64-wide model are nearly flat, greedy decoding ties or loops; at this scale logits
 * spread by about 5-6 units at any width (top-1/top-2 gaps under 0.02 in about 1% of steps, 64-token
 * continuations with ~50 distinct tokens) while the RMSNorms keep each layer's input at unit scale.
 */
export function defaultWeightScale(hiddenSize: number): number {
  return 0.7 * Math.sqrt(64 / hiddenSize);
}

// ---------------------------------------------------------------------------------------------
// Per-tensor seeds: every tensor has its own stream

function hashString(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Byte-level BPE tokenizer

/** GPT-2's reversible byte -> printable character table; index i is token id i of the base vocab. */
function byteLevelAlphabet(): { byteToChar: string[]; order: number[] } {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const byteToChar = new Array<string>(256);
  bs.forEach((b, i) => (byteToChar[b] = String.fromCodePoint(cs[i]!)));
  return { byteToChar, order: bs };
}

const ALPHABET = byteLevelAlphabet();

function bytesToByteLevel(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += ALPHABET.byteToChar[b];
  return out;
}

// A little prose and a little code, so the learned merges look like a real tokenizer's.
const CORPUS = `The quick brown fox jumps over the lazy dog. A team of small models can work together:
one plans the task, another writes the code, and a third reviews what the others wrote. When the
reviewer finds a problem, the writer gets another turn. The answer is the function that passes
the tests. Models read tokens and predict the next token; the tokenizer turns text into numbers
and numbers back into text. It is important that the round trip is exact, including spaces,
newlines, tabs, punctuation, and characters such as é, ü, ß, 東京, and emoji like 🙂.
We're testing the tokenizer, they'll check it, and you've seen that it's fine. Don't worry.
There are 3 apples, 12 oranges and 1024 bytes in a kilobyte; 2024-06-01 was a Saturday.

def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

export function add(a: number, b: number): number {
  return a + b;
}

const result = items.filter((item) => item.value > 0).map((item) => item.name);
if (result.length === 0) {
  throw new Error('no items with a positive value');
}

class Stack<T> {
  private items: T[] = [];
  push(item: T): void { this.items.push(item); }
  pop(): T | undefined { return this.items.pop(); }
}

for (let i = 0; i < 10; i++) {
  console.log(\`step \${i}: \${i * i}\`);
}
The function returns the sum of the two numbers. The class keeps the items in an array.
The model writes the code and the reviewer reads the code and the tests check the code.
`;

// JS approximations of the families' split patterns, used only to learn merges.
const TRAIN_SPLIT = /'(?:s|t|re|ve|m|ll|d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/**
 * Learns byte-level BPE merges from CORPUS until the vocabulary holds `size` tokens, then fills
 * the rest with valid but meaningless merges (token + letter) so any vocabulary size works.
 */
function learnByteLevelBpe(size: number): { vocab: string[]; merges: [string, string][] } {
  if (size < 256) throw new Error(`a byte-level BPE needs at least 256 regular tokens, got ${size}`);
  const vocab = ALPHABET.order.map((b) => ALPHABET.byteToChar[b]!);
  const known = new Set(vocab);
  const merges: [string, string][] = [];
  const wordCounts = new Map<string, number>();
  for (const m of CORPUS.matchAll(TRAIN_SPLIT)) {
    const w = bytesToByteLevel(m[0]);
    wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }
  const words = [...wordCounts.entries()].map(([w, c]) => ({ parts: Array.from(w), count: c }));
  while (vocab.length < size) {
    const pairs = new Map<string, number>();
    for (const { parts, count } of words) {
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = parts[i] + '\u0000' + parts[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: string | null = null;
    let bestCount = 1;
    for (const [k, c] of pairs) {
      if (c > bestCount || (c === bestCount && best !== null && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (best === null) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    if (!known.has(a + b)) {
      known.add(a + b);
      vocab.push(a + b);
    }
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === a && w.parts[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.parts[i]!);
      }
      w.parts = out;
    }
  }
  const letters = Array.from('etaoinshrdlucmfwypvbgkqjxz').map((c) => bytesToByteLevel(c));
  for (let i = 256; vocab.length < size; i++) {
    const base = vocab[i]!;
    for (const l of letters) {
      if (vocab.length >= size) break;
      if (!known.has(base + l)) {
        known.add(base + l);
        vocab.push(base + l);
        merges.push([base, l]);
      }
    }
  }
  return { vocab, merges };
}

// ---------------------------------------------------------------------------------------------
// Families

interface AddedTokenDef {
  content: string;
  special: boolean;
}

interface FamilyInfo {
  modelType: string;
  architecture: string;
  added: AddedTokenDef[];
  /** Mistral puts <unk>, <s>, </s>, [INST], [/INST] at ids 0..4; the others append them. */
  addedFirst: boolean;
  bosToken: string | null;
  eosToken: string;
  padToken?: string;
  unkToken?: string;
  /** config.json eos_token_id (a list when the real config has one). */
  configEos: string[];
  generationEos: string[];
  /** undefined: tokenizer_config.json has no add_bos_token key, like the real Qwen files. */
  addBosToken?: boolean;
  /** TemplateProcessing adds BOS when the tokenizer encodes with special tokens. */
  postProcessorBos: boolean;
  /** Split regex (Oniguruma syntax) before ByteLevel; null: GPT-2's built-in ByteLevel regex. */
  splitPattern: string | null;
  normalizer: unknown;
  ignoreMerges: boolean;
  /** Qwen3's current files store merges as pairs; the others as "a b" strings. */
  pairMerges: boolean;
  tokenizerClass: string;
  chatTemplate: string;
  defaults: { ropeTheta: number; rmsNormEps: number; maxPositionEmbeddings: number; tie: boolean };
}

const QWEN_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Chat templates: our own wording, with the structure of each family's published template.
const CHATML_TEMPLATE = `{%- if not messages or messages[0]['role'] != 'system' %}
{{- '<|im_start|>system\\nYou are a helpful coding assistant.<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- endif %}
`;

// Qwen3: no default system turn; earlier assistant turns lose their reasoning; enable_thinking=false
// pre-fills an empty think block after the generation prompt.
const QWEN3_TEMPLATE = `{%- for message in messages %}
{%- if message['role'] == 'assistant' and '</think>' in message['content'] %}
{%- set content = message['content'].split('</think>')[-1].lstrip('\\n') %}
{%- else %}
{%- set content = message['content'] %}
{%- endif %}
{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- if enable_thinking is defined and enable_thinking is false %}
{{- '<think>\\n\\n</think>\\n\\n' }}
{%- endif %}
{%- endif %}
`;

const LLAMA3_TEMPLATE = `{{- bos_token }}
{%- for message in messages %}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
`;

// Mistral folds a system message into the first user turn and requires alternating roles.
const MISTRAL_TEMPLATE = `{%- if messages and messages[0]['role'] == 'system' %}
{%- set system_message = messages[0]['content'] %}
{%- set loop_messages = messages[1:] %}
{%- else %}
{%- set system_message = '' %}
{%- set loop_messages = messages %}
{%- endif %}
{{- bos_token }}
{%- for message in loop_messages %}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant.') }}
{%- endif %}
{%- if message['role'] == 'user' %}
{%- if loop.first and system_message %}
{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
{%- else %}
{{- '[INST] ' + message['content'] + ' [/INST]' }}
{%- endif %}
{%- else %}
{{- ' ' + message['content'] + eos_token }}
{%- endif %}
{%- endfor %}
`;

// Gemma: no system role (a system message opens the first user turn), the assistant is "model".
const GEMMA3_TEMPLATE = `{{- bos_token }}
{%- if messages and messages[0]['role'] == 'system' %}
{%- set system_text = messages[0]['content'] + '\\n\\n' %}
{%- set loop_messages = messages[1:] %}
{%- else %}
{%- set system_text = '' %}
{%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
{%- if message['role'] == 'assistant' %}
{%- set role = 'model' %}
{%- else %}
{%- set role = message['role'] %}
{%- endif %}
{%- if loop.first %}
{{- '<start_of_turn>' + role + '\\n' + system_text + message['content'] | trim + '<end_of_turn>\\n' }}
{%- else %}
{{- '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<start_of_turn>model\\n' }}
{%- endif %}
`;

const QWEN2_ADDED: AddedTokenDef[] = [
  { content: '<|endoftext|>', special: true },
  { content: '<|im_start|>', special: true },
  { content: '<|im_end|>', special: true },
  { content: '<tool_call>', special: false },
  { content: '</tool_call>', special: false },
];

const QWEN3_INFO: FamilyInfo = {
  modelType: 'qwen3',
  architecture: 'Qwen3ForCausalLM',
  // As in Qwen3's files, <think> and </think> are added tokens but not special ones.
  added: [...QWEN2_ADDED, { content: '<think>', special: false }, { content: '</think>', special: false }],
  addedFirst: false,
  bosToken: null,
  eosToken: '<|im_end|>',
  padToken: '<|endoftext|>',
  configEos: ['<|im_end|>'],
  generationEos: ['<|im_end|>', '<|endoftext|>'],
  postProcessorBos: false,
  splitPattern: QWEN_SPLIT,
  normalizer: { type: 'NFC' },
  ignoreMerges: false,
  pairMerges: true,
  tokenizerClass: 'Qwen2Tokenizer',
  chatTemplate: QWEN3_TEMPLATE,
  defaults: { ropeTheta: 1_000_000, rmsNormEps: 1e-6, maxPositionEmbeddings: 40960, tie: true },
};

const FAMILIES: Record<Family, FamilyInfo> = {
  qwen2: {
    modelType: 'qwen2',
    architecture: 'Qwen2ForCausalLM',
    added: QWEN2_ADDED,
    addedFirst: false,
    bosToken: null,
    eosToken: '<|im_end|>',
    padToken: '<|endoftext|>',
    configEos: ['<|im_end|>'],
    generationEos: ['<|im_end|>', '<|endoftext|>'],
    postProcessorBos: false,
    splitPattern: QWEN_SPLIT,
    normalizer: { type: 'NFC' },
    ignoreMerges: false,
    pairMerges: false,
    tokenizerClass: 'Qwen2Tokenizer',
    chatTemplate: CHATML_TEMPLATE,
    defaults: { ropeTheta: 1_000_000, rmsNormEps: 1e-6, maxPositionEmbeddings: 32768, tie: true },
  },
  qwen3: QWEN3_INFO,
  // Qwen3.5 keeps Qwen3's chat tokens and template (its vision tokens are left out here).
  qwen3_5: {
    ...QWEN3_INFO,
    modelType: 'qwen3_5',
    architecture: 'Qwen3_5ForConditionalGeneration',
    defaults: { ropeTheta: 10_000_000, rmsNormEps: 1e-6, maxPositionEmbeddings: 262144, tie: true },
  },
  llama: {
    modelType: 'llama',
    architecture: 'LlamaForCausalLM',
    added: [
      { content: '<|begin_of_text|>', special: true },
      { content: '<|end_of_text|>', special: true },
      { content: '<|start_header_id|>', special: true },
      { content: '<|end_header_id|>', special: true },
      { content: '<|eom_id|>', special: true },
      { content: '<|eot_id|>', special: true },
    ],
    addedFirst: false,
    bosToken: '<|begin_of_text|>',
    eosToken: '<|eot_id|>',
    configEos: ['<|end_of_text|>', '<|eom_id|>', '<|eot_id|>'],
    generationEos: ['<|end_of_text|>', '<|eom_id|>', '<|eot_id|>'],
    postProcessorBos: true,
    splitPattern: LLAMA3_SPLIT,
    normalizer: null,
    ignoreMerges: true,
    pairMerges: false,
    tokenizerClass: 'PreTrainedTokenizerFast',
    chatTemplate: LLAMA3_TEMPLATE,
    defaults: { ropeTheta: 500_000, rmsNormEps: 1e-5, maxPositionEmbeddings: 8192, tie: false },
  },
  // Real Mistral uses a SentencePiece BPE (with byte fallback); ours is the same byte-level BPE as
  // the others, with Mistral's special tokens at Mistral's ids and its chat format.
  mistral: {
    modelType: 'mistral',
    architecture: 'MistralForCausalLM',
    added: [
      { content: '<unk>', special: true },
      { content: '<s>', special: true },
      { content: '</s>', special: true },
      { content: '[INST]', special: true },
      { content: '[/INST]', special: true },
    ],
    addedFirst: true,
    bosToken: '<s>',
    eosToken: '</s>',
    unkToken: '<unk>',
    configEos: ['</s>'],
    generationEos: ['</s>'],
    addBosToken: true,
    postProcessorBos: true,
    splitPattern: null,
    normalizer: null,
    ignoreMerges: false,
    pairMerges: false,
    tokenizerClass: 'PreTrainedTokenizerFast',
    chatTemplate: MISTRAL_TEMPLATE,
    defaults: { ropeTheta: 1_000_000, rmsNormEps: 1e-5, maxPositionEmbeddings: 32768, tie: false },
  },
  // Real Gemma 3 uses a SentencePiece BPE with byte fallback; ours is byte-level, with Gemma's
  // special tokens first (<pad>, <eos>, <bos>, <unk> at Gemma's ids 0..3) and its turn markers.
  gemma3: {
    modelType: 'gemma3',
    architecture: 'Gemma3ForConditionalGeneration',
    added: [
      { content: '<pad>', special: true },
      { content: '<eos>', special: true },
      { content: '<bos>', special: true },
      { content: '<unk>', special: true },
      { content: '<start_of_turn>', special: true },
      { content: '<end_of_turn>', special: true },
    ],
    addedFirst: true,
    bosToken: '<bos>',
    eosToken: '<eos>',
    padToken: '<pad>',
    unkToken: '<unk>',
    configEos: ['<eos>', '<end_of_turn>'],
    generationEos: ['<eos>', '<end_of_turn>'],
    addBosToken: true,
    postProcessorBos: true,
    splitPattern: null,
    normalizer: null,
    ignoreMerges: false,
    pairMerges: false,
    tokenizerClass: 'GemmaTokenizer',
    chatTemplate: GEMMA3_TEMPLATE,
    defaults: { ropeTheta: 1_000_000, rmsNormEps: 1e-6, maxPositionEmbeddings: 131072, tie: true },
  },
};

// ---------------------------------------------------------------------------------------------
// Tensors

interface TensorPlanEntry {
  name: string;
  shape: number[];
  /** gemmaNorm: Gemma stores RMSNorm multipliers minus one. */
  kind: 'matrix' | 'norm' | 'gemmaNorm' | 'bias';
}

function isGemma3Multimodal(spec: CheckpointSpec): boolean {
  return spec.family === 'gemma3' && spec.gemma3?.multimodal !== false;
}

/**
 * The name a decoder tensor (model.layers.0..., lm_head.weight) is stored under: a multimodal
 * Gemma 3 keeps the decoder under language_model.model. (transformers 4) or
 * model.language_model. (transformers 5).
 */
export function storedTensorName(spec: CheckpointSpec, name: string): string {
  if (!isGemma3Multimodal(spec)) return name;
  if (spec.layout === 'transformers5') return name.startsWith('model.') ? `model.language_model.${name.slice('model.'.length)}` : name;
  return `language_model.${name}`;
}

export function headDimOf(spec: CheckpointSpec): number {
  return spec.headDim ?? spec.hiddenSize / spec.numHeads;
}

function tensorPlan(spec: CheckpointSpec, tie: boolean): TensorPlanEntry[] {
  if (spec.family === 'qwen3_5') return qwen35TensorPlan(spec, headDimOf(spec), tie);
  const H = spec.hiddenSize;
  const I = spec.intermediateSize;
  const hd = headDimOf(spec);
  const q = spec.numHeads * hd;
  const kv = spec.numKvHeads * hd;
  const gemma = spec.family === 'gemma3';
  const norm = gemma ? 'gemmaNorm' : 'norm';
  const plan: TensorPlanEntry[] = [{ name: 'model.embed_tokens.weight', shape: [spec.vocabSize, H], kind: 'matrix' }];
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}.`;
    plan.push({ name: p + 'input_layernorm.weight', shape: [H], kind: norm });
    plan.push({ name: p + 'self_attn.q_proj.weight', shape: [q, H], kind: 'matrix' });
    plan.push({ name: p + 'self_attn.k_proj.weight', shape: [kv, H], kind: 'matrix' });
    plan.push({ name: p + 'self_attn.v_proj.weight', shape: [kv, H], kind: 'matrix' });
    if (spec.family === 'qwen2') {
      plan.push({ name: p + 'self_attn.q_proj.bias', shape: [q], kind: 'bias' });
      plan.push({ name: p + 'self_attn.k_proj.bias', shape: [kv], kind: 'bias' });
      plan.push({ name: p + 'self_attn.v_proj.bias', shape: [kv], kind: 'bias' });
    }
    if (spec.family === 'qwen3' || gemma) {
      plan.push({ name: p + 'self_attn.q_norm.weight', shape: [hd], kind: norm });
      plan.push({ name: p + 'self_attn.k_norm.weight', shape: [hd], kind: norm });
    }
    plan.push({ name: p + 'self_attn.o_proj.weight', shape: [H, q], kind: 'matrix' });
    plan.push({ name: p + 'post_attention_layernorm.weight', shape: [H], kind: norm });
    if (gemma) {
      plan.push({ name: p + 'pre_feedforward_layernorm.weight', shape: [H], kind: norm });
      plan.push({ name: p + 'post_feedforward_layernorm.weight', shape: [H], kind: norm });
    }
    plan.push({ name: p + 'mlp.gate_proj.weight', shape: [I, H], kind: 'matrix' });
    plan.push({ name: p + 'mlp.up_proj.weight', shape: [I, H], kind: 'matrix' });
    plan.push({ name: p + 'mlp.down_proj.weight', shape: [H, I], kind: 'matrix' });
  }
  plan.push({ name: 'model.norm.weight', shape: [H], kind: norm });
  if (!tie) plan.push({ name: 'lm_head.weight', shape: [spec.vocabSize, H], kind: 'matrix' });
  const named = plan.map((e) => ({ ...e, name: storedTensorName(spec, e.name) }));
  if (isGemma3Multimodal(spec)) {
    // A token vision tower and projector: present as in the real files, never read by the decoder.
    const v = spec.layout === 'transformers5' ? 'model.' : '';
    named.push({ name: `${v}vision_tower.vision_model.embeddings.patch_embedding.weight`, shape: [VISION_HIDDEN, 3, 2, 2], kind: 'matrix' });
    named.push({ name: `${v}vision_tower.vision_model.post_layernorm.weight`, shape: [VISION_HIDDEN], kind: 'norm' });
    named.push({ name: `${v}multi_modal_projector.mm_input_projection_weight`, shape: [VISION_HIDDEN, H], kind: 'matrix' });
  }
  return named;
}

const CHUNK = 1 << 20;
const VISION_HIDDEN = 32;

/** Values of one tensor: every tensor has its own stream, so tying or sharding changes nothing else. */
function* generateTensor(entry: TensorPlanEntry, seed: number, scale: number): Iterable<Float32Array> {
  const rng = new SeededRandom(hashString(entry.name, seed));
  const total = entry.shape.reduce((a, b) => a * b, 1);
  for (let done = 0; done < total; done += CHUNK) {
    const out = new Float32Array(Math.min(CHUNK, total - done));
    if (entry.kind === 'matrix') rng.fillNormal(out, scale);
    else if (entry.kind === 'norm') rng.fillNormal(out, 0.1, 1);
    else if (entry.kind === 'gemmaNorm') rng.fillNormal(out, 0.1, 0);
    else rng.fillNormal(out, 0.5 * scale);
    yield out;
  }
}

// ---------------------------------------------------------------------------------------------
// Files

function tokenJson(content: string, special: boolean): Record<string, unknown> {
  return { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special };
}

function buildTokenizer(spec: CheckpointSpec, info: FamilyInfo) {
  const numAdded = info.added.length;
  const { vocab: regular, merges } = learnByteLevelBpe(spec.vocabSize - numAdded);
  const vocab = info.addedFirst ? [...info.added.map((a) => a.content), ...regular] : [...regular, ...info.added.map((a) => a.content)];
  const idOf = new Map(vocab.map((t, i) => [t, i]));
  const specialTokens: Record<string, number> = {};
  for (const a of info.added) specialTokens[a.content] = idOf.get(a.content)!;
  const addedTokens = info.added.map((a) => ({
    id: idOf.get(a.content)!,
    content: a.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: a.special,
  }));
  // The BPE model's vocab lists every token, added ones included, as the real files do.
  const modelVocab: Record<string, number> = {};
  vocab.forEach((t, i) => (modelVocab[t] = i));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const preTokenizer = info.splitPattern
    ? {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: info.splitPattern }, behavior: 'Isolated', invert: false },
          byteLevel,
        ],
      }
    : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  let postProcessor: unknown = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  if (info.postProcessorBos) {
    const bos = info.bosToken!;
    const bosId = idOf.get(bos)!;
    const template = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
    };
    postProcessor = info.splitPattern ? { type: 'Sequence', processors: [postProcessor, template] } : template;
  }
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: info.normalizer,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: info.ignoreMerges,
      vocab: modelVocab,
      merges: info.pairMerges ? merges : merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const addedDecoder: Record<string, unknown> = {};
  for (const a of addedTokens) addedDecoder[String(a.id)] = tokenJson(a.content, a.special);
  const tokenizerConfig: Record<string, unknown> = {};
  if (info.addBosToken !== undefined) {
    tokenizerConfig.add_bos_token = info.addBosToken;
    tokenizerConfig.add_eos_token = false;
  }
  Object.assign(tokenizerConfig, {
    added_tokens_decoder: addedDecoder,
    bos_token: info.bosToken,
    chat_template: info.chatTemplate,
    clean_up_tokenization_spaces: false,
    eos_token: info.eosToken,
    model_max_length: maxPositionsOf(spec, info),
    pad_token: info.padToken ?? null,
    tokenizer_class: info.tokenizerClass,
    unk_token: info.unkToken ?? null,
  });
  if (info.modelType.startsWith('qwen')) {
    tokenizerConfig.additional_special_tokens = info.added.filter((a) => a.special).map((a) => a.content);
    tokenizerConfig.split_special_tokens = false;
    tokenizerConfig.errors = 'replace';
  }
  const specialMap: Record<string, unknown> = {};
  if (info.bosToken) specialMap.bos_token = tokenJson(info.bosToken, true);
  specialMap.eos_token = tokenJson(info.eosToken, true);
  if (info.padToken) specialMap.pad_token = tokenJson(info.padToken, true);
  if (info.unkToken) specialMap.unk_token = tokenJson(info.unkToken, true);
  if (info.modelType.startsWith('qwen')) specialMap.additional_special_tokens = tokenizerConfig.additional_special_tokens;
  return { vocab, merges, specialTokens, idOf, tokenizerJson, tokenizerConfig, specialMap };
}

function maxPositionsOf(spec: CheckpointSpec, info: FamilyInfo): number {
  return spec.maxPositionEmbeddings ?? (spec.ropeScalingLlama3 ? 131072 : info.defaults.maxPositionEmbeddings);
}

function torchDtype(d: SafetensorsFloatDType): string {
  return d === 'BF16' ? 'bfloat16' : d === 'F16' ? 'float16' : 'float32';
}

function buildConfig(spec: CheckpointSpec, info: FamilyInfo, idOf: Map<string, number>, tie: boolean): Record<string, unknown> {
  const c = spec.family === 'gemma3' ? buildGemma3Config(spec, info, idOf, tie) : buildLlamaLikeConfig(spec, info, idOf, tie);
  return spec.layout === 'transformers5' ? asTransformers5(c) : c;
}

const TRANSFORMERS5_VERSION = '5.3.0';

/** What transformers 5's save_pretrained changes: RoPE moves into rope_parameters, torch_dtype becomes dtype. */
function asTransformers5(c: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) {
    if (k === 'rope_theta' || k === 'rope_scaling') continue;
    if (k === 'torch_dtype') out.dtype = v;
    else if (k === 'transformers_version') out[k] = TRANSFORMERS5_VERSION;
    else if (k === 'text_config') out[k] = asTransformers5(v as Record<string, unknown>);
    else out[k] = v;
    if (k === 'rms_norm_eps' && 'rope_theta' in c) {
      // Gemma 3 already wrote per-layer-type rope_parameters; the others get a flat one.
      const scaling = (c.rope_scaling as Record<string, unknown> | null) ?? { rope_type: 'default' };
      out.rope_parameters = { ...scaling, rope_theta: c.rope_theta };
    }
  }
  return out;
}

function buildGemma3Config(spec: CheckpointSpec, info: FamilyInfo, idOf: Map<string, number>, tie: boolean): Record<string, unknown> {
  const g = spec.gemma3 ?? {};
  const t5 = spec.layout === 'transformers5';
  const pattern = g.slidingWindowPattern ?? 6;
  const localTheta = g.ropeLocalTheta ?? 10000;
  const theta = spec.ropeTheta ?? info.defaults.ropeTheta;
  const scaling = g.ropeLinearFactor ? { factor: g.ropeLinearFactor, rope_type: 'linear' } : null;
  const eos = info.configEos.map((n) => idOf.get(n)!);
  const text: Record<string, unknown> = {
    architectures: ['Gemma3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    attn_logit_softcapping: null,
    bos_token_id: idOf.get('<bos>')!,
    eos_token_id: eos,
    final_logit_softcapping: g.finalLogitSoftcapping ?? null,
    head_dim: headDimOf(spec),
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: spec.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: spec.intermediateSize,
  };
  if (t5) text.layer_types = Array.from({ length: spec.numLayers }, (_, i) => ((i + 1) % pattern ? 'sliding_attention' : 'full_attention'));
  Object.assign(text, {
    max_position_embeddings: maxPositionsOf(spec, info),
    model_type: 'gemma3_text',
    num_attention_heads: spec.numHeads,
    num_hidden_layers: spec.numLayers,
    num_key_value_heads: spec.numKvHeads,
    pad_token_id: idOf.get('<pad>')!,
    query_pre_attn_scalar: g.queryPreAttnScalar ?? headDimOf(spec),
    rms_norm_eps: spec.rmsNormEps ?? info.defaults.rmsNormEps,
  });
  if (t5) {
    text.rope_parameters = {
      full_attention: { ...(scaling ?? { rope_type: 'default' }), rope_theta: theta },
      sliding_attention: { rope_type: 'default', rope_theta: localTheta },
    };
  } else {
    Object.assign(text, { rope_local_base_freq: localTheta, rope_scaling: scaling, rope_theta: theta });
  }
  text.sliding_window = g.slidingWindow ?? 16;
  if (!t5) text.sliding_window_pattern = pattern;
  Object.assign(text, { use_bidirectional_attention: false, use_cache: true, vocab_size: spec.vocabSize });
  if (!isGemma3Multimodal(spec)) {
    return { ...text, tie_word_embeddings: tie, torch_dtype: torchDtype(spec.dtype ?? 'F32'), transformers_version: '4.55.0' };
  }
  const { architectures: _a, bos_token_id: _b, eos_token_id: _e, pad_token_id: _p, ...nested } = text;
  return {
    architectures: [info.architecture],
    boi_token_index: idOf.get('<start_of_turn>')!,
    eoi_token_index: idOf.get('<end_of_turn>')!,
    eos_token_id: eos,
    image_token_index: idOf.get('<unk>')!,
    initializer_range: 0.02,
    mm_tokens_per_image: 256,
    model_type: 'gemma3',
    text_config: nested,
    torch_dtype: torchDtype(spec.dtype ?? 'F32'),
    transformers_version: '4.55.0',
    vision_config: {
      hidden_size: VISION_HIDDEN,
      image_size: 16,
      intermediate_size: 64,
      model_type: 'siglip_vision_model',
      num_attention_heads: 2,
      num_hidden_layers: 0,
      patch_size: 2,
      vision_use_head: false,
    },
  };
}

function buildLlamaLikeConfig(spec: CheckpointSpec, info: FamilyInfo, idOf: Map<string, number>, tie: boolean): Record<string, unknown> {
  const ids = (names: string[]) => (names.length === 1 ? idOf.get(names[0]!)! : names.map((n) => idOf.get(n)!));
  if (spec.family === 'qwen3_5') return qwen35Config(spec, headDimOf(spec), { bos: idOf.get('<|endoftext|>')!, eos: ids(info.configEos) }, tie, torchDtype(spec.dtype ?? 'F32'));
  const family = spec.family;
  const maxPos = maxPositionsOf(spec, info);
  const c: Record<string, unknown> = {
    architectures: [info.architecture],
    attention_dropout: 0.0,
    bos_token_id: info.bosToken ? idOf.get(info.bosToken)! : idOf.get('<|endoftext|>')!,
    eos_token_id: ids(info.configEos),
  };
  if (family === 'llama' || family === 'qwen3') c.attention_bias = false;
  if (family === 'qwen3' || spec.headDim !== undefined) c.head_dim = headDimOf(spec);
  Object.assign(c, {
    hidden_act: 'silu',
    hidden_size: spec.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: spec.intermediateSize,
    max_position_embeddings: maxPos,
  });
  if (family === 'qwen2' || family === 'qwen3') c.max_window_layers = spec.numLayers;
  if (family === 'llama') c.mlp_bias = false;
  Object.assign(c, {
    model_type: info.modelType,
    num_attention_heads: spec.numHeads,
    num_hidden_layers: spec.numLayers,
    num_key_value_heads: spec.numKvHeads,
  });
  if (family === 'llama') c.pretraining_tp = 1;
  c.rms_norm_eps = spec.rmsNormEps ?? info.defaults.rmsNormEps;
  if (family !== 'mistral') {
    c.rope_scaling =
      family === 'llama' && spec.ropeScalingLlama3
        ? { factor: 8.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' }
        : null;
  }
  c.rope_theta = spec.ropeTheta ?? info.defaults.ropeTheta;
  if (family === 'qwen2') c.sliding_window = 32768;
  if (family === 'qwen3' || family === 'mistral') c.sliding_window = null;
  Object.assign(c, {
    tie_word_embeddings: tie,
    torch_dtype: torchDtype(spec.dtype ?? 'F32'),
    transformers_version: '4.51.0',
    use_cache: true,
  });
  if (family === 'qwen2' || family === 'qwen3') c.use_sliding_window = false;
  c.vocab_size = spec.vocabSize;
  return c;
}

function validateSpec(spec: CheckpointSpec): void {
  const hd = headDimOf(spec);
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new Error(`head dim must be an even integer, got ${hd}`);
  if (spec.numHeads % spec.numKvHeads !== 0) throw new Error(`numHeads ${spec.numHeads} is not a multiple of numKvHeads ${spec.numKvHeads}`);
  if (spec.ropeScalingLlama3 && spec.family !== 'llama') throw new Error('ropeScalingLlama3 applies to the llama family only');
  if (spec.gemma3 && spec.family !== 'gemma3') throw new Error('gemma3 options apply to the gemma3 family only');
  if (spec.vocabSize < 256 + FAMILIES[spec.family].added.length) {
    throw new Error(`vocabSize ${spec.vocabSize} is below the 256 byte tokens plus ${FAMILIES[spec.family].added.length} added tokens`);
  }
}

/**
 * Writes config.json, generation_config.json, weights, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, and in the transformers-5 layout chat_template.jinja (the template is
 * then not in tokenizer_config.json).
 */
export async function writeHfCheckpoint(dir: string, spec: CheckpointSpec): Promise<GeneratedCheckpoint> {
  validateSpec(spec);
  const info = FAMILIES[spec.family];
  const tie = spec.tieWordEmbeddings ?? info.defaults.tie;
  const dtype = spec.dtype ?? 'F32';
  const seed = spec.seed ?? 1;
  const scale = spec.weightScale ?? defaultWeightScale(spec.hiddenSize);
  mkdirSync(dir, { recursive: true });

  const tok = buildTokenizer(spec, info);
  const config = buildConfig(spec, info, tok.idOf, tie);
  const writeJson = (name: string, v: unknown) => writeFileSync(join(dir, name), JSON.stringify(v, null, 2) + '\n');
  writeJson('config.json', config);
  const generation: Record<string, unknown> = {};
  if (info.bosToken) generation.bos_token_id = tok.idOf.get(info.bosToken);
  else generation.bos_token_id = tok.idOf.get('<|endoftext|>');
  const genEos = info.generationEos.map((t) => tok.idOf.get(t)!);
  generation.eos_token_id = genEos.length === 1 ? genEos[0] : genEos;
  if (info.padToken) generation.pad_token_id = tok.idOf.get(info.padToken);
  const t5 = spec.layout === 'transformers5';
  generation.transformers_version = t5 ? TRANSFORMERS5_VERSION : '4.51.0';
  writeJson('generation_config.json', generation);
  writeJson('tokenizer.json', tok.tokenizerJson);
  if (t5) {
    delete tok.tokenizerConfig.chat_template;
    writeFileSync(join(dir, 'chat_template.jinja'), info.chatTemplate);
  }
  writeJson('tokenizer_config.json', tok.tokenizerConfig);
  writeJson('special_tokens_map.json', tok.specialMap);

  const plan = tensorPlan(spec, tie);
  // Gemma multiplies embeddings by sqrt(hidden): its table is that much smaller, so the scaled
  // token vectors have the other families' size (a large one would drown every layer's output).
  const embedName = storedTensorName(spec, 'model.embed_tokens.weight');
  const scaleOf = (e: TensorPlanEntry) => (spec.family === 'gemma3' && e.name === embedName ? scale / Math.sqrt(spec.hiddenSize) : scale);
  // Streamed tensor by tensor, so a checkpoint of any size is never held whole in memory.
  const entries: SafetensorsTensor[] = plan.map((e) => ({ name: e.name, dtype, shape: e.shape, data: () => generateTensor(e, seed, scaleOf(e)) }));
  if ((spec.shards ?? 1) > 1) writeShardedSafetensors(dir, entries, spec.shards!);
  else writeSafetensors(join(dir, 'model.safetensors'), entries);

  return {
    dir,
    config,
    vocab: tok.vocab,
    merges: tok.merges,
    specialTokens: tok.specialTokens,
    addedTokens: tok.tokenizerJson.added_tokens.map((a) => ({ id: a.id, content: a.content, special: a.special })),
    tokenizerConfig: tok.tokenizerConfig,
    bosId: info.bosToken ? tok.idOf.get(info.bosToken)! : null,
    eosIds: info.generationEos.map((t) => tok.idOf.get(t)!),
  };
}

