// `recursivemas generate`: plain text generation with one model. For a llama2.c checkpoint stdout
// is exactly what llama2.c's `run` prints (prompt + continuation + newline); diagnostics go to stderr.
import { parseArgs } from 'node:util';
import { stat } from 'node:fs/promises';
import { UserError, type Device, type Precision } from '../engine/api';
import { DecoderModel } from '../engine/model/decoder';
import { generateFromEmbeds } from '../engine/generate';
import { HfTokenizer } from '../engine/tokenizer/hf';
import { Llama2cTokenizer } from '../engine/tokenizer/llama2c';
import { TokenTextStream } from '../engine/tokenizer/types';
import type { CliIo } from './io';

const USAGE = `usage: recursivemas generate --model <llama2.c .bin | Hugging Face folder> [--tokenizer <llama2.c tokenizer .bin>]
       --prompt "<text>" [--steps N] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]
       [--precision fp32|fp16|int4] [--device auto|cpu|webgpu|cuda]`;

function numberOption(value: string | undefined, name: string, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0) throw new UserError(`--${name} must be a ${integer ? 'whole ' : ''}number of 0 or more, got "${value}".\n${USAGE}`, 'bad-input');
  return n;
}

function choice<T extends string>(value: string | undefined, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw new UserError(`--${name} must be one of ${allowed.join(', ')}, got "${value}".`, 'bad-input');
  return value as T;
}

export async function runGenerateCommand(argv: string[], io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        tokenizer: { type: 'string' },
        prompt: { type: 'string' },
        steps: { type: 'string' },
        'max-new-tokens': { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        precision: { type: 'string' },
        device: { type: 'string' },
        threads: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!values.model) {
    io.stderr(`--model is required.\n${USAGE}\n`);
    return 2;
  }
  const temperature = numberOption(values.temperature, 'temperature', 1);
  const topP = numberOption(values['top-p'], 'top-p', 0.9);
  const seed = numberOption(values.seed, 'seed', Date.now(), true);
  const precision = choice<Precision>(values.precision, 'precision', ['fp32', 'fp16', 'int4'], 'fp32');
  const deviceChoice = choice(values.device, 'device', ['auto', 'cpu', 'webgpu', 'cuda'] as const, 'auto');
  const threads = values.threads ? numberOption(values.threads, 'threads', 0, true) : undefined;
  // generate is a one-shot tool: `auto` means CPU here; the runtime does the full provider probing.
  const device: Device = deviceChoice === 'auto' ? 'cpu' : deviceChoice;
  const isFolder = (await stat(values.model).catch(() => undefined))?.isDirectory() ?? false;

  const model = await DecoderModel.load(values.model, { precision, device, threads });
  try {
    for (const w of model.warnings) io.stderr(`warning: ${w}\n`);
    const state = model.newState();
    const sampling = { temperature, topP, seed };
    const prompt = values.prompt ?? '';
    if (!isFolder) {
      if (!values.tokenizer) throw new UserError('--tokenizer <tokenizer.bin> is required for a llama2.c checkpoint.', 'bad-input');
      const tok = await Llama2cTokenizer.load(values.tokenizer, model.config.vocabSize);
      const ids = tok.encodeWithBos(prompt);
      let steps = numberOption(values.steps, 'steps', 256, true);
      if (steps === 0 || steps > model.config.maxPositionEmbeddings) steps = model.config.maxPositionEmbeddings;
      if (ids.length > model.config.maxPositionEmbeddings) {
        throw new UserError(`The prompt is ${ids.length} tokens but the model's context is ${model.config.maxPositionEmbeddings}. Shorten the prompt.`, 'bad-input');
      }
      const shown = Math.min(steps, ids.length - 1);
      for (let pos = 0; pos < shown; pos++) io.stdoutBytes(Llama2cTokenizer.printable(tok.pieceBytes(ids[pos]!, ids[pos + 1]!)));
      if (steps >= ids.length) {
        let prev = ids[ids.length - 1]!;
        const maxNewTokens = values['max-new-tokens'] ? numberOption(values['max-new-tokens'], 'max-new-tokens', 0, true) : steps - ids.length + 1;
        await generateFromEmbeds(model, state, model.embedding.lookup(ids), ids.length, {
          ...sampling,
          maxNewTokens: Math.min(maxNewTokens, steps - ids.length + 1),
          stopTokens: [tok.bosId],
          onToken: (id) => {
            io.stdoutBytes(Llama2cTokenizer.printable(tok.pieceBytes(prev, id)));
            prev = id;
          },
        });
      }
      io.stdout('\n');
      return 0;
    }
    const tok = await HfTokenizer.load(values.model);
    if (tok.vocabSize > model.config.vocabSize) {
      throw new UserError(`The tokenizer has ${tok.vocabSize} tokens but the model's vocabulary is ${model.config.vocabSize}: they do not belong together.`, 'model-invalid');
    }
    const ids = tok.encodeWithSpecialTokens(prompt);
    if (ids.length === 0) throw new UserError('The prompt is empty; give --prompt "<text>".', 'bad-input');
    const budget = model.config.maxPositionEmbeddings - ids.length;
    if (budget <= 0) throw new UserError(`The prompt is ${ids.length} tokens but the model's context is ${model.config.maxPositionEmbeddings}. Shorten the prompt.`, 'bad-input');
    const maxNewTokens = Math.min(budget, numberOption(values['max-new-tokens'] ?? values.steps, 'max-new-tokens', 256, true));
    io.stdout(prompt);
    const stream = new TokenTextStream(tok);
    const result = await generateFromEmbeds(model, state, model.embedding.lookup(ids), ids.length, {
      ...sampling,
      maxNewTokens,
      stopTokens: tok.eosIds.length ? tok.eosIds : model.config.eosTokenIds,
      onToken: (id) => io.stdout(stream.push(id)),
    });
    io.stdout(stream.flush() + '\n');
    const tokS = result.tokens.length / (result.decodeMs / 1000 || 1);
    io.stderr(`${ids.length} prompt tokens in ${result.prefillMs.toFixed(0)} ms, ${result.tokens.length} new tokens at ${tokS.toFixed(1)} tok/s (${model.device}, ${precision})\n`);
    return 0;
  } finally {
    await model.dispose();
  }
}
