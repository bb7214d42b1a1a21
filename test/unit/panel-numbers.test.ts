// One source for every number the panel shows: the engine's metrics stages give each run its time
// (the code retry included, as its own row with its tokens), and lines are counted one way for the
// panel and for the editor's messages.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SolveEvent, StageTiming } from '../../src/protocol/events';
import { countLines, linesLabel, type HostMessage } from '../../src/protocol/webview';
import { linesLabel as editorLinesLabel, reindent } from '../../src/extension/insertion';
import { emptyModel, reduce } from '../../webview/model';
import { sampleEvents, sampleSession } from '../e2e/support/sample';

const fold = (msgs: HostMessage[]) => msgs.reduce((m, msg) => reduce(m, msg, 1000), emptyModel());

/** The sample solve with a code retry after the final decode, as the engine emits it. */
function withRetry(): { msgs: HostMessage[]; stages: StageTiming[] } {
  const events = sampleEvents(2, 4, 'no fence here');
  const answerAt = events.findIndex((e) => e.type === 'answer');
  const retry: SolveEvent[] = [
    { type: 'retry', reason: 'The final answer had no fenced code block; asking once more for only the code.' },
    { type: 'token', round: 2, agent: 'solver', text: '```python\nx = 1\n```' },
  ];
  events.splice(answerAt, 0, ...retry);
  const metrics = events.find((e) => e.type === 'metrics') as Extract<SolveEvent, { type: 'metrics' }>;
  metrics.metrics.stages.push({ round: 2, agent: 'solver', kind: 'retry', ms: 777, promptMs: 50, steps: 9 });
  // The engine's figures differ from the agent-end ones (they include what agent-end does not): the panel must show the engine's.
  for (const st of metrics.metrics.stages) if (st.kind === 'latent') st.ms += 1000;
  const msgs: HostMessage[] = [{ type: 'session', session: sampleSession('s1', 2, 4) }];
  events.forEach((event, i) => msgs.push({ type: 'event', id: 's1', seq: i + 1, event }));
  msgs.push({ type: 'end', id: 's1', outcome: 'done' });
  return { msgs, stages: metrics.metrics.stages };
}

describe('numbers in the panel', () => {
  test('the code retry is a row of its own after the decode, with the time and tokens of its stage', () => {
    const { msgs } = withRetry();
    const m = fold(msgs);
    const last = m.rounds[m.rounds.length - 1]!;
    const kinds = last.runs.map((r) => `${r.agent}:${r.action}`);
    assert.deepEqual(kinds.slice(-2), ['solver:decode', 'solver:retry']);
    const retry = last.runs.at(-1)!;
    assert.equal(retry.status, 'done');
    assert.equal(retry.ms, 777);
    assert.equal(retry.textTokens, 9);
    // The retry's text is the answer's stream, not an agent message.
    assert.equal(m.output, '```python\nx = 1\n```');
    assert.equal(retry.text, undefined);
  });

  test('every run takes its time from the metrics stages once they arrive', () => {
    const { msgs, stages } = withRetry();
    const m = fold(msgs);
    for (const r of m.rounds) {
      for (const run of r.runs) {
        const st = stages.find((s) => s.round === r.round && s.agent === run.agent && s.kind === run.action)!;
        assert.equal(run.ms, st.ms, `round ${r.round} ${run.agent} ${run.action}`);
      }
    }
  });

  test('lines are counted as they are inserted: blank lines at the ends do not count', () => {
    assert.equal(countLines('a\nb\n'), 2);
    assert.equal(countLines('\n\na\n\nb\n\n'), 3);
    assert.equal(countLines('x'), 1);
    assert.equal(countLines(''), 0);
    assert.equal(linesLabel('x\n'), '1 line');
    assert.equal(editorLinesLabel('a\r\nb\r\n\r\n'), '2 lines');
    const code = '\n\ndef f():\n    return 1\n\n\nprint(f())\n\n';
    assert.equal(countLines(code), reindent(code, '', { insertSpaces: true, tabSize: 4 }).length, 'the count is the number of lines the editor receives');
  });
});
