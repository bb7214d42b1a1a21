// Seeded fuzzing of every reader a user's file reaches: real files (safetensors headers,
// config.json, tokenizer.json, `.pt` zips and pickles, llama2.c headers) are mutated and run
// through the built CLI as real processes (`inspect`, `generate`); mutated JSON-RPC frames go to a
// real runtime process. Every case must end cleanly: a correct result, or a non-zero documented
// exit code with one `error:` line, no stack, within bounded time and memory. A fixed seed and a
// fixed number of cases keep it reproducible and inside about a minute and a half.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SeededRandom } from '../../src/engine/random';
import { ensureCliBuilt, runCli, RUNTIME_BUNDLE, type CliRun } from '../support/cli';
import { REPO, STORIES, tempDir } from '../support/paths';
import { encodeStateDictPickle, encodeTorchSave, tensor, writeTorchSave } from '../support/pt-writer';
import { writeTinyHfModel } from '../support/tiny-hf';

const SEED = 20261201;
const rng = new SeededRandom(SEED);
const int = (n: number): number => rng.nextU32() % n;
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

const HOME = tempDir('rmas-fuzz-');
const env = { ...process.env, RECURSIVEMAS_CACHE: join(HOME, 'cache'), RECURSIVEMAS_MODELS: join(HOME, 'models'), RECURSIVEMAS_DEBUG: '' };
const CASE_TIMEOUT_MS = 30_000;
const MAX_RSS_BYTES = 1.5 * 1024 ** 3;
const CLEAN_EXIT_CODES = new Set([1, 2, 3]);

/** Numbers and non-numbers a hostile file puts where a size belongs. `1e400` is JSON for Infinity. */
const HOSTILE = ['0', '-1', '1', '3', '7', '7.5', '1e400', '-1e400', '2147483648', '9007199254740993', '1e18', '"64"', 'null', '[]', '{}', 'true'];

interface Case {
  kind: string;
  what: string;
  args: string[];
  /** For a zero exit: is the output right? */
  ok: (run: CliRun) => boolean;
}

interface Outcome {
  c: Case;
  run: CliRun;
  problem?: string;
}

let n = 0;
function fresh(name: string): string {
  const dir = join(HOME, `case${n++}`);
  mkdirSync(dir);
  return join(dir, name);
}

function flipBytes(bytes: Buffer, from: number, to: number, count: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < count; i++) {
    const at = from + int(Math.max(1, to - from));
    out[at] = out[at]! ^ (1 + int(255));
  }
  return out;
}

const inspectRowsOk = (run: CliRun): boolean => {
  const lines = run.stdout.trim().split('\n').filter(Boolean);
  return lines.every((l) => {
    const r = JSON.parse(l);
    return typeof r.name === 'string' && typeof r.dtype === 'string' && Array.isArray(r.shape) && (typeof r.sum === 'number' || typeof r.sum === 'string');
  });
};

// --- the real files --------------------------------------------------------------------------

let hf: string;
let safetensors: Buffer;
let pt: Buffer;
let ptPickle: Buffer;
let ptEntries: [string, ReturnType<typeof tensor>][];
let stories: Buffer;
let storiesExpected: string;
let hfExpected: string;

