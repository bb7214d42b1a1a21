// `npm run package`: a platform-specific VSIX for the machine it runs on. The extension, runtime
// and webview are bundled (production build); the only package shipped as files is
// onnxruntime-node (native) with onnxruntime-common, and of its binaries only this platform's.
// Everything is staged in .cache/vsix/stage, so vsce sees exactly what ships.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const stage = join(root, '.cache', 'vsix', 'stage');
const target = `${process.platform}-${process.arch}`;
const ortBin = join('bin', 'napi-v6', process.platform, process.arch);

function run(cmd, args, cwd = root) {
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`package: ${[cmd, ...args].join(' ')} failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

function sizeOf(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((a, n) => a + sizeOf(join(path, n)), 0);
}

const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;

// 1. Production bundles.
run(process.execPath, [join(root, 'scripts', 'build.mjs'), '--production']);
for (const f of ['extension.cjs', 'runtime.mjs', 'webview.js', 'webview.css']) {
  if (!existsSync(join(root, 'dist', f))) {
    console.error(`package: dist/${f} is missing after the build`);
    process.exit(1);
  }
}
if (!existsSync(join(root, 'node_modules', 'onnxruntime-node', ortBin))) {
  console.error(`package: onnxruntime-node has no binaries for ${target} (${ortBin}); this platform cannot be packaged.`);
  process.exit(1);
}

// 2. Stage.
rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'dist'), { recursive: true });
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// Dependencies are bundled or staged below; the CLI entry is not part of the extension.
for (const k of ['scripts', 'devDependencies', 'dependencies', 'bin']) delete pkg[k];
writeFileSync(join(stage, 'package.json'), JSON.stringify(pkg, null, 2));
for (const f of ['README.md', 'CHANGELOG.md', 'LICENSE', 'LICENSE.md', '.vscodeignore']) {
  if (existsSync(join(root, f))) cpSync(join(root, f), join(stage, f));
}
for (const f of ['extension.cjs', 'runtime.mjs', 'webview.js', 'webview.css']) cpSync(join(root, 'dist', f), join(stage, 'dist', f));
cpSync(join(root, 'media'), join(stage, 'media'), { recursive: true });
mkdirSync(join(stage, 'models'), { recursive: true });
for (const f of readdirSync(join(root, 'models')).filter((n) => n.endsWith('.json'))) cpSync(join(root, 'models', f), join(stage, 'models', f));
// The presets' wording (prompt sets) sits beside them.
cpSync(join(root, 'models', 'prompts'), join(stage, 'models', 'prompts'), { recursive: true });

// The runtime (dist/runtime.mjs) resolves onnxruntime-node from dist/node_modules. vsce leaves a
// top-level node_modules out when dependency detection is off, so the package lives under dist/.
const ortSrc = join(root, 'node_modules', 'onnxruntime-node');
const ortDst = join(stage, 'dist', 'node_modules', 'onnxruntime-node');
mkdirSync(ortDst, { recursive: true });
for (const f of ['package.json', 'README.md', 'LICENSE']) if (existsSync(join(ortSrc, f))) cpSync(join(ortSrc, f), join(ortDst, f));
cpSync(join(ortSrc, 'dist'), join(ortDst, 'dist'), { recursive: true });
cpSync(join(ortSrc, ortBin), join(ortDst, ortBin), { recursive: true });
const commonSrc = join(root, 'node_modules', 'onnxruntime-common');
const commonDst = join(stage, 'dist', 'node_modules', 'onnxruntime-common');
mkdirSync(commonDst, { recursive: true });
for (const f of ['package.json', 'README.md', 'LICENSE']) if (existsSync(join(commonSrc, f))) cpSync(join(commonSrc, f), join(commonDst, f));
cpSync(join(commonSrc, 'dist', 'cjs'), join(commonDst, 'dist', 'cjs'), { recursive: true });
cpSync(join(commonSrc, 'dist', 'esm'), join(commonDst, 'dist', 'esm'), { recursive: true });

// 3. Package.
const out = join(root, `${pkg.name}-${target}-${pkg.version}.vsix`);
rmSync(out, { force: true });
const vsceArgs = [join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--target', target, '--out', out, '--allow-missing-repository'];
if (!['LICENSE', 'LICENSE.md', 'LICENSE.txt'].some((f) => existsSync(join(stage, f)))) vsceArgs.push('--skip-license');
run(process.execPath, vsceArgs, stage);

const size = statSync(out).size;
console.log(`package: ${out}`);
console.log(`package: ${mb(size)} VSIX for ${target} (staged ${mb(sizeOf(stage))}: onnxruntime ${mb(sizeOf(ortDst) + sizeOf(commonDst))}, bundles ${mb(sizeOf(join(stage, 'dist')) - sizeOf(join(stage, 'dist', 'node_modules')))})`);
