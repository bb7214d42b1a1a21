// Runs one check as a child process with a timeout, a memory limit and an output limit. On Linux,
// where unprivileged user namespaces work, it runs in namespaces of its own: a network namespace
// with nothing in it (no network at all, loopback included) and a mount namespace in which every
// mount is read-only except the check's temporary folder. Where that is not available the check
// runs without isolation and the result says so; writes into the project are then only detected.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Isolation } from '../../protocol/events';

export interface SandboxLimits {
  timeoutMs: number;
  /** Address-space limit (ulimit -v); default 4 GiB. */
  memoryBytes?: number;
  /** Stdout and stderr together; the check is stopped past it. Default 1 MiB. */
  maxOutputBytes?: number;
}

export interface SandboxRun {
  /** argv[0] is looked up on PATH. */
  argv: string[];
  /** The temporary folder: the working directory and the only writable place. */
  dir: string;
  stdin?: string;
  env?: Record<string, string>;
  /** Folders whose files must not change (the project); checked afterwards when writes cannot be refused. */
  watch?: string[];
  limits: SandboxLimits;
  signal?: AbortSignal;
  /** 'none' runs without namespaces even where they work (tests of the fallback). */
  isolation?: 'auto' | 'none';
}

export interface SandboxResult {
  exitCode: number | null;
  signal: string | null;
  /** Why the sandbox stopped the process, if it did. */
  stopped?: 'timeout' | 'output' | 'cancelled';
  stdout: string;
  stderr: string;
  ms: number;
  /** Files under `watch` that changed while the check ran (only looked for without write isolation). */
  changedOutside: string[];
  /** The process could not be started (the runner is missing). */
  spawnError?: string;
}

export const DEFAULT_MEMORY_BYTES = 4 * 1024 ** 3;
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

// Inside the namespaces: make every mount read-only, then the temporary folder writable again,
// apply the memory limit and run the check. Mount points with escaped characters keep their mode.
const SANDBOX_SCRIPT = [
  'set -e',
  'dir="$1"; kb="$2"; shift 2',
  'mount --rbind / /',
  "for mp in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do mount -o remount,bind,ro \"$mp\" 2>/dev/null || true; done",
  'mount --bind "$dir" "$dir"',
  'mount -o remount,bind,rw "$dir"',
  'ulimit -v "$kb"',
  'cd "$dir"',
  'exec "$@"',
].join('\n');

const PLAIN_SCRIPT = ['dir="$1"; kb="$2"; shift 2', 'ulimit -v "$kb" 2>/dev/null || true', 'cd "$dir"', 'exec "$@"'].join('\n');

let probed: Isolation | undefined;

/** What this machine can enforce; probed once per process by running `true` in the sandbox. */
export function isolationAvailable(): Isolation {
  if (probed) return probed;
  if (process.platform !== 'linux') {
    probed = { network: false, writes: 'detected', note: `No isolation on ${process.platform}: checks can reach the network and write outside their temporary folder; writes into the project are detected afterwards.` };
    return probed;
  }
  const r = spawnSync('unshare', ['-rnm', 'sh', '-c', SANDBOX_SCRIPT, 'sh', '/tmp', String(DEFAULT_MEMORY_BYTES / 1024), 'true'], { encoding: 'utf8', timeout: 10_000 });
  probed =
    r.status === 0
      ? { network: true, writes: 'refused', note: 'Checks run with no network (a network namespace of their own) and a read-only file system outside their temporary folder.' }
      : {
          network: false,
          writes: 'detected',
          note: `No isolation here (unshare failed: ${(r.error?.message ?? r.stderr ?? '').trim().split('\n')[0] || `exit ${r.status}`}): checks can reach the network; writes into the project are detected afterwards.`,
        };
  return probed;
}

/** The isolation a run gets with the given setting. */
export function isolationFor(setting: 'auto' | 'none' = 'auto'): Isolation {
  if (setting === 'none') return { network: false, writes: 'detected', note: 'Isolation turned off: checks can reach the network; writes into the project are detected afterwards.' };
  return isolationAvailable();
}

type Snapshot = Map<string, string>;

/** Size and mtime of each file under `roots`, up to a bound; enough to notice a check's writes. */
function snapshot(roots: readonly string[], limit = 20_000): Snapshot {
  const seen: Snapshot = new Map();
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (seen.size >= limit) return;
      if (e.name === 'node_modules' || e.name === '.git') continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        try {
          const s = statSync(p);
          seen.set(p, `${s.size}:${s.mtimeMs}`);
        } catch {
          // gone meanwhile
        }
      }
    }
  };
  for (const r of roots) walk(r);
  return seen;
}

function changes(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const [p, v] of after) if (before.get(p) !== v) out.push(p);
  for (const p of before.keys()) if (!after.has(p)) out.push(p);
  return out.sort();
}

export function runSandboxed(run: SandboxRun): Promise<SandboxResult> {
  const isolation = isolationFor(run.isolation);
  const kb = String(Math.floor((run.limits.memoryBytes ?? DEFAULT_MEMORY_BYTES) / 1024));
  const maxOutput = run.limits.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const watch = isolation.writes === 'refused' ? [] : (run.watch ?? []);
  const before = watch.length > 0 ? snapshot(watch) : null;
  const windows = process.platform === 'win32';
  const [file, args] =
    isolation.writes === 'refused'
      ? ['unshare', ['-rnm', 'sh', '-c', SANDBOX_SCRIPT, 'sh', run.dir, kb, ...run.argv]]
      : windows
        ? [run.argv[0]!, run.argv.slice(1)]
        : ['sh', ['-c', PLAIN_SCRIPT, 'sh', run.dir, kb, ...run.argv]];
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      cwd: run.dir,
      env: { ...process.env, ...run.env, TMPDIR: run.dir, TEMP: run.dir, TMP: run.dir },
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group, so the timeout stops whatever the check started too.
      detached: !windows,
      windowsHide: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let stopped: SandboxResult['stopped'];
    let spawnError: string | undefined;
    const kill = (why: NonNullable<SandboxResult['stopped']>) => {
      stopped ??= why;
      try {
        if (!windows && child.pid) process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // already gone
      }
    };
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      if (bytes >= maxOutput) return;
      const room = maxOutput - bytes;
      into.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      bytes += chunk.length;
      if (bytes >= maxOutput) kill('output');
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.stdin.on('error', () => {});
    child.stdin.end(run.stdin ?? '');
    const timer = setTimeout(() => kill('timeout'), run.limits.timeoutMs);
    const onAbort = () => kill('cancelled');
    run.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      spawnError = e.message;
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      resolve({
        exitCode,
        signal,
        ...(stopped ? { stopped } : {}),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - started,
        changedOutside: before ? changes(before, snapshot(watch)) : [],
        ...(spawnError ? { spawnError } : {}),
      });
    });
  });
}