function safetensorsCases(count: number): Case[] {
  const headerLen = Number(safetensors.readBigUInt64LE(0));
  const header = JSON.parse(safetensors.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, any>;
  const data = safetensors.subarray(8 + headerLen);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const cases: Case[] = [];
  const write = (what: string, bytes: Buffer) => {
    const file = fresh('model.safetensors');
    writeFileSync(file, bytes);
    cases.push({ kind: 'safetensors', what, args: ['inspect', file, '--json'], ok: inspectRowsOk });
  };
  const withHeader = (what: string, h: unknown, tail: Buffer = data) => {
    const json = Buffer.from(JSON.stringify(h));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    write(what, Buffer.concat([prefix, json, tail]));
  };
  write('unchanged', safetensors);
  while (cases.length < count) {
    const h = structuredClone(header);
    const name = pick(names);
    const t = h[name];
    switch (int(9)) {
      case 0:
        write('flipped header bytes', flipBytes(safetensors, 0, 8 + headerLen, 1 + int(3)));
        break;
      case 1: {
        const prefix = Buffer.alloc(8);
        prefix.writeBigUInt64LE(BigInt(pick([0, 1, headerLen - 1, headerLen + 1, headerLen + 4096, 2 ** 40])) + (int(2) ? 0n : 2n ** 63n));
        write('header length', Buffer.concat([prefix, safetensors.subarray(8)]));
        break;
      }
      case 2:
        t.data_offsets = [t.data_offsets[0] + pick([-8, -4, -1, 1, 4, 8]), t.data_offsets[1] + pick([0, -4, 4])];
        withHeader(`shifted offsets of ${name}`, h);
        break;
      case 3: {
        const other = names[(names.indexOf(name) + 1 + int(names.length - 1)) % names.length]!;
        t.data_offsets = [...h[other].data_offsets];
        withHeader(`${name} aliases ${other}`, h);
        break;
      }
      case 4:
        t.dtype = pick(['F16', 'BF16', 'F64', 'I8', 'U8', 'BOOL', 'Q4_0', '', null, 3]);
        withHeader(`dtype of ${name}`, h);
        break;
      case 5: {
        const value = JSON.parse(pick(HOSTILE).replace('1e400', '1e300').replace('-1e300', '-1'));
        if (int(2)) t.shape = [...t.shape, value];
        else t.shape[int(t.shape.length)] = value;
        withHeader(`shape of ${name}`, h);
        break;
      }
      case 6:
        h.__metadata__ = pick([[1], { a: 1 }, 'x', null, { nested: { a: 'b' } }]);
        withHeader('metadata', h);
        break;
      case 7:
        withHeader('unaccounted tail bytes', h, Buffer.concat([data, Buffer.alloc(1 + int(64))]));
        break;
      default:
        write('truncated', safetensors.subarray(0, int(safetensors.length)));
    }
  }
  return cases;
}

function configCases(count: number): Case[] {
  const text = readFileSync(join(hf, 'config.json'), 'utf8');
  const config = JSON.parse(text) as Record<string, unknown>;
  const keys = ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'vocab_size', 'rms_norm_eps', 'rope_theta', 'max_position_embeddings', 'bos_token_id', 'eos_token_id', 'rope_scaling', 'rope_parameters', 'tie_word_embeddings', 'model_type', 'torch_dtype'];
  const cases: Case[] = [];
  const folder = (what: string, configText: string) => {
    const dir = fresh('hf');
    mkdirSync(dir);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json', 'model.safetensors']) {
      try {
        copyFileSync(join(hf, f), join(dir, f));
      } catch {
        // not every family writes every file
      }
    }
    writeFileSync(join(dir, 'config.json'), configText);
    cases.push({ kind: 'config.json', what, args: ['generate', '--model', dir, '--prompt', 'hi', '--max-new-tokens', '2'], ok: (r) => r.stdout.length > 0 });
  };
  while (cases.length < count) {
    switch (int(4)) {
      case 0:
      case 1: {
        const key = pick(keys);
        const value = pick(HOSTILE);
        // Written as text, so 1e400 (Infinity once parsed) can be expressed.
        const c = { ...config, [key]: '@@VALUE@@' };
        folder(`${key} = ${value}`, JSON.stringify(c).replace('"@@VALUE@@"', value));
        break;
      }
      case 2: {
        const c = { ...config };
        delete c[pick(keys)];
        folder('a key removed', JSON.stringify(c));
        break;
      }
      default:
        folder(int(2) ? 'flipped bytes' : 'truncated', int(2) ? flipBytes(Buffer.from(text), 0, text.length, 1 + int(3)).toString('latin1') : text.slice(0, int(text.length)));
    }
  }
  return cases;
}

function tokenizerCases(count: number): Case[] {
  const text = readFileSync(join(hf, 'tokenizer.json'), 'utf8');
  const tok = JSON.parse(text) as Record<string, any>;
  const cases: Case[] = [];
  while (cases.length < count) {
    const dir = fresh('hf');
    mkdirSync(dir);
    for (const f of ['config.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json', 'model.safetensors']) {
      try {
        copyFileSync(join(hf, f), join(dir, f));
      } catch {
        // not every family writes every file
      }
    }
    let what: string;
    let out: string;
    const t = structuredClone(tok);
    switch (int(6)) {
      case 0:
        what = 'flipped bytes';
        out = flipBytes(Buffer.from(text), 0, text.length, 1 + int(4)).toString('latin1');
        break;
      case 1:
        what = 'truncated';
        out = text.slice(0, int(text.length));
        break;
      case 2:
        what = 'vocab replaced';
        t.model.vocab = pick([[], { a: -1 }, { a: 1e12 }, 'x', null, { a: 0.5 }]);
        out = JSON.stringify(t);
        break;
      case 3:
        what = 'merges replaced';
        t.model.merges = pick([5, ['a'], [['a']], [[1, 2]], 'a b', null]);
        out = JSON.stringify(t);
        break;
      case 4:
        what = 'added token ids';
        if (Array.isArray(t.added_tokens) && t.added_tokens.length) t.added_tokens[int(t.added_tokens.length)].id = JSON.parse(pick(['-1', '1e12', '7.5', 'null', '"3"']));
        else t.added_tokens = 'x';
        out = JSON.stringify(t);
        break;
      default:
        what = 'model type / pre-tokenizer';
        if (int(2)) t.model.type = pick(['Unigram', 'WordPiece', '', 3]);
        else t.pre_tokenizer = pick(['x', 3, { type: 'Nope' }, { type: 'Sequence', pretokenizers: 'x' }]);
        out = JSON.stringify(t);
    }
    writeFileSync(join(dir, 'tokenizer.json'), out);
    cases.push({ kind: 'tokenizer.json', what, args: ['generate', '--model', dir, '--prompt', 'hi', '--max-new-tokens', '2'], ok: (r) => r.stdout.length > 0 });
  }
  return cases;
}

