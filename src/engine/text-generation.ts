// Plain text generation with one model, for `recursivemas generate`: a llama2.c checkpoint with its
// tokenizer.bin (the output is exactly what llama2.c's `run` prints: prompt pieces, then the
// continuation) or a Hugging Face folder (its tokenizer.json; the prompt, then the new text).
import { stat } from 'node:fs/promises';
import { UserError, type Device, type Precision } from './api';
import { generateFromEmbeds } from './model/generate';
import { DecoderModel } from './model/decoder';
import { HfTokenizer } from './tokenizer/hf';
import { Llama2cTokenizer } from './tokenizer/llama2c';
import { TokenTextStream } from './tokenizer/types';

export interface TextGenerationOptions {
  /** A llama2.c .bin checkpoint or a Hugging Face model folder. */
  model: string;
  /** llama2.c's tokenizer.bin; required for a .bin checkpoint. */
  tokenizer?: string;
  prompt: string;
  /** llama2.c: positions to run, prompt included (default 256; 0 = the model's context). Hugging Face: new tokens when `maxNewTokens` is not given. */
  steps?: number;
  maxNewTokens?: number;
  temperature: number;
  topP: number;
  seed: number;
  precision: Precision;
  device: Device;
  threads?: number;
}

/** Where generated output goes as it is produced. */
export interface TextSink {
  /** llama2.c pieces are bytes (a piece may be part of a UTF-8 character). */
  bytes(chunk: Uint8Array): void;
  text(chunk: string): void;
  warning(message: string): void;
}

export interface TextGenerationResult {
  /** Which checkpoint format ran (llama2.c's output carries no statistics). */
  format: 'llama2c' | 'hf';
  device: Device;
  precision: Precision;
  promptTokens: number;
  newTokens: number;
  prefillMs: number;
  decodeMs: number;
}

export async function generateText(o: TextGenerationOptions, sink: TextSink): Promise<TextGenerationResult> {
  const isFolder = (await stat(o.model).catch(() => undefined))?.isDirectory() ?? false;
  const model = await DecoderModel.load(o.model, { precision: o.precision, device: o.device, threads: o.threads });
  // On a GPU provider the state is device memory, which only release() frees.
  const state = model.newState();
  try {
    for (const w of model.warnings) sink.warning(w);
    const sampling = { temperature: o.temperature, topP: o.topP, seed: o.seed };
    const context = model.config.maxPositionEmbeddings;
    const done = (promptTokens: number, r?: { tokens: number[]; prefillMs: number; decodeMs: number }): TextGenerationResult => ({
      format: isFolder ? 'hf' : 'llama2c',
      device: model.device,
      precision: o.precision,
      promptTokens,
      newTokens: r?.tokens.length ?? 0,
      prefillMs: r?.prefillMs ?? 0,
      decodeMs: r?.decodeMs ?? 0,
    });
    if (!isFolder) {
      if (!o.tokenizer) throw new UserError('--tokenizer <tokenizer.bin> is required for a llama2.c checkpoint.', 'bad-input');
      const tok = await Llama2cTokenizer.load(o.tokenizer, model.config.vocabSize);
      const ids = tok.encodeWithBos(o.prompt);
      let steps = o.steps ?? 256;
      if (steps === 0 || steps > context) steps = context;
      if (ids.length > context) throw new UserError(`The prompt is ${ids.length} tokens but the model's context is ${context}. Shorten the prompt.`, 'bad-input');
      const shown = Math.min(steps, ids.length - 1);
      for (let pos = 0; pos < shown; pos++) sink.bytes(Llama2cTokenizer.printable(tok.pieceBytes(ids[pos]!, ids[pos + 1]!)));
      if (steps < ids.length) return done(ids.length);
      let prev = ids[ids.length - 1]!;
      const result = await generateFromEmbeds(model, state, model.embedding.lookup(ids), ids.length, {
        ...sampling,
        maxNewTokens: Math.min(o.maxNewTokens ?? steps - ids.length + 1, steps - ids.length + 1),
        stopTokens: [tok.bosId],
        onToken: (id) => {
          sink.bytes(Llama2cTokenizer.printable(tok.pieceBytes(prev, id)));
          prev = id;
        },
      });
      return done(ids.length, result);
    }
    const tok = await HfTokenizer.load(o.model);
    if (tok.vocabSize > model.config.vocabSize) {
      throw new UserError(`The tokenizer has ${tok.vocabSize} tokens but the model's vocabulary is ${model.config.vocabSize}: they do not belong together.`, 'model-invalid');
    }
    const ids = tok.encodeWithSpecialTokens(o.prompt);
    if (ids.length === 0) throw new UserError('The prompt is empty; give --prompt "<text>".', 'bad-input');
    const budget = context - ids.length;
    if (budget <= 0) throw new UserError(`The prompt is ${ids.length} tokens but the model's context is ${context}. Shorten the prompt.`, 'bad-input');
    sink.text(o.prompt);
    const stream = new TokenTextStream(tok);
    const result = await generateFromEmbeds(model, state, model.embedding.lookup(ids), ids.length, {
      ...sampling,
      maxNewTokens: Math.min(budget, o.maxNewTokens ?? o.steps ?? 256),
      stopTokens: tok.eosIds.length ? tok.eosIds : model.config.eosTokenIds,
      onToken: (id) => sink.text(stream.push(id)),
    });
    sink.text(stream.flush());
    return done(ids.length, result);
  } finally {
    state.release();
    await model.dispose();
  }
}
