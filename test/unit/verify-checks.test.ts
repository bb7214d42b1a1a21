// Finding checks in tasks and selections, and running them on real candidates in the sandbox:
// known-good and known-bad Python and JavaScript, a hang, a flood of output, a network attempt
// against a port opened outside the sandbox, and writes outside the temporary folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findChecks, doctestBlocks, examplesIn, type Check } from '../../src/engine/verify/checks';
import { runCheck, placeCandidate } from '../../src/engine/verify/run';
import { isolationAvailable } from '../../src/engine/verify/sandbox';

const PY_TASK = `Write a function add(a, b).

    >>> add(1, 2)
    3
    >>> add(-1, 1)
    0
`;
const GOOD_PY = 'def add(a, b):\n    return a + b\n';
const BAD_PY = 'def add(a, b):\n    return a - b\n';

function only(checks: Check[], kind: Check['kind']): Check {
  const c = checks.find((x) => x.kind === kind);
  assert.ok(c, `expected a ${kind} check in ${JSON.stringify(checks.map((x) => x.kind))}`);
  return c;
}

test('finding checks: command first, then doctests and asserts, then examples', () => {
  assert.deepEqual(findChecks({ task: PY_TASK, language: 'python', command: 'pytest -q', findChecks: true }).map((c) => c.kind), ['command']);
  const py = findChecks({ task: `${PY_TASK}\nassert add(2, 2) == 4\n`, language: 'python', findChecks: true });
  assert.deepEqual(py.map((c) => c.kind), ['doctest', 'assert']);
  assert.equal(py[0]!.label, '2 doctest examples');
  assert.equal((py[0] as Extract<Check, { kind: 'doctest' }>).source, '>>> add(1, 2)\n3\n>>> add(-1, 1)\n0');
  assert.deepEqual((py[1] as Extract<Check, { kind: 'assert' }>).lines, ['assert add(2, 2) == 4']);
  const js = findChecks({ task: 'Write sum(xs).', selection: '// assert.equal(sum([1, 2]), 3)\nconsole.assert(sum([]) === 0)', language: 'javascript', findChecks: true });
  assert.deepEqual((only(js, 'assert') as Extract<Check, { kind: 'assert' }>).lines, ['assert.equal(sum([1, 2]), 3);', 'console.assert(sum([]) === 0);']);
  const io = findChecks({ task: 'Read two numbers from stdin and print their sum.\n\nInput:\n1 2\nOutput:\n3\n\nSample input 2:\n```\n5 5\n```\nSample output 2:\n```\n10\n```', language: 'python', findChecks: true });
  assert.deepEqual(io.map((c) => [c.kind, (c as Extract<Check, { kind: 'example' }>).input, (c as Extract<Check, { kind: 'example' }>).expected]), [['example', '1 2', '3'], ['example', '5 5', '10']]);
  assert.deepEqual(findChecks({ task: PY_TASK, language: 'python', findChecks: false }), []);
  assert.deepEqual(findChecks({ task: PY_TASK, language: 'rust', findChecks: true }), []);
  assert.deepEqual(doctestBlocks('    """\n    >>> f(\n    ... 1)\n    2\n    """'), ['>>> f(\n... 1)\n2']);
  assert.deepEqual(examplesIn('no examples here'), []);
});

test('placing a candidate replaces the range in a copy of the file text', () => {
  const text = 'import math\n\n# TODO\n\nprint(1)\n';
  const start = text.indexOf('# TODO');
  assert.equal(placeCandidate({ file: { path: '/x.py', text, start, end: start + 6 } }, 'def f():\n    pass'), 'import math\n\ndef f():\n    pass\n\nprint(1)\n');
  assert.equal(placeCandidate({}, 'x = 1'), 'x = 1');
});

test('Python doctests and asserts: a good candidate passes, a bad one fails with the first failing example', async () => {
  const checks = findChecks({ task: `${PY_TASK}\nassert add(2, 2) == 4\n`, language: 'python', findChecks: true });
  for (const check of checks) {
    const good = await runCheck(check, GOOD_PY, {});
    assert.equal(good.status, 'passed', `${check.kind}: ${good.output}`);
    const bad = await runCheck(check, BAD_PY, {});
    assert.equal(bad.status, 'failed', `${check.kind}: ${bad.output}`);
    if (check.kind === 'doctest') assert.match(bad.firstFailure ?? '', /add\(1, 2\) \| Expected: \| 3 \| Got: \| -1/);
    else assert.equal(bad.firstFailure, 'assert add(2, 2) == 4');
  }
  const broken = await runCheck(checks[0]!, 'def add(a, b) return a', {});
  assert.equal(broken.status, 'failed');
  assert.match(broken.firstFailure ?? '', /does not load: SyntaxError/);
});

test('JavaScript asserts and a stdin/stdout example: good passes, bad fails', async () => {
  const [asserts] = findChecks({ task: 'Write sum(xs).\nassert.equal(sum([1, 2, 3]), 6)\nassert.equal(sum([]), 0)', language: 'javascript', findChecks: true });
  const good = await runCheck(asserts!, 'function sum(xs) { return xs.reduce((a, b) => a + b, 0); }', {});
  assert.equal(good.status, 'passed', good.output);
  const bad = await runCheck(asserts!, 'function sum(xs) { return xs.length; }', {});
  assert.equal(bad.status, 'failed');
  assert.match(bad.firstFailure ?? '', /^assert\.equal\(sum\(\[1, 2, 3\]\), 6\); \(3 == 6\)/);

  const [example] = findChecks({ task: 'Read two numbers, print the sum.\nInput: 2 3\nOutput: 5', language: 'javascript', findChecks: true });
  const reads = "const [a, b] = require('node:fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\n";
  const ok = await runCheck(example!, `import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n${reads}console.log(a + b);`, {});
  assert.equal(ok.status, 'passed', ok.output);
  const wrong = await runCheck(example!, `import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n${reads}console.log(a * b);`, {});
  assert.equal(wrong.status, 'failed');
  assert.equal(wrong.firstFailure, 'for input "2 3" expected "5", got "6"');
});