function ptCases(count: number): Case[] {
  const cases: Case[] = [];
  const write = (what: string, bytes: Buffer) => {
    const file = fresh('adapter.pt');
    writeFileSync(file, bytes);
    cases.push({ kind: '.pt', what, args: ['inspect', file, '--json'], ok: inspectRowsOk });
  };
  write('unchanged', pt);
  while (cases.length < count) {
    switch (int(5)) {
      case 0:
      case 1: {
        // Stored with a correct CRC, so the pickle reader itself meets the damage.
        const pickle = flipBytes(ptPickle, 0, ptPickle.length, 1 + int(3));
        write('mutated pickle', Buffer.from(encodeTorchSave(ptEntries, { archiveName: 'adapter', pickle })));
        break;
      }
      case 2:
        write('flipped zip directory bytes', flipBytes(pt, pt.length - 200, pt.length, 1 + int(3)));
        break;
      case 3:
        write('flipped bytes anywhere', flipBytes(pt, 0, pt.length, 1 + int(8)));
        break;
      default:
        write('truncated', pt.subarray(0, int(pt.length)));
    }
  }
  return cases;
}

function llama2cCases(count: number): Case[] {
  const fields = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  const cases: Case[] = [];
  const write = (what: string, bytes: Buffer) => {
    const file = fresh('model.bin');
    writeFileSync(file, bytes);
    cases.push({
      kind: 'llama2.c',
      what,
      args: ['generate', '--model', file, '--tokenizer', join(STORIES, 'tok512.bin'), '--prompt', 'Once', '--steps', '6'],
      ok: (r) => (bytes.equals(stories) ? r.stdout === storiesExpected : r.stdout.length > 0),
    });
  };
  write('unchanged', stories);
  while (cases.length < count) {
    const bytes = Buffer.from(stories);
    if (int(5) === 0) {
      write('truncated', stories.subarray(0, int(stories.length)));
      continue;
    }
    const field = int(7);
    const value = pick([0, -1, 1, 2, 7, 63, 1 << 16, 2 ** 31 - 1, -(2 ** 31), bytes.readInt32LE(field * 4) + pick([-1, 1, 8])]);
    bytes.writeInt32LE(value, field * 4);
    write(`${fields[field]} = ${value}`, bytes);
  }
  return cases;
}

// --- running and judging ---------------------------------------------------------------------

function judge(c: Case, run: CliRun): string | undefined {
  if (run.signal) return `killed by ${run.signal} after ${run.ms.toFixed(0)} ms`;
  if (run.ms > CASE_TIMEOUT_MS) return `took ${run.ms.toFixed(0)} ms`;
  if (run.peakRssBytes > MAX_RSS_BYTES) return `used ${(run.peakRssBytes / 1024 ** 2).toFixed(0)} MiB`;
  if (/\n\s+at .+:\d+:\d+\)?\n/.test(run.stderr) || /internal error/.test(run.stderr)) return `printed a stack or an internal error:\n${run.stderr}`;
  if (run.code === 0) return c.ok(run) ? undefined : `exit 0 with a wrong result: ${run.stdout.slice(0, 300)}`;
  if (!CLEAN_EXIT_CODES.has(run.code ?? -1)) return `exit code ${run.code}:\n${run.stderr}`;
  if (!/^error: [^\n]+\n$/.test(run.stderr)) return `not one error line:\n${run.stderr}`;
  return undefined;
}

async function runAll(cases: Case[], parallel = 2): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      const run = await runCli(c.args, { env, timeoutMs: CASE_TIMEOUT_MS + 5_000 });
      outcomes.push({ c, run, problem: judge(c, run) });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return outcomes;
}

