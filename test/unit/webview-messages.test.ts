// What crosses the webview boundary: message validation both ways, the panel's view model fed
// with a solve's message sequence, the event thinning before the webview, the highlighter that
// turns code into text tokens, the CSP of the page, and the errors the panel offers fixes for.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SolveEvent } from '../../src/protocol/events';
import { checkHostMessage, checkWebviewMessage, type HostMessage } from '../../src/protocol/webview';
import { EventCoalescer } from '../../src/extension/coalesce';
import { panelErrorOf } from '../../src/extension/errors';
import { contentSecurityPolicy, panelHtml } from '../../src/extension/panel-html';
import { tokenize } from '../../webview/highlight';
import { emptyModel, finalCode, reduce, restoreModel, streamingCode, type ViewModel } from '../../webview/model';
import { SAMPLE_ANSWER, sampleMessages, sampleSession } from '../e2e/support/sample';

const fold = (msgs: HostMessage[], start: ViewModel = emptyModel()) => msgs.reduce((m, msg) => reduce(m, msg, 1000), start);

describe('webview -> host validation', () => {
  test('accepts the four message kinds', () => {
    for (const m of [
      { type: 'ready', solveId: null, lastSeq: 0 },
      { type: 'ready', solveId: 's1', lastSeq: 12 },
      { type: 'action', action: 'insertAtCursor', id: 's1' },
      { type: 'action', action: 'cancel', id: 's1' },
      { type: 'fix', fix: 'download-models' },
      { type: 'error', message: 'boom' },
    ]) {
      assert.deepEqual(checkWebviewMessage(m), { ok: true, value: m });
    }
  });

  test('rejects unknown kinds, missing or wrong fields, and non-objects, saying why', () => {
    const bad: [unknown, RegExp][] = [
      [null, /^invalid message:\n {2}message: expected an object, got null$/],
      [[{ type: 'ready' }], /message: expected an object, got an array of 1/],
      [{ type: 'eval', code: 'x' }, /message\.type: expected one of ready, action, fix, rerun, error, got "eval"/],
      [{ type: 'action', action: 'deleteFile', id: 's1' }, /message\.action: expected one of "insertAtCursor", .*got "deleteFile"/],
      [{ type: 'action', action: 'copy' }, /message\.id: is required/],
      [{ type: 'action', action: 'copy', id: '' }, /message\.id: must not be empty/],
      [{ type: 'action', action: 'copy', id: 's1', path: '/etc' }, /message\.path: is not a known field/],
      [{ type: 'ready', solveId: 3, lastSeq: 0 }, /message\.solveId: expected a string, got 3/],
      [{ type: 'ready', solveId: null, lastSeq: -1 }, /message\.lastSeq: expected a whole number of at least 0, got -1/],
      [{ type: 'fix', fix: 'rm -rf' }, /message\.fix: expected one of "download-models"/],
      [{ type: 'error', message: 'x'.repeat(30_000) }, /message\.message: must have at most 20000 characters/],
      [{ type: 'constructor' }, /message\.type: expected one of/],
    ];
    for (const [m, why] of bad) {
      const r = checkWebviewMessage(m);
      assert.equal(r.ok, false, JSON.stringify(m)?.slice(0, 80));
      assert.match((r as { error: string }).error, why);
    }
  });
});

describe('host -> webview validation', () => {
  test('every message of a recorded solve sequence passes', () => {
    for (const m of sampleMessages({ outcome: 'failed', cut: 30 })) assert.equal(checkHostMessage(m).ok, true, JSON.stringify(m).slice(0, 120));
    for (const m of sampleMessages()) assert.equal(checkHostMessage(m).ok, true, JSON.stringify(m).slice(0, 120));
  });

  test('events are checked with the protocol validator; bad ones are refused', () => {
    const base = { type: 'event', id: 's1', seq: 1 };
    assert.equal(checkHostMessage({ ...base, event: { type: 'round-start', round: 1, rounds: 3 } }).ok, true);
    assert.equal(checkHostMessage({ ...base, event: { type: 'round-start', round: 'one', rounds: 3 } }).ok, false);
    assert.equal(checkHostMessage({ ...base, event: { type: 'launch-missiles' } }).ok, false);
    assert.equal(checkHostMessage({ ...base, seq: 0, event: { type: 'round-start', round: 1, rounds: 3 } }).ok, false);
    assert.equal(checkHostMessage({ type: 'end', id: 's1', outcome: 'done', error: { message: 'x', fixes: ['format-disk'] } }).ok, false);
    assert.equal(checkHostMessage({ type: 'session', session: { ...sampleSession(), device: 'tpu' } }).ok, false);
  });
});

