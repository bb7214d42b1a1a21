// The built command line (`npm run build` makes dist/cli.mjs; bin/recursivemas.js loads it) run as
// a real child process, as a user runs it.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './paths';

export const CLI = join(REPO, 'bin', 'recursivemas.js');

let built = false;
export const RUNTIME_BUNDLE = join(REPO, 'dist', 'runtime.mjs');

/** Rebuilds the CLI and runtime bundles once per test process (about a second), so a stale dist/ is never tested. */
export function ensureCliBuilt(): void {
  if (!built) execFileSync(process.execPath, ['scripts/build.mjs', '--only=cli,runtime'], { cwd: REPO, stdio: 'ignore' });
  built = true;
  if (!existsSync(join(REPO, 'dist', 'cli.mjs')) || !existsSync(RUNTIME_BUNDLE)) throw new Error('scripts/build.mjs did not write dist/cli.mjs and dist/runtime.mjs');
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident memory of the child in bytes, from /proc while it ran (0 where unavailable). */
  peakRssBytes: number;
}

export interface CliProcess {
  pid: number;
  done: Promise<CliRun>;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves when stderr has printed something matching `pattern`. */
  stderrMatches(pattern: RegExp): Promise<void>;
}

/** Starts `recursivemas <args>`; it is killed after `timeoutMs` so a hang fails instead of blocking. */
export function startCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): CliProcess {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => {
    stderr += t;
    for (const w of watchers.splice(0)) {
      if (w.pattern.test(stderr)) w.resolve();
      else watchers.push(w);
    }
  });
  let peakRssBytes = 0;
  const sample = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s*(\d+)/.exec(status)?.[1] ?? 0);
      peakRssBytes = Math.max(peakRssBytes, kb * 1024);
    } catch {
      // gone, or not Linux
    }
  }, 50);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const done = new Promise<CliRun>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(sample);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, peakRssBytes });
    });
  });
  return {
    pid: child.pid!,
    done,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    stderrMatches: (pattern) =>
      pattern.test(stderr) ? Promise.resolve() : new Promise<void>((resolve) => watchers.push({ pattern, resolve })),
  };
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliRun> {
  return startCli(args, opts).done;
}