before(async () => {
  ensureCliBuilt();
  hf = (await writeTinyHfModel(join(HOME, 'tiny'), { family: 'llama', hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2, numKvHeads: 1, vocabSize: 300, seed: 5 })).dir;
  safetensors = readFileSync(join(hf, 'model.safetensors'));
  ptEntries = [
    ['pre_ln.weight', tensor('bf16', [4], [1, 2, 3, 4.5])],
    ['proj1.weight', tensor('f32', [2, 3], [0.5, -1, 2, 3, 4, -5.5])],
    ['steps', tensor('i64', [1], [7])],
  ];
  pt = Buffer.from(writeTorchSave(join(HOME, 'adapter.pt'), ptEntries));
  ptPickle = Buffer.from(encodeStateDictPickle(ptEntries).pickle);
  stories = readFileSync(join(STORIES, 'stories260K.bin'));
  const base = await runCli(['generate', '--model', join(STORIES, 'stories260K.bin'), '--tokenizer', join(STORIES, 'tok512.bin'), '--prompt', 'Once', '--steps', '6'], { env });
  assert.equal(base.code, 0, base.stderr);
  storiesExpected = base.stdout;
  const hfBase = await runCli(['generate', '--model', hf, '--prompt', 'hi', '--max-new-tokens', '2'], { env });
  assert.equal(hfBase.code, 0, hfBase.stderr);
  hfExpected = hfBase.stdout;
  assert.ok(hfExpected.length > 0);
});

test(`mutated files through the CLI end cleanly (seed ${SEED})`, async (t) => {
  const cases = [...safetensorsCases(20), ...configCases(14), ...tokenizerCases(8), ...ptCases(12), ...llama2cCases(10)];
  const started = performance.now();
  const outcomes = await runAll(cases);
  const crashes = outcomes.filter((o) => o.problem);
  const byKind = new Map<string, { tried: number; errors: number; results: number }>();
  for (const o of outcomes) {
    const k = byKind.get(o.c.kind) ?? { tried: 0, errors: 0, results: 0 };
    k.tried++;
    if (o.run.code === 0) k.results++;
    else k.errors++;
    byKind.set(o.c.kind, k);
  }
  const peak = outcomes.reduce((m, o) => Math.max(m, o.run.peakRssBytes), 0);
  const slowest = outcomes.reduce((m, o) => Math.max(m, o.run.ms), 0);
  t.diagnostic(`fuzz (CLI): ${outcomes.length} cases in ${((performance.now() - started) / 1000).toFixed(1)} s, ${crashes.length} crashes; ` +
    [...byKind].map(([k, v]) => `${k} ${v.tried} (${v.errors} clean errors, ${v.results} results)`).join(', ') +
    `; slowest case ${(slowest / 1000).toFixed(1)} s, peak RSS ${(peak / 1024 ** 2).toFixed(0)} MiB`);
  if (process.env.FUZZ_VERBOSE) for (const o of outcomes) t.diagnostic(`${o.c.kind} (${o.c.what}): exit ${o.run.code} ${o.run.stderr.trim().slice(0, 160)}`);
  assert.deepEqual(
    crashes.map((o) => `${o.c.kind} (${o.c.what}): ${o.problem}`),
    [],
  );
});

test('the fuzz oracle itself: it flags stacks, internal errors, odd exit codes, several lines and wrong results', () => {
  const c: Case = { kind: 'x', what: 'y', args: [], ok: (r) => r.stdout === 'right' };
  const run = (over: Partial<CliRun>): CliRun => ({ code: 1, signal: null, stdout: '', stderr: 'error: clean\n', ms: 10, peakRssBytes: 1, ...over });
  assert.equal(judge(c, run({})), undefined);
  assert.equal(judge(c, run({ code: 0, stdout: 'right' })), undefined);
  assert.match(judge(c, run({ stderr: 'error: RangeError: x\n    at rope (file:///dist/cli.mjs:1:2)\n' }))!, /stack/);
  assert.match(judge(c, run({ stderr: 'error: x (an internal error: run again with --debug for details, and report it)\n' }))!, /internal error/);
  assert.match(judge(c, run({ code: 7 }))!, /exit code 7/);
  assert.match(judge(c, run({ stderr: 'error: a\nmore\n' }))!, /not one error line/);
  assert.match(judge(c, run({ code: 0, stdout: 'wrong' }))!, /wrong result/);
  assert.match(judge(c, run({ code: null, signal: 'SIGKILL' }))!, /killed/);
  assert.match(judge(c, run({ peakRssBytes: 2 * 1024 ** 3 }))!, /MiB/);
});