describe('panel view model', () => {
  test('a whole solve folds into rounds, runs, hand-offs, code and metrics', () => {
    const m = fold(sampleMessages());
    assert.equal(m.phase, 'done');
    assert.equal(m.rounds.length, 3);
    assert.deepEqual(
      m.rounds.map((r) => r.runs.map((x) => `${x.agent}:${x.action}:${x.status}:${x.step}/${x.steps}`)),
      [
        ['planner:latent:done:16/16', 'critic:latent:done:16/16', 'solver:latent:done:16/16'],
        ['planner:latent:done:16/16', 'critic:latent:done:16/16', 'solver:latent:done:16/16'],
        ['planner:latent:done:16/16', 'critic:latent:done:16/16', 'solver:decode:done:0/0'],
      ],
    );
    assert.equal(m.rounds.flatMap((r) => r.handoffs).length, 8);
    assert.equal(m.output, SAMPLE_ANSWER);
    assert.equal(finalCode(m), /```python\n([\s\S]*?)\n```/.exec(SAMPLE_ANSWER)![1]);
    assert.equal(m.metrics?.latentSteps, 128);
    assert.equal(m.team?.device, 'cpu');
    assert.match(m.announcements.at(-1)!, /code is ready/);
  });

  test('a replay of messages it already has changes nothing, and the saved model restores', () => {
    const msgs = sampleMessages();
    const once = fold(msgs);
    const twice = fold(msgs, once);
    assert.deepEqual(twice, once);
    assert.deepEqual(restoreModel(JSON.parse(JSON.stringify(once))), once);
    assert.deepEqual(restoreModel({ version: 99 }), emptyModel());
    assert.deepEqual(restoreModel('junk'), emptyModel());
  });

  test('events of another solve, or before any session, are ignored', () => {
    const ev: HostMessage = { type: 'event', id: 'other', seq: 1, event: { type: 'round-start', round: 1, rounds: 3 } };
    assert.equal(reduce(emptyModel(), ev, 0).rounds.length, 0);
    const m = fold(sampleMessages({ cut: 5 }));
    assert.equal(reduce(m, ev, 0), m);
  });

  test('a failed solve keeps its error and marks the agent that was working as stopped', () => {
    const m = fold(sampleMessages({ cut: 30, outcome: 'failed' }));
    assert.equal(m.phase, 'failed');
    assert.deepEqual(m.error?.fixes, ['retry', 'show-logs', 'switch-device']);
    const runs = m.rounds.flatMap((r) => r.runs);
    assert.equal(runs.filter((r) => r.status === 'stopped').length, 1);
    assert.equal(runs.filter((r) => r.status === 'running').length, 0);
  });

  test('a new session starts from a clean model but keeps the runtime state', () => {
    const first = fold(sampleMessages());
    const next = reduce(first, { type: 'session', session: sampleSession('solve-2') }, 0);
    assert.equal(next.rounds.length, 0);
    assert.equal(next.phase, 'loading');
    assert.equal(next.runtime.state, first.runtime.state);
  });

  test('a retry of the final answer clears the streamed text', () => {
    const m = fold(sampleMessages({ cut: 5 }));
    const withText = reduce(m, { type: 'event', id: 'solve-1', seq: 6, event: { type: 'token', round: 3, agent: 'solver', text: 'abc' } }, 0);
    assert.equal(withText.output, 'abc');
    const retried = reduce(withText, { type: 'event', id: 'solve-1', seq: 7, event: { type: 'retry', reason: 'no code block' } }, 0);
    assert.equal(retried.output, '');
    assert.deepEqual(retried.retries, ['no code block']);
  });

  test('streaming code shows what follows an opening fence', () => {
    assert.deepEqual(streamingCode('Plan first'), { code: 'Plan first', fenced: false, closed: false });
    assert.deepEqual(streamingCode('Sure:\n```py\ndef f'), { code: 'def f', fenced: true, closed: false });
    assert.deepEqual(streamingCode('```\na\nb\n```\nmore'), { code: 'a\nb', fenced: true, closed: true });
  });
});

describe('event thinning before the webview', () => {
  test('latent steps collapse to the newest, tokens join, the order of other events is kept', async () => {
    const out: SolveEvent[] = [];
    const c = new EventCoalescer((e) => out.push(e), 10_000);
    c.push({ type: 'agent-start', round: 1, agent: 'a', role: 'planner', action: 'latent' });
    for (let s = 1; s <= 15; s++) c.push({ type: 'latent-step', round: 1, agent: 'a', step: s, steps: 16 });
    c.push({ type: 'latent-step', round: 1, agent: 'a', step: 16, steps: 16 });
    c.push({ type: 'agent-end', round: 1, agent: 'a', ms: 5, promptTokens: 1, latentSteps: 16, textTokens: 0 });
    c.push({ type: 'token', round: 3, agent: 's', text: 'de' });
    c.push({ type: 'token', round: 3, agent: 's', text: 'f ' });
    c.push({ type: 'token', round: 3, agent: 's', text: 'f()' });
    c.push({ type: 'answer', text: 'def f()', code: null, language: 'python' });
    assert.deepEqual(
      out.map((e) => (e.type === 'latent-step' ? `step ${e.step}` : e.type === 'token' ? `token ${e.text}` : e.type)),
      ['agent-start', 'step 16', 'agent-end', 'token def f()', 'answer'],
    );
  });

  test('pending events go out after the interval without further input', async () => {
    const out: SolveEvent[] = [];
    const c = new EventCoalescer((e) => out.push(e), 5);
    c.push({ type: 'latent-step', round: 1, agent: 'a', step: 3, steps: 16 });
    assert.equal(out.length, 0);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(out.length, 1);
  });
});

