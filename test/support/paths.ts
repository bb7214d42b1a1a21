// Locations shared by tests: the repository, ../shared's test models, and per-test temp folders.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..', '..');
// RECURSIVEMAS_SHARED: where ../shared is not beside the checkout (the accelerator machine, scripts/device-bench.sh).
export const SHARED = process.env.RECURSIVEMAS_SHARED ?? resolve(REPO, '..', 'shared');
export const STORIES = join(SHARED, 'models', 'stories260K');

/** A fresh temporary folder removed when the process exits. */
export function tempDir(prefix = 'rmas-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
