// `recursivemas generate`: plain text generation with one model. For a llama2.c checkpoint stdout
// is exactly what llama2.c's `run` prints (prompt + continuation + newline); diagnostics go to stderr.
import { parseArgs } from 'node:util';
import { generateText, UserError, type Device, type Precision } from '../engine/index';
import { PRECISIONS } from '../protocol/events';
import type { CliIo } from './io';

const USAGE = `usage: recursivemas generate --model <llama2.c .bin | Hugging Face folder> [--tokenizer <llama2.c tokenizer .bin>]
       --prompt "<text>" [--steps N] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]
       [--precision ${PRECISIONS.join('|')}] [--device auto|cpu|webgpu|cuda]`;

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
  const precision = choice<Precision>(values.precision, 'precision', PRECISIONS, 'fp32');
  const deviceChoice = choice(values.device, 'device', ['auto', 'cpu', 'webgpu', 'cuda'] as const, 'auto');
  const threads = values.threads ? numberOption(values.threads, 'threads', 0, true) : undefined;
  // generate is a one-shot tool: `auto` means CPU here; the runtime does the full provider probing.
  const device: Device = deviceChoice === 'auto' ? 'cpu' : deviceChoice;
  const steps = values.steps === undefined ? undefined : numberOption(values.steps, 'steps', 256, true);
  const maxNewTokens = values['max-new-tokens'] === undefined ? undefined : numberOption(values['max-new-tokens'], 'max-new-tokens', 256, true);
  const result = await generateText(
    { model: values.model, tokenizer: values.tokenizer, prompt: values.prompt ?? '', steps, maxNewTokens, temperature, topP, seed, precision, device, threads },
    { bytes: (b) => io.stdoutBytes(b), text: (s) => io.stdout(s), warning: (w) => io.stderr(`warning: ${w}\n`) },
  );
  io.stdout('\n');
  if (result.format === 'hf') {
    const tokS = result.newTokens / (result.decodeMs / 1000 || 1);
    io.stderr(`${result.promptTokens} prompt tokens in ${result.prefillMs.toFixed(0)} ms, ${result.newTokens} new tokens at ${tokS.toFixed(1)} tok/s (${result.device}, ${result.precision})\n`);
  }
  return 0;
}
