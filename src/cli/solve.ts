// `recursivemas solve "<task>"`: runs a team on a coding task in the runtime process (through the
// same supervisor the extension uses) and prints the code. Progress goes to stderr, the code to
// stdout; --json writes one event per line and then the result, all on stdout.
// Exit codes: 0 ok, 1 engine or runtime failure, 2 bad usage, 3 models missing, 4 cancelled.
import { debugRequested, errorLine } from './errors';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readPreset, UserError } from '../engine/index';
import { DEVICE_CHOICES, MODES, PRECISION_CHOICES, type SolveEvent, type SolveResult } from '../protocol/events';
import type { SolveParams } from '../protocol/rpc';
import { LIMITS, validateSolveParams } from '../protocol/validate';
import { RuntimeError, RuntimeSupervisor, type SupervisorOptions } from '../runtime/client/supervisor';
import type { CliIo } from './io';
import { SolveProgress } from './progress';

export const EXIT = { ok: 0, failed: 1, usage: 2, modelsMissing: 3, cancelled: 4 } as const;

/** The team used when neither --team nor RECURSIVEMAS_TEAM names one. */
export const DEFAULT_TEAM = 'sequential-light-code';

const USAGE = `usage: recursivemas solve "<task>" [--file <path>] [--language <lang>] [--team <preset>]
       [--rounds N] [--latent-steps M] [--mode latent|text|single] [--device auto|cpu|webgpu|cuda]
       [--precision ${PRECISION_CHOICES.join('|')}] [--verify "<command>" | --verify auto] [--max-repairs N]
       [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S] [--threads N]
       [--models-dir <path>] [--fixed-length] [--json] [--verbose]

  --file <path>     code the task is about, given to the agents as context
                    (its extension also sets the language when --language is not given)
  --team <preset>   a team preset (default ${DEFAULT_TEAM}, or $RECURSIVEMAS_TEAM); demo-sequential
                    runs offline on generated weights (it exercises the engine, it writes no useful code)
  --precision <p>   weights of the models: auto (default) is fp16 on a GPU and int4 on the CPU;
                    int8 runs on the CPU only (more memory than int4, often faster there)
  --fixed-length    for benchmarks: write exactly --max-new-tokens tokens (eos does not stop), no code retry
  --json            one JSON event per line on stdout, then {rounds, answer, code, metrics, device, precision}
                    (and verification: checks, each candidate's results, the choice, with --verify)
  --verify <cmd>    run the test command <cmd> on each candidate, in a temporary copy of the current
                    folder with the candidate in place of --file; failures go to a repair round.
                    --verify auto uses the doctests, assert lines or input/output examples of the task
  --max-repairs N   repair rounds after a failed check (default 2)

exit codes: 0 ok, 1 failed, 2 bad usage, 3 models missing (see: recursivemas models pull), 4 cancelled`;

const LANGUAGE_BY_EXTENSION: Record<string, string> = {
  '.py': 'python',
  '.ts': 'typescript',
  '.tsx': 'typescript',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.jsx': 'javascript',
  '.go': 'go',
  '.rs': 'rust',
  '.java': 'java',
  '.kt': 'kotlin',
  '.c': 'c',
  '.h': 'c',
  '.cc': 'cpp',
  '.cpp': 'cpp',
  '.hpp': 'cpp',
  '.cs': 'csharp',
  '.rb': 'ruby',
  '.php': 'php',
  '.swift': 'swift',
  '.sh': 'shellscript',
  '.sql': 'sql',
  '.lua': 'lua',
  '.r': 'r',
  '.scala': 'scala',
};

export interface SolveCommandOptions {
  /** How to start the runtime (tests, or a bundle). */
  supervisor?: SupervisorOptions;
  /** Aborting it cancels the solve like Ctrl-C; without it, SIGINT is handled here. */
  signal?: AbortSignal;
}

class UsageError extends Error {}

function whole(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${value}".`);
  return n;
}

function decimal(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}, got "${value}".`);
  return n;
}

function choice<T extends string>(value: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${value}".`);
  return value as T;
}

interface Parsed {
  params: Omit<SolveParams, 'id'>;
  json: boolean;
  verbose: boolean;
  modelsDirectory?: string;
  /** Set for teams of generated weights: said up front so nobody mistakes their output for an answer. */
  demoNotice?: string;
}

