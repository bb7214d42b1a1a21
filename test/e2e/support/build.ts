// Makes sure the bundles a test needs exist and are newer than their sources.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { distDir, repoRoot } from './env';

const OUTPUTS: Record<string, { out: string; sources: string[] }> = {
  webview: { out: 'webview.js', sources: ['webview', 'src/protocol'] },
  extension: { out: 'extension.cjs', sources: ['src/extension', 'src/protocol', 'src/runtime/client', 'src/runtime/store', 'src/runtime/framing.ts'] },
  runtime: { out: 'runtime.mjs', sources: ['src/runtime', 'src/engine', 'src/protocol'] },
};

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = 0;
  for (const name of readdirSync(path)) t = Math.max(t, newest(join(path, name)));
  return t;
}

/** Rebuilds the named targets when a source changed after their bundle was written. */
export function ensureBuilt(targets: (keyof typeof OUTPUTS)[]): void {
  const stale = targets.filter((t) => {
    const o = OUTPUTS[t]!;
    const out = join(distDir, o.out);
    const built = existsSync(out) ? statSync(out).mtimeMs : 0;
    return o.sources.some((s) => newest(join(repoRoot, s)) > built) || (t === 'webview' && newest(join(repoRoot, 'webview/main.css')) > newest(join(distDir, 'webview.css')));
  });
  if (stale.length === 0) return;
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts/build.mjs'), `--only=${stale.join(',')}`], { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build of ${stale.join(', ')} failed:\n${r.stdout}\n${r.stderr}`);
}
