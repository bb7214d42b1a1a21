// The per-repository lock file: exclusive, names its owner, taken over only from a dead owner,
// and released only by its owner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock, LockBusyError, tryLock } from '../../src/runtime/store/lock';
import { tempDir } from '../support/paths';

const dir = tempDir('rmas-lock-');
const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);

test('one holder at a time; the second is told who holds it; release lets the next one in', async () => {
  const path = join(dir, 'a.lock');
  const held = await tryLock(path);
  const owner = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(owner.pid, process.pid);
  assert.equal(owner.hostname, hostname());
  await assert.rejects(tryLock(path), (e: Error) => e instanceof LockBusyError && e.owner?.pid === process.pid);
  let told = 0;
  const waiting = acquireLock(path, { pollMs: 10, onWait: () => told++ });
  await new Promise((r) => setTimeout(r, 50));
  await held.release();
  const next = await waiting;
  assert.equal(told, 1);
  await next.release();
  assert.equal(existsSync(path), false);
});

test('a lock whose owner is dead is taken over, by exactly one of many contenders at a time', async () => {
  const path = join(dir, 'b.lock');
  writeFileSync(path, JSON.stringify({ pid: deadPid(), hostname: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
  let inside = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const lock = await acquireLock(path, { pollMs: 5 });
      inside++;
      most = Math.max(most, inside);
      await new Promise((r) => setTimeout(r, 5));
      inside--;
      await lock.release();
    }),
  );
  assert.equal(most, 1);
  assert.equal(existsSync(path), false);
});

test('a lock from another host is never taken over (its pid cannot be checked here); release leaves a lock that is not ours', async () => {
  const path = join(dir, 'c.lock');
  writeFileSync(path, JSON.stringify({ pid: deadPid(), hostname: `not-${hostname()}`, startedAt: '2026-01-01T00:00:00.000Z' }));
  await assert.rejects(tryLock(path), (e: Error) => e instanceof LockBusyError && e.message.includes(`on not-${hostname()}`));
  const controller = new AbortController();
  const waiting = acquireLock(path, { pollMs: 5, signal: controller.signal });
  controller.abort();
  await assert.rejects(waiting, { name: 'AbortError' });

  const mine = join(dir, 'd.lock');
  const held = await tryLock(mine);
  // Someone broke it as stale (we were suspended) and took it: our release must not delete theirs.
  writeFileSync(mine, JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: 'later' }));
  await held.release();
  assert.equal(existsSync(mine), true);
});
