// Release benchmark: the Sequential-Light team at its published shapes (Qwen3-1.7B planner,
// Llama-3.2-1B critic, Qwen2.5-Math-1.5B solver; random weights), in the release's layout
// (transformers-5 configs, bf16 safetensors, bf16 .pt links, the RecursiveMAS manifests), served
// by a hub on 127.0.0.1, pulled with the built CLI's `models pull`, then solved by the built CLI at
// R = 3, m = 16 with a fixed 256-token answer at each precision: a first solve (graphs built) and a
// second one (graphs cached). Per precision: pull, build and load times, peak RSS of the CLI's
// process tree, disk, per-agent latent step ms, decode tokens/s, end-to-end seconds.
// Last line: {"peak_rss_mb": {...}, "e2e_s": {...}} keyed by precision (the cached solve).
//   npm run bench:release                       real shapes (about 9 GB of checkpoints under /tmp)
//   npm run bench:release -- --scale small      tiny shapes of the same layout, for development
//   options: --precisions int4,fp16,fp32 (default), --root <dir> (default /tmp/rmas-bench-release),
//            --keep (leave the checkpoints, the pulled models and the graphs for a rerun),
//            --reuse (a rerun after --keep: no pull, graphs kept, so both solves are cached), --threads N
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { readHfConfig } from '../src/engine/model/hf';
import { estimateMemory, formatBytes } from '../src/engine/model/memory';
import type { SolveMetrics } from '../src/protocol/events';
import { FakeHub, type FakeFile } from '../test/support/fake-hub';
import { tensor, writeTorchSave } from '../test/support/pt-writer';
import { writeTinyHfModel, type TinyModelSpec } from '../test/support/tiny-hf';

const REPO = join(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    scale: { type: 'string', default: 'real' },
    precisions: { type: 'string', default: 'int4,fp16,fp32' },
    root: { type: 'string', default: '/tmp/rmas-bench-release' },
    keep: { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
    threads: { type: 'string' },
  },
});
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Agent {
  repo: string;
  spec: TinyModelSpec;
  /** config.json values the generator does not write as the published model has them. */
  configPatch?: (c: Record<string, any>) => void;
}

// From each model's published config.json (Qwen/Qwen3-1.7B, meta-llama/Llama-3.2-1B-Instruct,
// Qwen/Qwen2.5-Math-1.5B-Instruct): all three tie their embeddings. Shards as the base repos ship
// them: Qwen3-1.7B in 2 files; Llama-3.2-1B (2.5 GB) and Qwen2.5-Math-1.5B (3.1 GB) in one.
const REAL: Agent[] = [
  {
    repo: 'RecursiveMAS/Sequential-Light-Planner-Qwen3-1.7B',
    spec: { family: 'qwen3', hiddenSize: 2048, intermediateSize: 6144, numLayers: 28, numHeads: 16, numKvHeads: 8, headDim: 128, vocabSize: 151936, ropeTheta: 1_000_000, rmsNormEps: 1e-6, maxPositionEmbeddings: 40960, tieWordEmbeddings: true, shards: 2 },
  },
  {
    repo: 'RecursiveMAS/Sequential-Light-Critic-Llama3.2-1B',
    spec: { family: 'llama', hiddenSize: 2048, intermediateSize: 8192, numLayers: 16, numHeads: 32, numKvHeads: 8, headDim: 64, vocabSize: 128256, ropeTheta: 500_000, rmsNormEps: 1e-5, maxPositionEmbeddings: 131072, tieWordEmbeddings: true, ropeScalingLlama3: true },
    // Llama 3.2 scales RoPE by 32 (3.1: 8).
    configPatch: (c) => void (c.rope_parameters.factor = 32.0),
  },
  {
    repo: 'RecursiveMAS/Sequential-Light-Solver-Qwen2.5-Math-1.5B',
    spec: { family: 'qwen2', hiddenSize: 1536, intermediateSize: 8960, numLayers: 28, numHeads: 12, numKvHeads: 2, vocabSize: 151936, ropeTheta: 10_000, rmsNormEps: 1e-6, maxPositionEmbeddings: 4096, tieWordEmbeddings: true },
  },
];

