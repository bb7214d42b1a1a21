// A solve's host->webview message sequence written out by hand, shaped like the runtime's stream for
// a sequential team (planner -> critic -> solver). Used only to render the panel without a runtime
// (static preview and webview unit tests); the VS Code e2e tests use the real runtime.
import type { SolveEvent, SolveMetrics, StageTiming } from '../../../src/protocol/events';
import type { HostMessage, SessionInfo } from '../../../src/protocol/webview';

export interface SampleOptions {
  id?: string;
  rounds?: number;
  steps?: number;
  /** Stop after this many events (a solve caught mid-flight). */
  cut?: number;
  answer?: string;
  outcome?: 'done' | 'failed' | 'cancelled';
}

export const SAMPLE_ANSWER = [
  'Here is the function:',
  '```python',
  'def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:',
  '    """Merge overlapping closed intervals."""',
  '    merged: list[tuple[int, int]] = []',
  '    for start, end in sorted(intervals):',
  '        if merged and start <= merged[-1][1]:',
  '            merged[-1] = (merged[-1][0], max(merged[-1][1], end))',
  '        else:',
  '            merged.append((start, end))  # a new interval',
  '    return merged',
  '```',
].join('\n');

export function sampleSession(id = 'solve-1', rounds = 3, steps = 16): SessionInfo {
  return {
    id,
    task: 'Write merge_intervals(intervals) that merges overlapping closed intervals and returns them sorted.',
    language: 'python',
    team: 'demo-sequential',
    device: 'auto',
    mode: 'latent',
    rounds,
    latentSteps: steps,
    fileName: 'src/intervals.py',
    hasSelection: true,
    defaultAction: 'insertAtCursor',
    startedAt: 1_700_000_000_000,
  };
}

export function sampleEvents(rounds = 3, steps = 16, answer = SAMPLE_ANSWER): SolveEvent[] {
  const agents = [
    { name: 'planner', role: 'planner', model: 'demo-llama-2L' },
    { name: 'critic', role: 'critic', model: 'demo-qwen2-2L' },
    { name: 'solver', role: 'solver', model: 'demo-qwen3-2L' },
  ];
  const ev: SolveEvent[] = [];
  agents.forEach((a, i) => ev.push({ type: 'team-loading', team: 'demo-sequential', model: a.model, index: i, count: agents.length }));
  ev.push({ type: 'team-loaded', team: 'demo-sequential', agents, device: 'cpu', precision: 'int4', ms: 420 });
  ev.push({ type: 'solve-start', task: 'merge intervals', language: 'python', mode: 'latent', style: 'sequential', rounds, latentSteps: steps });
  const stages: StageTiming[] = [];
  let textTokens = 0;
  for (let r = 1; r <= rounds; r++) {
    ev.push({ type: 'round-start', round: r, rounds });
    const last = r === rounds;
    const active = last ? agents : agents;
    let roundMs = 0;
    for (const [i, a] of active.entries()) {
      const decode = last && a.name === 'solver';
      ev.push({ type: 'agent-start', round: r, agent: a.name, role: a.role, action: decode ? 'decode' : 'latent' });
      if (decode) {
        const pieces = answer.match(/[\s\S]{1,7}/g) ?? [];
        for (const t of pieces) ev.push({ type: 'token', round: r, agent: a.name, text: t });
        textTokens = pieces.length;
        const ms = 300 + pieces.length * 4;
        ev.push({ type: 'agent-end', round: r, agent: a.name, ms, promptTokens: 96, latentSteps: 0, textTokens: pieces.length });
        stages.push({ round: r, agent: a.name, kind: 'decode', ms });
        roundMs += ms;
      } else {
        for (let s = 1; s <= steps; s++) ev.push({ type: 'latent-step', round: r, agent: a.name, step: s, steps });
        const ms = 90 + 40 * i + 10 * r;
        ev.push({ type: 'agent-end', round: r, agent: a.name, ms, promptTokens: 80 + 8 * i, latentSteps: steps, textTokens: 0 });
        stages.push({ round: r, agent: a.name, kind: 'latent', ms });
        roundMs += ms;
        const to = agents[(i + 1) % agents.length]!.name;
        if (!(last && a.name === 'solver')) ev.push({ type: 'handoff', round: r, from: a.name, to, vectors: steps, meanNorm: 1.02 + 0.1 * i, maxNorm: 1.4 + 0.1 * i });
      }
    }
    ev.push({ type: 'round-end', round: r, ms: roundMs });
  }
  const code = /```[^\n]*\n([\s\S]*?)```/.exec(answer)?.[1]?.replace(/\n$/, '') ?? null;
  ev.push({ type: 'answer', text: answer, code, language: 'python' });
  const metrics: SolveMetrics = {
    wallMs: stages.reduce((a, s) => a + s.ms, 0) + 420,
    stages,
    promptTokens: 800,
    latentSteps: stages.filter((s) => s.kind === 'latent').length * steps,
    textTokens,
    device: 'cpu',
    precision: 'int4',
  };
  ev.push({ type: 'metrics', metrics });
  return ev;
}

export function sampleMessages(opts: SampleOptions = {}): HostMessage[] {
  const id = opts.id ?? 'solve-1';
  const rounds = opts.rounds ?? 3;
  const steps = opts.steps ?? 16;
  let events = sampleEvents(rounds, steps, opts.answer);
  if (opts.cut !== undefined) events = events.slice(0, opts.cut);
  const msgs: HostMessage[] = [
    { type: 'runtime', state: 'busy', device: 'cpu' },
    { type: 'session', session: sampleSession(id, rounds, steps) },
  ];
  events.forEach((event, i) => msgs.push({ type: 'event', id, seq: i + 1, event }));
  if (opts.cut === undefined || opts.outcome) {
    const outcome = opts.outcome ?? 'done';
    msgs.push(
      outcome === 'failed'
        ? {
            type: 'end',
            id,
            outcome,
            error: { message: 'The runtime process stopped unexpectedly (exit code 1, signal SIGKILL).', action: 'Retry the solve; the runtime restarts on its own. If it keeps happening, look at the logs or switch to the CPU.', fixes: ['retry', 'show-logs', 'switch-device'] },
          }
        : { type: 'end', id, outcome },
    );
    msgs.push({ type: 'runtime', state: outcome === 'failed' ? 'crashed' : 'ready', device: 'cpu' });
  }
  return msgs;
}
