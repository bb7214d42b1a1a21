// Paths shared by the e2e tests.
import { join } from 'node:path';

export const repoRoot = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
export const e2eCache = join(repoRoot, '.cache', 'e2e');
export const distDir = join(repoRoot, 'dist');