/** The same layout at a few MB, to develop the benchmark itself. */
const SMALL: Agent[] = REAL.map((a, i) => ({
  ...a,
  spec: { ...a.spec, intermediateSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 2048, ...[{ hiddenSize: 128, headDim: 64 }, { hiddenSize: 128, headDim: 32 }, { hiddenSize: 96 }][i]! },
}));
const OUTERLINKS = 'RecursiveMAS/Sequential-Light-Outerlinks';
const TASK = 'Write a function named is_prime(n) that returns True when n is a prime number.';

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}
const vec = (n: number, seed: number, offset = 0) => {
  const r = rand(seed);
  return tensor('bf16', [n], Float32Array.from({ length: n }, () => offset + 0.1 * r()));
};
const mat = (rows: number, cols: number, seed: number) => {
  const r = rand(seed);
  // Uniform in [-0.5, 0.5) has std 0.29: scaled to about 1/sqrt(cols).
  return tensor('bf16', [rows, cols], Float32Array.from({ length: rows * cols }, () => (3.46 * r()) / Math.sqrt(cols)));
};

function writeInner(path: string, d: number, seed: number): void {
  writeTorchSave(path, [
    ['pre_ln.weight', vec(d, seed, 1)], ['pre_ln.bias', vec(d, seed + 1)],
    ['proj1.weight', mat(d, d, seed + 2)], ['proj1.bias', vec(d, seed + 3)],
    ['proj2.weight', mat(d, d, seed + 4)], ['proj2.bias', vec(d, seed + 5)],
    ['post_ln.weight', vec(d, seed + 6, 1)], ['post_ln.bias', vec(d, seed + 7)],
  ]);
}

function writeOuter(path: string, dIn: number, dOut: number, seed: number): void {
  writeTorchSave(path, [
    ['ln_source.weight', vec(dIn, seed, 1)], ['ln_source.bias', vec(dIn, seed + 1)],
    ['proj1.weight', mat(2 * dOut, dIn, seed + 2)], ['proj1.bias', vec(2 * dOut, seed + 3)],
    ['proj2.weight', mat(dOut, 2 * dOut, seed + 4)], ['proj2.bias', vec(dOut, seed + 5)],
    ['residual_proj.weight', mat(dOut, dIn, seed + 6)], ['residual_proj.bias', vec(dOut, seed + 7)],
    ['ln_target.weight', vec(dOut, seed + 8, 1)], ['ln_target.bias', vec(dOut, seed + 9)],
  ]);
}

