// A lock file per repository folder, shared by every process on the machine (the CLI, each VS Code
// window, the runtime): created with O_EXCL, it names its owner (pid, host, start time), and a lock
// whose owner died on this host is taken over. Everything in the folder that is not finished yet
// (`.part` files, the manifest's temporary) is written only by the lock's holder.
import { hostname } from 'node:os';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LockOwner {
  pid: number;
  hostname: string;
  /** ISO time the owner took the lock. */
  startedAt: string;
}

/** Why a lock could not be taken: held by a live owner (or one on another machine). */
export class LockBusyError extends Error {
  override readonly name = 'LockBusyError';
  constructor(
    readonly path: string,
    readonly owner: LockOwner | undefined,
  ) {
    super(`${path} is locked by ${describeOwner(owner)}`);
  }
}

export function describeOwner(owner: LockOwner | undefined): string {
  if (!owner) return 'another process';
  const here = owner.hostname === hostname();
  return `process ${owner.pid}${here ? '' : ` on ${owner.hostname}`}, since ${owner.startedAt}`;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isSafeInteger(v.pid) && (v.pid as number) > 0 && typeof v.hostname === 'string' && typeof v.startedAt === 'string') {
      return { pid: v.pid as number, hostname: v.hostname, startedAt: v.startedAt };
    }
  } catch {
    // fall through: unreadable
  }
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// A lock file is created empty and then written; one that stays unreadable this long was left by
// a process that died in between.
const UNREADABLE_STALE_MS = 10_000;

async function readOwner(path: string): Promise<{ owner?: LockOwner; text: string; ageMs: number } | undefined> {
  try {
    const [text, s] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { owner: parseOwner(text), text, ageMs: Date.now() - s.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function isStale(found: { owner?: LockOwner; ageMs: number }): boolean {
  if (!found.owner) return found.ageMs > UNREADABLE_STALE_MS;
  // A pid on another machine (a shared network folder) cannot be checked: never stale.
  return found.owner.hostname === hostname() && !processAlive(found.owner.pid);
}

/**
 * Removes a stale lock. Two processes may find the same stale lock; the `.break` file (O_EXCL too)
 * lets one of them remove it, and only if it is still the stale one it looked at.
 */
async function breakStale(path: string, seen: string): Promise<void> {
  const breaker = `${path}.break`;
  let handle;
  try {
    handle = await open(breaker, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = await stat(breaker).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > UNREADABLE_STALE_MS) await unlink(breaker).catch(() => undefined);
    return;
  }
  try {
    const now = await readFile(path, 'utf8').catch(() => undefined);
    if (now === seen) await unlink(path).catch(() => undefined);
  } finally {
    await handle.close();
    await unlink(breaker).catch(() => undefined);
  }
}

export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Takes the lock now, or throws LockBusyError with its live owner. */
export async function tryLock(path: string): Promise<HeldLock> {
  for (let attempt = 0; ; attempt++) {
    let handle;
    try {
      handle = await open(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const found = await readOwner(path);
      if (!found) continue; // released meanwhile
      if (attempt < 3 && isStale(found)) {
        await breakStale(path, found.text);
        continue;
      }
      throw new LockBusyError(path, found.owner);
    }
    const owner: LockOwner = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() };
    try {
      await handle.writeFile(`${JSON.stringify(owner)}\n`);
    } finally {
      await handle.close();
    }
    let released = false;
    return {
      path,
      release: async () => {
        if (released) return;
        released = true;
        // Only our own lock: if it was broken as stale (we were suspended a long time), leave the new one.
        const found = await readOwner(path).catch(() => undefined);
        if (found?.owner?.pid === owner.pid && found.owner.startedAt === owner.startedAt) await unlink(path).catch(() => undefined);
      },
    };
  }
}

/**
 * Waits for the lock. `onWait` is called once, with the owner, when the lock is held by someone
 * else; the signal ends the wait.
 */
export async function acquireLock(
  path: string,
  opts: { signal?: AbortSignal; onWait?: (owner: LockOwner | undefined) => void; pollMs?: number } = {},
): Promise<HeldLock> {
  let told = false;
  const started = Date.now();
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      return await tryLock(path);
    } catch (err) {
      if (!(err instanceof LockBusyError)) throw err;
      // A lock just created has no owner written yet: wait a moment to be able to name it.
      if (!told && (err.owner || Date.now() - started > 2_000)) {
        told = true;
        opts.onWait?.(err.owner);
      }
    }
    await sleep(opts.pollMs ?? 250, undefined, { signal: opts.signal });
  }
}