test('a check that hangs is stopped at its timeout', async () => {
  const check: Check = { id: 'assert', kind: 'assert', language: 'python', label: '1 assert line', lines: ['assert add(1, 1) == 2'] };
  const started = performance.now();
  const r = await runCheck(check, 'import time\ndef add(a, b):\n    while True:\n        time.sleep(0.05)\n', {}, { limits: { timeoutMs: 1500 } });
  const ms = performance.now() - started;
  assert.equal(r.status, 'timed-out');
  assert.ok(ms < 10_000, `stopped after ${ms.toFixed(0)} ms`);
});

test('a check that prints megabytes is stopped at the output limit', async () => {
  const check: Check = { id: 'assert', kind: 'assert', language: 'javascript', label: '1 assert line', lines: ['assert.equal(flood(), 1);'] };
  const r = await runCheck(check, "function flood() { const line = 'x'.repeat(1023) + '\\n'; for (let i = 0; i < 20000; i++) process.stdout.write(line); return 1; }", {}, { limits: { maxOutputBytes: 256 * 1024, timeoutMs: 20_000 } });
  assert.equal(r.status, 'failed');
  assert.equal(r.firstFailure, 'the check printed more than 256 KiB and was stopped');
  assert.ok(r.output.length <= 4100, `kept ${r.output.length} characters`);
});

test('a check that tries the network: refused where isolation exists', async (t) => {
  const server: Server = createServer((socket) => socket.end('hello from outside\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const check: Check = { id: 'assert', kind: 'assert', language: 'python', label: '1 assert line', lines: ['assert fetch() == "hello from outside"'] };
  const code = `import socket\ndef fetch():\n    s = socket.create_connection(("127.0.0.1", ${port}), timeout=3)\n    return s.makefile().readline().strip()\n`;
  const isolation = isolationAvailable();
  const r = await runCheck(check, code, {});
  if (isolation.network) {
    assert.equal(r.status, 'failed', r.output);
    assert.match(r.firstFailure ?? '', /raised (ConnectionRefusedError|OSError)/);
  } else {
    t.diagnostic(`no network isolation here: ${isolation.note}`);
    assert.equal(r.status, 'passed');
  }
  // The same check outside the sandbox reaches the port: the refusal above is the sandbox's doing.
  const open = await runCheck(check, code, {}, { isolation: 'none' });
  assert.equal(open.status, 'passed', open.output);
});

test('a check that writes outside its temporary folder: refused, and detected without isolation', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'recursivemas-project-'));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  const file = join(project, 'lib.py');
  const text = 'def add(a, b):\n    return a + b\n';
  writeFileSync(file, text);
  mkdirSync(join(project, 'data'));
  const target = join(project, 'data', 'written.txt');
  const check: Check = { id: 'assert', kind: 'assert', language: 'python', label: '1 assert line', lines: ['assert add(1, 2) == 3'] };
  const code = `def add(a, b):\n    open(${JSON.stringify(target)}, "w").write("x")\n    return a + b\n`;
  const placement = { file: { path: file, text, start: 0, end: text.length } };
  const isolation = isolationAvailable();
  if (isolation.writes === 'refused') {
    const r = await runCheck(check, code, placement);
    assert.equal(r.status, 'failed');
    assert.match(r.firstFailure ?? '', /raised OSError: \[Errno 30\] Read-only file system/);
    assert.equal(existsSync(target), false);
  } else t.diagnostic(`writes cannot be refused here: ${isolation.note}`);
  const detected = await runCheck(check, code, placement, { isolation: 'none' });
  assert.equal(detected.status, 'failed');
  assert.equal(detected.firstFailure, `the check wrote outside its temporary folder: ${target}`);
  assert.equal(readFileSync(file, 'utf8'), text, "the user's file is never written");
});

test('a configured command runs in a copy of the project with the candidate swapped in', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'recursivemas-project-'));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  const file = join(project, 'calc.py');
  const text = 'def add(a, b):\n    raise NotImplementedError\n';
  writeFileSync(file, text);
  writeFileSync(join(project, 'test_calc.py'), 'from calc import add\nassert add(2, 3) == 5, "add(2, 3) should be 5"\nprint("tests passed")\n');
  const [check] = findChecks({ task: 'implement add', language: 'python', command: 'python3 test_calc.py', findChecks: true });
  const placement = { root: project, file: { path: file, text, start: 0, end: text.length } };
  const good = await runCheck(check!, GOOD_PY, placement);
  assert.equal(good.status, 'passed', good.output);
  assert.match(good.output, /tests passed/);
  const bad = await runCheck(check!, BAD_PY, placement);
  assert.equal(bad.status, 'failed');
  assert.equal(bad.firstFailure, 'AssertionError: add(2, 3) should be 5');
  const missing = await runCheck({ id: 'command', kind: 'command', label: 'no-such-tool-here', command: 'no-such-tool-here --run' }, GOOD_PY, placement);
  assert.equal(missing.status, 'errored');
  assert.equal(readFileSync(file, 'utf8'), text, "the user's file is never written");
});