/** The release's repositories as folders (generated once per scale; a `complete` marker says so). */
async function writeRelease(source: string, agents: Agent[]): Promise<void> {
  if (existsSync(join(source, 'complete'))) return;
  rmSync(source, { recursive: true, force: true });
  for (const [i, a] of agents.entries()) {
    const folder = join(source, ...a.repo.split('/'));
    log(`generating ${a.repo} (${a.spec.hiddenSize} wide, ${a.spec.numLayers} layers, bf16, transformers-5 layout)...`);
    await writeTinyHfModel(folder, { ...a.spec, dtype: 'BF16', layout: 'transformers5', keepTensors: false, seed: 31 + i });
    if (a.configPatch) {
      const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
      a.configPatch(config);
      writeFileSync(join(folder, 'config.json'), JSON.stringify(config, null, 2));
    }
    const d = a.spec.hiddenSize;
    writeFileSync(join(folder, 'adapter_config.json'), JSON.stringify({ adapter_type: 'ln_res_adapter', hidden_dim: d }));
    writeFileSync(join(folder, 'innerlink_config.json'), JSON.stringify({ tasks: { math: { 'adapter.pt': 'adapter(math).pt' }, code: { 'adapter.pt': 'adapter(code).pt' } } }));
    writeInner(join(folder, 'adapter(code).pt'), d, 10 * i);
    writeInner(join(folder, 'adapter(math).pt'), d, 10 * i + 5);
  }
  const outer = join(source, ...OUTERLINKS.split('/'));
  const [p, c, s] = agents.map((a) => a.spec.hiddenSize) as [number, number, number];
  const pairs: [string, number, number][] = [['outer_12', p, c], ['outer_23', c, s], ['outer_31', s, p]];
  const manifest = (task: string) => ({ adapters: pairs.map(([key, dIn, dOut]) => ({ legacy_key: key, filename: `${task}/${key}.pt`, adapter_type: 'outer_ln_res_adapter', in_dim: dIn, out_dim: dOut })) });
  for (const task of ['code', 'math']) {
    mkdirSync(join(outer, task), { recursive: true });
    pairs.forEach(([key, dIn, dOut], k) => writeOuter(join(outer, task, `${key}.pt`), dIn, dOut, 100 * (k + 1) + (task === 'math' ? 50 : 0)));
  }
  writeFileSync(join(outer, 'outerlink_config.json'), JSON.stringify({ tasks: { code: manifest('code'), math: manifest('math') } }));
  writeFileSync(join(source, 'complete'), '');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** A whole file in one Buffer (readFileSync stops at 2 GiB; a Buffer may hold 4). */
function readWhole(path: string): Buffer {
  const buf = Buffer.allocUnsafe(statSync(path).size);
  const fd = openSync(path, 'r');
  try {
    for (let at = 0; at < buf.length; ) at += readSync(fd, buf, at, Math.min(1 << 30, buf.length - at), at);
  } finally {
    closeSync(fd);
  }
  return buf;
}

function diskBytes(dir: string): number {
  return existsSync(dir) ? filesUnder(dir).reduce((n, f) => n + statSync(f).size, 0) : 0;
}

/** Resident memory of a process and all its descendants, from /proc, in bytes. */
function treeRss(root: number): number {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
      rss.set(Number(name), Number(fields[21]) * 4096);
    } catch {
      // the process ended while we looked
    }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    total += rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** MemAvailable from /proc/meminfo, in bytes. */
function availableMemory(): number {
  const kb = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return Number(kb ?? 0) * 1024;
}

/** The engine's own estimate for the pulled team (weights, embedding tables, 4096-position KV caches). */
async function teamEstimate(models: string, agents: Agent[], precision: 'int4' | 'fp16' | 'fp32'): Promise<number> {
  let total = 0;
  for (const a of agents) total += estimateMemory(await readHfConfig(join(models, ...a.repo.split('/'))), precision, 4096, { device: 'cpu' }).totalBytes;
  return total;
}

interface Run {
  code: number;
  wallMs: number;
  peakRss: number;
  lines: { at: number; value: any }[];
  stderr: string;
}

/** Runs the built CLI, polling its process tree's RSS; stdout lines are timestamped JSON. */
function runCli(argv: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(REPO, 'bin', 'recursivemas.js'), ...argv], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Run['lines'] = [];
    let pending = '';
    let stderr = '';
    let peakRss = 0;
    const poll = setInterval(() => (peakRss = Math.max(peakRss, treeRss(child.pid!))), 250);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          lines.push({ at: performance.now() - started, value: JSON.parse(line) });
        } catch {
          lines.push({ at: performance.now() - started, value: line });
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      resolve({ code: code ?? 1, wallMs: performance.now() - started, peakRss, lines, stderr });
    });
  });
}

interface SolveFigures {
  e2eS: number;
  loadS: number;
  peakRssMb: number;
  /** Per agent: mean ms of one latent step (after the prompt), and decode tokens/s. */
  latentStepMs: Record<string, number>;
  decodeTokS: number;
  solveS: number;
  error?: string;
}

