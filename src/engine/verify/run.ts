// Runs one check on one candidate: the candidate goes into a temporary copy of the affected file
// (or stands alone when there is no file), a small harness or the user's command runs it in the
// sandbox, and the result is read as passed / failed / errored / timed out with the first failure.
// The user's files are only ever read.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { CheckOutcome, CheckStatus } from '../../protocol/events';
import type { Check, CheckLanguage } from './checks';
import { DEFAULT_MAX_OUTPUT_BYTES, runSandboxed, type SandboxLimits, type SandboxResult } from './sandbox';

/** Where a candidate goes: the user's file (its current text) and the range it replaces. */
export interface Placement {
  file?: { path: string; text: string; start: number; end: number };
  /** The project folder a configured command runs in (copied for each run). */
  root?: string;
}

export interface RunOptions {
  limits?: Partial<SandboxLimits>;
  signal?: AbortSignal;
  isolation?: 'auto' | 'none';
  /** Characters of output kept in the outcome. */
  outputChars?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
/** Project copies for a command stop here: a bigger tree needs a narrower command folder. */
const MAX_COPY_FILES = 20_000;
// Big folders a command reads but never needs to write are linked, not copied (read-only in the sandbox).
const LINKED = new Set(['node_modules', '.venv', 'venv', 'env', '.tox', '.nox', 'target', 'vendor']);
const SKIPPED = new Set(['.git', '.hg', '.svn', '__pycache__', '.pytest_cache', '.mypy_cache']);

/** The file's text with the candidate in place of the range (the whole candidate when there is no file). */
export function placeCandidate(placement: Placement, code: string): string {
  const f = placement.file;
  if (!f) return code;
  const start = Math.min(f.start, f.text.length);
  const end = Math.max(start, Math.min(f.end, f.text.length));
  const before = f.text.slice(0, start);
  const after = f.text.slice(end);
  const sep = (a: string, b: string) => (a === '' || b === '' || a.endsWith('\n') || b.startsWith('\n') ? '' : '\n');
  return `${before}${sep(before, code)}${code}${sep(code, after)}${after}`;
}

function python(): string {
  return process.platform === 'win32' ? 'python' : 'python3';
}

/** `node` from PATH; inside an Electron host (ELECTRON_RUN_AS_NODE) its own binary runs as Node. */
function node(): { argv0: string; env: Record<string, string> } {
  return process.versions.electron ? { argv0: process.execPath, env: { ELECTRON_RUN_AS_NODE: '1' } } : { argv0: 'node', env: {} };
}

const DOCTEST_HARNESS = `import doctest, sys
sys.path.insert(0, '.')
try:
    import candidate
except BaseException as e:
    print("FIRST-FAILURE: the candidate does not load: %s: %s" % (type(e).__name__, e))
    sys.exit(1)
with open('doctests.txt', encoding='utf-8') as f:
    source = f.read()
test = doctest.DocTestParser().get_doctest(source, dict(vars(candidate)), 'checks', 'doctests.txt', 0)
runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
runner.run(test)
print("%d of %d examples passed" % (runner.tries - runner.failures, runner.tries))
sys.exit(1 if runner.failures else 0)
`;

const ASSERT_HARNESS = `import json, sys, traceback
sys.path.insert(0, '.')
try:
    import candidate
except BaseException as e:
    print("FIRST-FAILURE: the candidate does not load: %s: %s" % (type(e).__name__, e))
    sys.exit(1)
ns = dict(vars(candidate))
with open('asserts.json', encoding='utf-8') as f:
    lines = json.load(f)
for i, line in enumerate(lines):
    try:
        exec(compile(line, 'assert %d' % (i + 1), 'exec'), ns)
    except AssertionError as e:
        print("FIRST-FAILURE: %s%s" % (line, (" (%s)" % e) if str(e) else ""))
        sys.exit(1)
    except BaseException as e:
        print("FIRST-FAILURE: %s raised %s: %s" % (line, type(e).__name__, e))
        sys.exit(1)
    print("ok: %s" % line)
print("%d of %d assert lines passed" % (len(lines), len(lines)))
`;

function jsAssertHarness(code: string, lines: string[]): string {
  // The candidate and the assert lines share one module scope, as if the lines followed the code.
  const body = lines
    .map(
      (l, i) =>
        `try { ${l} console.log(${JSON.stringify(`ok: ${l}`)}); } catch (e) { console.log(${JSON.stringify(`FIRST-FAILURE: ${l}`)} + (e && e.message ? ' (' + String(e.message).split('\\n')[0] + ')' : '')); process.exit(1); }${i === lines.length - 1 ? `\nconsole.log(${JSON.stringify(`${lines.length} of ${lines.length} assert lines passed`)});` : ''}`,
    )
    .join('\n');
  return `import assert from 'node:assert';\n${code}\n;\n${body}\n`;
}

function copyProject(root: string, into: string): number {
  let files = 0;
  const walk = (from: string, to: string) => {
    mkdirSync(to, { recursive: true });
    for (const e of readdirSync(from, { withFileTypes: true })) {
      if (SKIPPED.has(e.name)) continue;
      const src = join(from, e.name);
      const dst = join(to, e.name);
      if (e.isDirectory() && LINKED.has(e.name)) symlinkSync(src, dst, 'junction');
      else if (e.isDirectory()) walk(src, dst);
      else if (e.isFile() || e.isSymbolicLink()) {
        if (++files > MAX_COPY_FILES) throw new CopyTooLarge();
        cpSync(src, dst, { verbatimSymlinks: true });
      }
    }
  };
  walk(root, into);
  return files;
}

class CopyTooLarge extends Error {}

function trimOutput(s: string, chars: number): string {
  if (s.length <= chars) return s;
  const head = Math.floor(chars / 3);
  return `${s.slice(0, head)}\n[... ${s.length - chars} characters cut ...]\n${s.slice(s.length - (chars - head))}`;
}

function shorten(s: string, max = 600): string {
  const t = s.trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** The first failure a check's output names: our harness's marker, a doctest report, a test runner's line. */
export function firstFailureIn(output: string, kind: Check['kind']): string | undefined {
  const marker = /^FIRST-FAILURE: (.*)$/m.exec(output);
  if (marker) return shorten(marker[1]!);
  if (kind === 'doctest') {
    const m = /Failed example:\n([\s\S]*?)(?:\n\*{10,}|\n\d+ of \d+ examples passed|$)/.exec(output);
    if (m) return shorten(m[1]!.split('\n').map((l) => l.trim()).filter(Boolean).join(' | '));
  }
  const lines = output.split('\n').map((l) => l.trimEnd());
  const pytest = lines.find((l) => /^E\s+\S/.test(l));
  if (pytest) return shorten(pytest.replace(/^E\s+/, ''));
  // A Python traceback names the failure on its last line.
  if (lines.some((l) => l.startsWith('Traceback (most recent call last)'))) {
    const raised = lines.filter((l) => /^[\w.]*(Error|Exception|Exit|Interrupt)\b/.test(l)).pop();
    if (raised) return shorten(raised);
  }
  const hit = lines.find((l) => /^E\s+\S|AssertionError|^FAILED\b|^\s*(✖|×|not ok)\b|\bFAIL\b|^\s*Error:|Traceback|expected .* (to|but)/i.test(l) && l.trim() !== '');
  if (hit) return shorten(hit);
  const last = lines.filter((l) => l.trim() !== '').pop();
  return last ? shorten(last) : undefined;
}

function compareOutput(got: string, expected: string): boolean {
  const norm = (s: string) => s.replace(/\r\n?/g, '\n').split('\n').map((l) => l.trimEnd()).join('\n').trim();
  return norm(got) === norm(expected);
}

interface Prepared {
  argv: string[];
  dir: string;
  stdin?: string;
  env?: Record<string, string>;
  watch: string[];
}

function candidateFileName(language: CheckLanguage): string {
  return language === 'python' ? 'candidate.py' : language === 'typescript' ? 'candidate.mts' : 'candidate.mjs';
}

function prepare(check: Check, code: string, placement: Placement, tmp: string): Prepared | { errored: string } {
  const placed = placeCandidate(placement, code);
  const fileDir = placement.file ? dirname(resolve(placement.file.path)) : undefined;
  const watch = [placement.root, fileDir].filter((d): d is string => d !== undefined);
  if (check.kind === 'command') {
    const root = placement.root ?? fileDir;
    if (!root) return { errored: 'a test command needs a project folder to run in (open a folder, or pass --file)' };
    const dir = join(tmp, 'project');
    try {
      copyProject(root, dir);
    } catch (e) {
      if (e instanceof CopyTooLarge) return { errored: `the project has more than ${MAX_COPY_FILES} files to copy; configure the command for a smaller folder` };
      return { errored: `the project could not be copied: ${(e as Error).message}` };
    }
    if (placement.file) {
      const rel = relative(root, resolve(placement.file.path));
      if (rel.startsWith('..') || isAbsolute(rel)) return { errored: `the file ${placement.file.path} is not inside the folder the command runs in (${root})` };
      const target = join(dir, rel);
      // A write through a linked folder would reach the user's tree.
      if (rel.split(/[\\/]/).some((part) => LINKED.has(part))) return { errored: `the file ${rel} is inside a linked folder (${[...LINKED].join(', ')}); checks do not write there` };
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, placed);
    }
    const argv = process.platform === 'win32' ? ['cmd', '/d', '/s', '/c', check.command] : ['sh', '-c', check.command];
    return { argv, dir, watch };
  }
  const dir = join(tmp, 'check');
  mkdirSync(dir);
  const language = check.language;
  if (language === 'typescript') {
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    if (major < 22 || (major === 22 && minor < 6)) return { errored: `TypeScript candidates are checked with Node's type stripping (Node 22.6 or later); this Node is ${process.version}` };
  }
  // Sibling modules of the user's file stay importable (read-only) from the candidate's copy.
  const pythonPath: Record<string, string> = fileDir ? { PYTHONPATH: fileDir, PYTHONDONTWRITEBYTECODE: '1' } : { PYTHONDONTWRITEBYTECODE: '1' };
  const js = node();
  const jsArgs = language === 'typescript' ? ['--experimental-strip-types', '--no-warnings'] : [];
  switch (check.kind) {
    case 'doctest':
      writeFileSync(join(dir, 'candidate.py'), placed);
      writeFileSync(join(dir, 'doctests.txt'), check.source);
      writeFileSync(join(dir, 'run_doctests.py'), DOCTEST_HARNESS);
      return { argv: [python(), 'run_doctests.py'], dir, env: pythonPath, watch };
    case 'assert':
      if (language === 'python') {
        writeFileSync(join(dir, 'candidate.py'), placed);
        writeFileSync(join(dir, 'asserts.json'), JSON.stringify(check.lines));
        writeFileSync(join(dir, 'run_asserts.py'), ASSERT_HARNESS);
        return { argv: [python(), 'run_asserts.py'], dir, env: pythonPath, watch };
      }
      writeFileSync(join(dir, language === 'typescript' ? 'check.mts' : 'check.mjs'), jsAssertHarness(placed, check.lines));
      return { argv: [js.argv0, ...jsArgs, language === 'typescript' ? 'check.mts' : 'check.mjs'], dir, env: js.env, watch };
    case 'example': {
      const name = candidateFileName(language);
      writeFileSync(join(dir, name), placed);
      const argv = language === 'python' ? [python(), name] : [js.argv0, ...jsArgs, name];
      return { argv, dir, stdin: check.input.endsWith('\n') ? check.input : `${check.input}\n`, env: language === 'python' ? pythonPath : js.env, watch };
    }
  }
}

function judge(check: Check, r: SandboxResult, maxOutput: number): { status: CheckStatus; firstFailure?: string } {
  const output = `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`;
  if (r.spawnError) return { status: 'errored', firstFailure: `the check could not start: ${r.spawnError}` };
  if (r.stopped === 'timeout') return { status: 'timed-out', firstFailure: 'the check ran past its time limit and was stopped' };
  if (r.stopped === 'cancelled') return { status: 'errored', firstFailure: 'the check was cancelled' };
  if (r.stopped === 'output') return { status: 'failed', firstFailure: `the check printed more than ${Math.round(maxOutput / 1024)} KiB and was stopped` };
  if (r.changedOutside.length > 0) return { status: 'failed', firstFailure: `the check wrote outside its temporary folder: ${r.changedOutside.slice(0, 3).join(', ')}${r.changedOutside.length > 3 ? ', ...' : ''}` };
  if (check.kind === 'example') {
    if (r.exitCode === 0 && compareOutput(r.stdout, check.expected)) return { status: 'passed' };
    const got = r.exitCode === 0 ? r.stdout : output;
    return { status: 'failed', firstFailure: shorten(`for input ${JSON.stringify(check.input)} expected ${JSON.stringify(check.expected.trim())}, got ${JSON.stringify(got.trim().slice(0, 300))}${r.exitCode !== 0 ? ` (exit ${r.exitCode ?? r.signal})` : ''}`) };
  }
  if (r.exitCode === 0) return { status: 'passed' };
  // A shell that cannot find or run the command: the check itself is broken, not the candidate.
  if (check.kind === 'command' && (r.exitCode === 126 || r.exitCode === 127)) return { status: 'errored', firstFailure: firstFailureIn(output, check.kind) ?? `the command could not run (exit ${r.exitCode})` };
  const failure = firstFailureIn(output, check.kind) ?? `exit ${r.exitCode ?? r.signal}`;
  return { status: 'failed', firstFailure: r.signal === 'SIGKILL' || r.signal === 'SIGSEGV' ? `${failure} (killed by ${r.signal}; the memory limit may have been reached)` : failure };
}

/** Runs `check` on the candidate `code`; never throws for a failing or broken check. */
export async function runCheck(check: Check, code: string, placement: Placement, options: RunOptions = {}): Promise<CheckOutcome> {
  const started = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), 'recursivemas-check-'));
  const maxOutput = options.limits?.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const outputChars = options.outputChars ?? 4000;
  try {
    const prepared = prepare(check, code, placement, tmp);
    if ('errored' in prepared) return { check: check.id, status: 'errored', ms: performance.now() - started, firstFailure: prepared.errored, output: '' };
    const r = await runSandboxed({
      argv: prepared.argv,
      dir: prepared.dir,
      stdin: prepared.stdin,
      env: prepared.env,
      watch: prepared.watch,
      limits: { timeoutMs: options.limits?.timeoutMs ?? DEFAULT_TIMEOUT_MS, memoryBytes: options.limits?.memoryBytes, maxOutputBytes: maxOutput },
      signal: options.signal,
      isolation: options.isolation,
    });
    const verdict = judge(check, r, maxOutput);
    const output = trimOutput(`${r.stdout}${r.stderr ? `${r.stdout ? '\n' : ''}${r.stderr}` : ''}`.replace(/^FIRST-FAILURE: /m, ''), outputChars);
    return { check: check.id, status: verdict.status, ms: performance.now() - started, ...(verdict.firstFailure ? { firstFailure: verdict.firstFailure } : {}), output };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