async function parse(argv: string[]): Promise<Parsed | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        file: { type: 'string' },
        language: { type: 'string' },
        team: { type: 'string' },
        rounds: { type: 'string' },
        'latent-steps': { type: 'string' },
        mode: { type: 'string' },
        device: { type: 'string' },
        precision: { type: 'string' },
        'max-new-tokens': { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        threads: { type: 'string' },
        'models-dir': { type: 'string' },
        'fixed-length': { type: 'boolean' },
        json: { type: 'boolean' },
        verify: { type: 'string' },
        'max-repairs': { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const task = positionals.join(' ').trim();
  if (!task) throw new UsageError('Give the task to solve, in quotes: recursivemas solve "write a function that ...".');
  if (task.length > LIMITS.taskChars) throw new UsageError(`The task is ${task.length} characters; the limit is ${LIMITS.taskChars}. Put long material in a file and pass it with --file.`);

  let context: string | undefined;
  let language = values.language;
  if (values.file !== undefined) {
    const path = resolve(values.file);
    try {
      context = await readFile(path, 'utf8');
    } catch (e) {
      throw new UsageError(`--file ${values.file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
    }
    if (context.length > LIMITS.contextChars) throw new UsageError(`--file ${values.file} has ${context.length} characters; the limit is ${LIMITS.contextChars}. Pass the relevant part only.`);
    language ??= LANGUAGE_BY_EXTENSION[extname(path).toLowerCase()];
  }

  const team = values.team ?? process.env.RECURSIVEMAS_TEAM ?? DEFAULT_TEAM;
  // The preset's defaults apply to whatever the command line leaves out.
  const preset = await readPreset(team);
  const d = preset.defaults;
  const mode = choice(values.mode, 'mode', MODES) ?? 'latent';
  const device = choice(values.device, 'device', DEVICE_CHOICES) ?? 'auto';
  const params: Omit<SolveParams, 'id'> = {
    task,
    language: language ?? 'python',
    // A preset file path must survive the runtime's different working directory.
    team: team.endsWith('.json') ? resolve(team) : team,
    mode,
    rounds: whole(values.rounds, 'rounds', LIMITS.rounds.min, LIMITS.rounds.max) ?? d.rounds,
    latentSteps: whole(values['latent-steps'], 'latent-steps', LIMITS.latentSteps.min, LIMITS.latentSteps.max) ?? d.latentSteps,
    maxNewTokens: whole(values['max-new-tokens'], 'max-new-tokens', LIMITS.maxNewTokens.min, LIMITS.maxNewTokens.max) ?? d.maxNewTokens,
    temperature: decimal(values.temperature, 'temperature', LIMITS.temperature.min, LIMITS.temperature.max) ?? d.temperature,
    topP: decimal(values['top-p'], 'top-p', 0.000001, 1) ?? d.topP,
    device,
    precision: choice(values.precision, 'precision', PRECISION_CHOICES) ?? 'auto',
  };
  if (context !== undefined) params.context = context;
  if (values['fixed-length']) params.fixedLength = true;
  const seed = whole(values.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
  if (seed !== undefined) params.seed = seed;
  const threads = whole(values.threads, 'threads', LIMITS.threads.min, LIMITS.threads.max);
  if (threads !== undefined) params.threads = threads;
  const maxRepairs = whole(values['max-repairs'], 'max-repairs', LIMITS.maxRepairs.min, LIMITS.maxRepairs.max);
  if (maxRepairs !== undefined && values.verify === undefined) throw new UsageError('--max-repairs needs --verify "<command>" (or --verify auto).');
  if (values.verify !== undefined) {
    const command = values.verify.trim();
    if (command === '') throw new UsageError('--verify needs a test command, e.g. --verify "pytest -q", or --verify auto.');
    const auto = command === 'auto';
    params.verify = {
      findChecks: auto,
      maxRepairs: maxRepairs ?? 2,
      ...(auto ? {} : { command, root: process.cwd() }),
      // The candidate stands for the whole --file in the check's copy of it.
      ...(values.file !== undefined && context !== undefined ? { file: { path: resolve(values.file), text: context, start: 0, end: context.length } } : {}),
    };
  }
  return {
    params,
    json: values.json ?? false,
    verbose: values.verbose ?? false,
    modelsDirectory: values['models-dir'] ? resolve(values['models-dir']) : undefined,
    demoNotice: preset.demo
      ? `note: ${preset.name} is a demo team of generated (random) weights: it runs the whole engine offline but writes no useful code. For real answers: recursivemas models pull sequential-light-code, then solve without --team.\n`
      : undefined,
  };
}

/** Maps an error to an exit code and the text to show. */
export function describeFailure(e: unknown): { code: number; message: string } {
  if (e instanceof UsageError) return { code: EXIT.usage, message: `${e.message}\n${USAGE}` };
  if (e instanceof Error && e.name === 'CancelledError') return { code: EXIT.cancelled, message: 'cancelled' };
  if (e instanceof Error && e.name === 'UserError') {
    const u = e as UserError;
    const code = u.code === 'model-missing' ? EXIT.modelsMissing : u.code === 'bad-input' || u.code === 'preset-invalid' ? EXIT.usage : EXIT.failed;
    return { code, message: `${u.message}${u.action ? `\n${u.action}` : ''}` };
  }
  if (e instanceof RuntimeError) return { code: EXIT.failed, message: e.message };
  // Our bug or the system's: one line, the stack only with --debug.
  return { code: EXIT.failed, message: errorLine(e, debugRequested(process.argv.slice(2))).replace(/^error: /, '') };
}

export async function runSolveCommand(argv: string[], io: CliIo, options: SolveCommandOptions = {}): Promise<number> {
  let parsed: Parsed | 'help';
  try {
    parsed = await parse(argv);
  } catch (e) {
    const f = describeFailure(e);
    io.stderr(`error: ${f.message}\n`);
    return f.code;
  }
  if (parsed === 'help') {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  const { json, verbose } = parsed;
  const params: SolveParams = { id: `cli-${randomUUID()}`, ...parsed.params };
  const checked = validateSolveParams(params);
  if (!checked.ok) {
    io.stderr(`error: ${checked.message}\n${USAGE}\n`);
    return EXIT.usage;
  }

  const supervisor = new RuntimeSupervisor({
    clientName: 'recursivemas-cli',
    ...(parsed.modelsDirectory ? { modelsDirectory: parsed.modelsDirectory } : {}),
    ...options.supervisor,
  });
  if (parsed.demoNotice) io.stderr(parsed.demoNotice);
  const progress = new SolveProgress({ write: io.stderr, live: io.isTTY && !json, color: io.isTTY && !process.env.NO_COLOR });
  supervisor.onLog((entry) => {
    if (verbose) io.stderr(`[runtime ${entry.source}] ${entry.message}\n`);
    else if (entry.source !== 'stderr' && entry.source !== 'stdout' && (entry.level === 'warn' || entry.level === 'error') && !entry.message.startsWith('The RecursiveMAS runtime')) {
      if (!json) progress.event({ type: 'warning', message: entry.message });
    }
  });

  // First Ctrl-C cancels the solve (the runtime stops within one model step); a second one stops the runtime.
  let interrupts = 0;
  const interrupt = () => {
    interrupts++;
    if (interrupts === 1) {
      if (!json) io.stderr('\ncancelling... (press Ctrl-C again to stop at once)\n');
      void supervisor.cancel(params.id);
    } else void supervisor.dispose();
  };
  const signal = options.signal;
  if (signal) signal.addEventListener('abort', interrupt, { once: true });
  else process.on('SIGINT', interrupt);

  const onEvent = (event: SolveEvent) => {
    if (json) io.stdout(`${JSON.stringify(event)}\n`);
    else progress.event(event);
  };
  try {
    const result: SolveResult = await supervisor.solve(params, onEvent);
    progress.finish();
    if (json) {
      const { rounds, answer, code, metrics, device, precision, verification } = result;
      io.stdout(`${JSON.stringify({ rounds, answer, code, metrics, device, precision, ...(verification ? { verification } : {}) })}\n`);
    } else {
      const text = result.code ?? result.answer;
      io.stdout(text.endsWith('\n') ? text : `${text}\n`);
      if (result.code === null) io.stderr('note: the answer had no code block; it is printed as it is.\n');
    }
    return EXIT.ok;
  } catch (e) {
    progress.finish();
    // A second Ctrl-C stops the runtime: still a cancel from the user's point of view.
    const f = interrupts > 0 && e instanceof RuntimeError && e.reason === 'stopped' ? { code: EXIT.cancelled, message: 'cancelled' } : describeFailure(e);
    if (json) io.stdout(`${JSON.stringify({ error: { message: f.message, exitCode: f.code } })}\n`);
    io.stderr(f.code === EXIT.cancelled ? 'cancelled\n' : `error: ${f.message}\n`);
    return f.code;
  } finally {
    if (signal) signal.removeEventListener('abort', interrupt);
    else process.off('SIGINT', interrupt);
    await supervisor.dispose();
  }
}