function figures(run: Run): SolveFigures {
  const result = run.lines.at(-1)?.value;
  const loaded = run.lines.find((l) => l.value?.type === 'team-loaded')?.value;
  const base = { e2eS: run.wallMs / 1000, loadS: (loaded?.ms ?? 0) / 1000, peakRssMb: run.peakRss / 2 ** 20, latentStepMs: {}, decodeTokS: 0, solveS: 0 };
  if (run.code !== 0 || !result?.metrics) return { ...base, error: result?.error?.message ?? run.stderr.trim().split('\n').slice(-3).join(' ') };
  const metrics = result.metrics as SolveMetrics;
  const perAgent = new Map<string, number[]>();
  let decode = 0;
  for (const s of metrics.stages) {
    if (s.kind === 'latent' && s.steps) perAgent.set(s.agent, [...(perAgent.get(s.agent) ?? []), (s.ms - (s.promptMs ?? 0)) / s.steps]);
    if (s.kind === 'decode' && s.steps) decode = s.steps / ((s.ms - (s.promptMs ?? 0)) / 1000);
  }
  const latentStepMs = Object.fromEntries([...perAgent].map(([a, xs]) => [a, xs.reduce((x, y) => x + y, 0) / xs.length]));
  return { ...base, latentStepMs, decodeTokS: decode, solveS: metrics.wallMs / 1000 };
}

