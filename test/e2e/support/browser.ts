// Headless Debian Chromium through playwright-core, set up as docs/vscode-e2e.md describes: a fresh
// profile folder per launch and no background networking (the test machine has no internet).
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { repoRoot } from './env';

export const CHROMIUM = process.env.RECURSIVEMAS_CHROMIUM ?? '/usr/bin/chromium';

export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `Chromium not found at ${CHROMIUM}; run scripts/setup-e2e.sh (or set RECURSIVEMAS_CHROMIUM)`;
}

export async function launchBrowser(opts: { width?: number; height?: number } = {}): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'rmas-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
  // Each profile is some 30 MB: a run leaves none behind. Chromium may still be writing to it just
  // after the close, hence the retries; a folder that still cannot go is left for the OS.
  context.on('close', () => void rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch(() => {}));
  return context;
}

/** Folder for screenshots (gitignored through its own .gitignore). */
export function artifactsDir(): string {
  const dir = join(repoRoot, 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  const ignore = join(dir, '.gitignore');
  if (!existsSync(ignore)) writeFileSync(ignore, '# screenshots and logs from the e2e tests\n*\n');
  return dir;
}