describe('code highlighting', () => {
  test('tokens concatenate back to exactly the input, for any input', () => {
    const samples = [
      SAMPLE_ANSWER,
      'const s = `a ${b} c`; // note\n/* block */ let n = 0x1F + 3.5e-2;',
      '"unterminated\nnext line',
      '<img src=x onerror=alert(1)>',
      '\u0000\u2028\ud83d\ude00 weird � bytes',
      'SELECT * FROM t WHERE a = \'x\' -- c',
    ];
    let seed = 7;
    for (let i = 0; i < 50; i++) {
      let s = '';
      for (let j = 0; j < 80; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        s += String.fromCharCode(32 + (seed % 95));
      }
      samples.push(s);
    }
    for (const lang of ['python', 'typescript', 'c', 'go', 'rust', 'sql', 'unknown-lang']) {
      for (const code of samples) assert.equal(tokenize(code, lang).map((t) => t.text).join(''), code);
    }
  });

  test('keywords, strings, comments, numbers and functions are told apart', () => {
    const kinds = (code: string, lang: string) => tokenize(code, lang).filter((t) => t.kind !== 'plain' && t.kind !== 'operator').map((t) => `${t.kind}:${t.text}`);
    assert.deepEqual(kinds('def f(x):\n    return "hi" # done', 'python'), ['keyword:def', 'function:f', 'keyword:return', 'string:"hi"', 'comment:# done']);
    assert.deepEqual(kinds('const n = 42; // x', 'typescript'), ['keyword:const', 'number:42', 'comment:// x']);
    assert.deepEqual(kinds('x = None if y else True', 'python'), ['constant:None', 'keyword:if', 'keyword:else', 'constant:True']);
  });
});

describe('panel page', () => {
  test('the CSP allows nothing by default and scripts only with the nonce', () => {
    const csp = contentSecurityPolicy('https://res.example', 'abcdefghijklmnopqrstuv');
    assert.match(csp, /^default-src 'none';/);
    assert.match(csp, /script-src 'nonce-abcdefghijklmnopqrstuv'$/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    const html = panelHtml({ cspSource: 'https://res.example', scriptUri: 'https://res.example/webview.js', styleUri: 'https://res.example/webview.css', nonce: 'abcdefghijklmnopqrstuv' });
    assert.match(html, /<script nonce="abcdefghijklmnopqrstuv" src="https:\/\/res\.example\/webview\.js"><\/script>/);
    assert.equal((html.match(/<script/g) ?? []).length, 1);
    assert.throws(() => panelHtml({ cspSource: 'x', scriptUri: 'y', styleUri: 'z', nonce: 'short' }));
  });

  test('every load gets a fresh nonce', () => {
    const a = panelHtml({ cspSource: 'x', scriptUri: 'y', styleUri: 'z' });
    const b = panelHtml({ cspSource: 'x', scriptUri: 'y', styleUri: 'z' });
    const nonce = (h: string) => /nonce="([^"]+)"/.exec(h)![1];
    assert.notEqual(nonce(a), nonce(b));
  });
});

describe('errors shown in the panel', () => {
  const err = (props: Record<string, unknown>) => Object.assign(new Error(String(props.message)), props);

  test('a missing model offers the download first', () => {
    const e = panelErrorOf(err({ name: 'UserError', message: 'Model X is not downloaded.', code: 'model-missing', action: 'Download it.' }), 'auto');
    assert.deepEqual(e, { message: 'Model X is not downloaded.', action: 'Download it.', fixes: ['download-models', 'use-demo-team', 'models-settings', 'select-team'] });
  });

  test('a crashed runtime offers retry and logs, and a device switch only off the CPU', () => {
    const crash = err({ name: 'RuntimeError', reason: 'crashed', message: 'The RecursiveMAS runtime was killed by SIGKILL while running solve.\nIts last output:\n  line 1' });
    const onCpu = panelErrorOf(crash, 'cpu');
    assert.equal(onCpu.message, 'The RecursiveMAS runtime was killed by SIGKILL while running solve.');
    assert.deepEqual(onCpu.fixes, ['retry', 'show-logs']);
    assert.deepEqual(panelErrorOf(crash, 'auto').fixes, ['retry', 'show-logs', 'switch-device']);
  });

  test('an unexpected error is still explained', () => {
    const e = panelErrorOf(new TypeError('x is undefined'), 'cpu');
    assert.equal(e.message, 'x is undefined');
    assert.ok(e.fixes.includes('show-logs'));
  });
});