async function main(): Promise<void> {
  const scale = args.scale === 'small' ? 'small' : 'real';
  const agents = scale === 'small' ? SMALL : REAL;
  const root = join(args.root, scale);
  const source = join(root, 'source');
  const models = join(root, 'models');
  const precisions = args.precisions.split(',').map((p) => p.trim()) as ('int4' | 'fp16' | 'fp32')[];
  log(`bench:release at ${scale} shapes under ${root}; precisions ${precisions.join(', ')}`);

  log('building the CLI and the runtime (node scripts/build.mjs --only=cli,runtime)...');
  const built = spawnSync(process.execPath, [join(REPO, 'scripts', 'build.mjs'), '--only=cli,runtime'], { cwd: REPO, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('the build failed');

  let t = performance.now();
  await writeRelease(source, agents);
  log(`checkpoints ready in ${((performance.now() - t) / 1000).toFixed(0)} s (${(diskBytes(source) / 1e9).toFixed(2)} GB)`);

  // The hub holds the files in memory, as the fake hub does: only while the pull runs.
  const reuse = args.reuse && existsSync(models);
  if (!reuse) rmSync(models, { recursive: true, force: true });
  let pull: Run = { code: 0, wallMs: 0, peakRss: 0, lines: [], stderr: '' };
  if (!reuse) {
    const repos: Record<string, { files: FakeFile[] }> = {};
    for (const repo of [...agents.map((a) => a.repo), OUTERLINKS]) {
      const folder = join(source, ...repo.split('/'));
      repos[repo] = { files: filesUnder(folder).map((f) => ({ path: relative(folder, f), content: readWhole(f), lfs: /\.(safetensors|pt)$/.test(f) })) };
    }
    const hub = await FakeHub.start({ repos, lifetimeMs: 3 * 3600_000 });
    try {
      log(`pulling sequential-light-code from the hub at ${hub.endpoint}...`);
      pull = await runCli(['models', 'pull', 'sequential-light-code', '--endpoint', hub.endpoint, '--models-dir', models], {});
    } finally {
      await hub.stop();
    }
    if (pull.code !== 0) throw new Error(`models pull failed: ${pull.stderr}`);
  } else log(`reusing the models pulled into ${models} (no pull)`);
  const pullS = pull.wallMs / 1000;
  const pulledGb = diskBytes(models) / 1e9;
  log(`pulled ${pulledGb.toFixed(2)} GB in ${pullS.toFixed(1)} s`);

  const table: Record<string, { first: SolveFigures; cached?: SolveFigures; buildS: number; graphsGb: number; estimate: number }> = {};
  for (const precision of precisions) {
    const cache = join(root, `cache-${precision}`);
    if (!reuse) rmSync(cache, { recursive: true, force: true });
    const env = { RECURSIVEMAS_CACHE: cache, RECURSIVEMAS_MODELS: models };
    const argv = ['solve', TASK, '--team', 'sequential-light-code', '--rounds', '3', '--latent-steps', '16', '--max-new-tokens', '256', '--fixed-length', '--seed', '1', '--device', 'cpu', '--precision', precision, '--json', '--models-dir', models, ...(args.threads ? ['--threads', args.threads] : [])];
    // The machine is shared: a precision whose estimate takes most of the free memory is not tried
    // (the runtime itself refuses only what exceeds all of it).
    const need = await teamEstimate(models, agents, precision);
    const free = availableMemory();
    if (need > 0.8 * free) {
      const error = `skipped: the engine estimates ${formatBytes(need)} for the team at ${precision} on the CPU, more than 80% of the ${formatBytes(free)} available`;
      log(`[${precision}] ${error}`);
      table[precision] = { first: { ...figures({ code: 1, wallMs: 0, peakRss: 0, lines: [], stderr: '' }), error }, buildS: 0, graphsGb: 0, estimate: need };
      continue;
    }
    log(`[${precision}] first solve (builds the graphs; the engine estimates ${formatBytes(need)})...`);
    t = performance.now();
    const first = figures(await runCli(argv, env));
    log(`[${precision}] ${first.error ? `failed: ${first.error}` : `done in ${first.e2eS.toFixed(1)} s, peak RSS ${first.peakRssMb.toFixed(0)} MB`}`);
    let cached: SolveFigures | undefined;
    if (!first.error) {
      log(`[${precision}] second solve (graphs cached)...`);
      cached = figures(await runCli(argv, env));
      log(`[${precision}] ${cached.error ? `failed: ${cached.error}` : `done in ${cached.e2eS.toFixed(1)} s, peak RSS ${cached.peakRssMb.toFixed(0)} MB`}`);
    }
    // The first load builds and loads, the second only loads: the difference is the build.
    const buildS = !reuse && cached && !cached.error ? first.loadS - cached.loadS : 0;
    table[precision] = { first, cached, buildS, graphsGb: diskBytes(cache) / 1e9, estimate: need };
    if (!args.keep) rmSync(cache, { recursive: true, force: true });
  }

  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`\nSequential-Light at ${scale} shapes, R = 3, m = 16, 256-token answer, device cpu${args.threads ? `, ${args.threads} threads` : ''}`);
  out(reuse ? `pull: not run (--reuse); models folder ${pulledGb.toFixed(2)} GB` : `pull: ${pullS.toFixed(1)} s for ${pulledGb.toFixed(2)} GB (models folder)`);
  for (const [precision, r] of Object.entries(table)) {
    if (r.first.error) {
      out(`${precision}: not run: ${r.first.error}`);
      continue;
    }
    const c = r.cached && !r.cached.error ? r.cached : undefined;
    out(`${precision}: graph build ${reuse ? 'not run (--reuse: graphs cached)' : `${r.buildS.toFixed(1)} s`}, graphs on disk ${r.graphsGb.toFixed(2)} GB, engine estimate ${formatBytes(r.estimate)}`);
    out(`  first solve: load ${r.first.loadS.toFixed(1)} s (build included), end to end ${r.first.e2eS.toFixed(1)} s, peak RSS ${r.first.peakRssMb.toFixed(0)} MB`);
    if (c) {
      out(`  cached solve: load ${c.loadS.toFixed(1)} s, solve ${c.solveS.toFixed(1)} s, end to end ${c.e2eS.toFixed(1)} s, peak RSS ${c.peakRssMb.toFixed(0)} MB`);
      out(`  latent step ms: ${Object.entries(c.latentStepMs).map(([a, ms]) => `${a} ${ms.toFixed(0)}`).join(', ')}; solver decode ${c.decodeTokS.toFixed(2)} tok/s`);
    } else out(`  cached solve failed: ${r.cached?.error}`);
  }
  if (!args.keep) rmSync(root, { recursive: true, force: true });
  const best = (r: (typeof table)[string]) => (r.cached && !r.cached.error ? r.cached : r.first.error ? undefined : r.first);
  const keyed = (f: (s: SolveFigures) => number) => Object.fromEntries(Object.entries(table).map(([p, r]) => [p, best(r) ? Number(f(best(r)!).toFixed(1)) : null]));
  out(JSON.stringify({ peak_rss_mb: keyed((s) => s.peakRssMb), e2e_s: keyed((s) => s.e2eS) }));
}

await main();