// --- runtime frames --------------------------------------------------------------------------

test(`mutated JSON-RPC frames to a real runtime: it stays up and answers (seed ${SEED})`, async (t) => {
  const child = spawn(process.execPath, [RUNTIME_BUNDLE], { cwd: REPO, env: { ...env, RECURSIVEMAS_RPC_FD: '3' }, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exit ${code} ${signal ?? ''}`));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // An independent parser: this test must not trust the reader it checks.
  let buffer = Buffer.alloc(0);
  const answers = new Map<unknown, unknown>();
  let unparseable = 0;
  (child.stdio[3] as Readable).on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/^Content-Length: (\d+)$/im.exec(buffer.subarray(0, end).toString())?.[1]);
      if (!Number.isFinite(length) || buffer.length < end + 4 + length) return;
      const body = buffer.subarray(end + 4, end + 4 + length).toString();
      buffer = buffer.subarray(end + 4 + length);
      try {
        const m = JSON.parse(body) as { id?: unknown; jsonrpc?: unknown };
        if (m.jsonrpc !== '2.0') unparseable++;
        if (m.id !== undefined) answers.set(m.id, m);
      } catch {
        unparseable++;
      }
    }
  });
  const frame = (body: Buffer | string) => {
    const b = Buffer.from(body);
    return Buffer.concat([Buffer.from(`Content-Length: ${b.length}\r\n\r\n`), b]);
  };
  const write = (bytes: Buffer) => child.stdin.write(bytes);
  const answered = async (id: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!answers.has(id) && !exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return answers.get(id);
  };

  try {
    write(frame(JSON.stringify({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { clientName: 'fuzz' } })));
    assert.ok(await answered('init', 20_000), `no answer to initialize: ${stderr}`);
    const bases = [
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', id: 2, method: 'solve/cancel', params: { id: 'nothing-runs' } },
      { jsonrpc: '2.0', id: 3, method: 'team/unload' },
      { jsonrpc: '2.0', id: 4, method: 'solve', params: { id: 's', rounds: 'x' } },
      { jsonrpc: '2.0', id: 5, method: 'no/such/method', params: [1, 2] },
      { jsonrpc: '2.0', method: 'log', params: { level: 'info', message: 'a notification' } },
    ];
    const CASES = 60;
    let recovered = 0;
    for (let i = 0; i < CASES; i++) {
      const body = Buffer.from(JSON.stringify(pick(bases)));
      let bytes: Buffer;
      switch (int(5)) {
        case 0:
          bytes = frame(flipBytes(body, 0, body.length, 1 + int(4)));
          break;
        case 1: {
          // A wrong Content-Length: short (the rest looks like garbage) or long (it swallows the next frame).
          const header = Buffer.from(`Content-Length: ${Math.max(0, body.length + pick([-20, -5, -1, 1, 7, 40]))}\r\n\r\n`);
          bytes = Buffer.concat([header, body]);
          break;
        }
        case 2:
          bytes = flipBytes(frame(body), 0, 20, 1 + int(2));
          break;
        case 3:
          bytes = frame(body.subarray(0, int(body.length)));
          break;
        default:
          bytes = Buffer.concat([Buffer.from(pick(['\r\n\r\n', 'garbage', 'Content-Length: x\r\n\r\n', '\0\0\0\0', 'Content-Type: y\r\n\r\n'])), frame(body)]);
      }
      write(bytes);
      // However that frame went, a ping must get through: a second one fills any swallowed length.
      const probe = `probe-${i}`;
      let got = false;
      for (let tries = 0; tries < 4 && !got; tries++) {
        write(frame(JSON.stringify({ jsonrpc: '2.0', id: probe, method: 'ping' })));
        got = (await answered(probe, 2_000)) !== undefined;
        if (got && tries > 0) recovered++;
      }
      assert.ok(got, `the runtime stopped answering after case ${i} (${JSON.stringify(bytes.toString('latin1').slice(0, 120))}); ${exited ?? 'still running'}; stderr:\n${stderr.slice(-2000)}`);
    }
    assert.equal(exited, undefined, `the runtime exited: ${exited}`);
    assert.equal(unparseable, 0, 'the runtime wrote a frame that is not JSON-RPC 2.0');
    assert.doesNotMatch(stderr, /\n\s+at .+:\d+:\d+/, 'the runtime printed a stack');
    t.diagnostic(`fuzz (runtime frames): ${CASES} mutated frames, 0 crashes, the runtime answered a ping after each (${recovered} needed a second ping to fill a swallowed length)`);
  } finally {
    child.kill('SIGKILL');
  }
});
