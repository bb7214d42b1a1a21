// The panel's view model and the pure function that folds host messages into it. The whole model
// is what the webview saves with setState, so it must stay plain JSON. No DOM here: unit tests
// replay recorded event sequences through `reduce` under Node.
import type { CheckInfo, CheckStatus, Device, Isolation, Mode, Precision, SolveMetrics, Style } from '../src/protocol/events';
import type { HostMessage, Outcome, PanelError, RuntimeState, SessionInfo } from '../src/protocol/webview';

export type Phase = 'idle' | 'loading' | 'running' | 'decoding' | 'checking' | 'done' | 'cancelled' | 'failed';

export interface AgentRun {
  agent: string;
  role: string;
  /** 'retry': the final agent asked once more for only the code (its own stage in the metrics). */
  action: 'latent' | 'text' | 'decode' | 'retry';
  /** 'stopped': the solve ended (cancelled, failed) while this agent was still working. */
  status: 'running' | 'done' | 'stopped';
  step: number;
  steps: number;
  /** Webview clock when the run started, for the live timer. */
  startedAt: number;
  ms?: number;
  promptTokens?: number;
  latentSteps?: number;
  textTokens?: number;
  /** Text written by this agent (text-mode messages); the final decode goes to `output`. */
  text?: string;
}

export interface HandoffView {
  from: string;
  to: string;
  vectors: number;
  meanNorm: number;
  maxNorm: number;
  text?: string;
}

export interface RoundView {
  round: number;
  status: 'running' | 'done';
  startedAt: number;
  ms?: number;
  runs: AgentRun[];
  handoffs: HandoffView[];
}

export interface CheckResultView {
  check: string;
  status: CheckStatus | 'running';
  ms?: number;
  firstFailure?: string;
  output?: string;
}

/** One candidate (the first solve or a repair) and its check results. */
export interface CandidateView {
  candidate: number;
  /** The first round of the timeline that belongs to it. */
  firstRound: number;
  results: CheckResultView[];
}

export interface RepairView {
  repair: number;
  maxRepairs: number;
  candidate: number;
  afterRound: number;
  failing: number;
  feedback: string;
}

export interface ChecksView {
  plan: CheckInfo[];
  maxRepairs: number;
  isolation: Isolation;
  candidates: CandidateView[];
  repairs: RepairView[];
  chosen: { candidate: number; passed: number; total: number; reason: string } | null;
}

export interface ViewModel {
  version: 1;
  session: SessionInfo | null;
  lastSeq: number;
  phase: Phase;
  outcome: Outcome | null;
  loading: { model: string; index: number; count: number } | null;
  team: { name: string; agents: { name: string; role: string; model: string }[]; device: Device; precision: Precision; ms: number } | null;
  solve: { mode: Mode; style: Style; rounds: number; latentSteps: number } | null;
  rounds: RoundView[];
  /** The final agent's decoded text so far. */
  output: string;
  answer: { text: string; code: string | null; language: string } | null;
  metrics: SolveMetrics | null;
  warnings: string[];
  retries: string[];
  /** Checks on candidates and repair rounds; null when the solve runs no checks. */
  checks: ChecksView | null;
  error: PanelError | null;
  runtime: { state: RuntimeState; device?: Device; detail?: string };
  notice: { level: 'info' | 'warning' | 'error'; message: string } | null;
  /** Short sentences for the screen-reader live region, newest last. */
  announcements: string[];
  endedAt: number | null;
}

export function emptyModel(): ViewModel {
  return {
    version: 1,
    session: null,
    lastSeq: 0,
    phase: 'idle',
    outcome: null,
    loading: null,
    team: null,
    solve: null,
    rounds: [],
    output: '',
    answer: null,
    metrics: null,
    warnings: [],
    retries: [],
    checks: null,
    error: null,
    runtime: { state: 'stopped' },
    notice: null,
    announcements: [],
    endedAt: null,
  };
}

/** Accepts a value restored from getState only if it looks like a model of this version. */
export function restoreModel(saved: unknown): ViewModel {
  if (typeof saved === 'object' && saved !== null && (saved as ViewModel).version === 1 && Array.isArray((saved as ViewModel).rounds)) {
    return { ...emptyModel(), ...(saved as ViewModel) };
  }
  return emptyModel();
}

const MAX_AGENT_TEXT = 4000;
const MAX_ANNOUNCEMENTS = 5;

function announce(m: ViewModel, text: string): void {
  m.announcements = [...m.announcements, text].slice(-MAX_ANNOUNCEMENTS);
}

function roundOf(m: ViewModel, round: number, now: number): RoundView {
  let r = m.rounds.find((x) => x.round === round);
  if (!r) {
    r = { round, status: 'running', startedAt: now, runs: [], handoffs: [] };
    m.rounds.push(r);
    m.rounds.sort((a, b) => a.round - b.round);
  }
  return r;
}

function lastOf<T>(list: T[], test: (x: T) => boolean): T | undefined {
  for (let i = list.length - 1; i >= 0; i--) if (test(list[i]!)) return list[i];
  return undefined;
}

function latestRun(r: RoundView, agent: string): AgentRun | undefined {
  for (let i = r.runs.length - 1; i >= 0; i--) if (r.runs[i]!.agent === agent) return r.runs[i];
  return undefined;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Folds one host message into the model (a new object; the input is not changed). `now` is the
 * webview's clock, used only for live timers.
 */
export function reduce(prev: ViewModel, msg: HostMessage, now: number): ViewModel {
  const m: ViewModel = structuredClone(prev);
  switch (msg.type) {
    case 'session': {
      if (m.session?.id === msg.session.id) return prev;
      const fresh = emptyModel();
      fresh.runtime = m.runtime;
      fresh.session = msg.session;
      fresh.phase = 'loading';
      announce(fresh, `Solving with team ${msg.session.team}: ${msg.session.rounds} rounds.`);
      return fresh;
    }
    case 'runtime':
      // No undefined fields: the model must survive a JSON round trip through setState unchanged.
      m.runtime = { state: msg.state, ...(msg.device ? { device: msg.device } : {}), ...(msg.detail !== undefined ? { detail: msg.detail } : {}) };
      if (msg.state === 'crashed') announce(m, `The runtime stopped${msg.detail ? `: ${msg.detail}` : ''}.`);
      return m;
    case 'notice':
      m.notice = { level: msg.level, message: msg.message };
      announce(m, msg.message);
      return m;
    case 'settings-changed': {
      // The error was about the old team or settings; Retry now uses the new ones.
      if (m.outcome !== 'failed' || !m.error) return prev;
      m.error = null;
      m.notice = { level: 'info', message: `Settings changed (team ${msg.team}). Retry solves the task with them.` };
      announce(m, m.notice.message);
      return m;
    }
    case 'end': {
      if (!m.session || m.session.id !== msg.id || m.outcome) return prev;
      m.outcome = msg.outcome;
      m.phase = msg.outcome;
      m.endedAt = now;
      m.error = msg.error ?? null;
      for (const r of m.rounds) for (const run of r.runs) if (run.status === 'running') run.status = msg.outcome === 'done' ? 'done' : 'stopped';
      if (msg.outcome === 'done') announce(m, m.answer?.code || m.answer?.text ? 'The code is ready. Use Insert at cursor, Replace selection, Show diff or Copy.' : 'The solve finished without code.');
      else if (msg.outcome === 'cancelled') announce(m, 'The solve was cancelled.');
      else announce(m, `The solve failed: ${msg.error?.message ?? 'unknown error'}`);
      return m;
    }
    case 'event':
      break;
  }
  if (!m.session || m.session.id !== msg.id || msg.seq <= m.lastSeq) return prev;
  m.lastSeq = msg.seq;
  const ev = msg.event;
  switch (ev.type) {
    case 'team-loading':
      m.phase = 'loading';
      m.loading = { model: ev.model, index: ev.index, count: ev.count };
      announce(m, `Loading model ${ev.index + 1} of ${ev.count}: ${ev.model}.`);
      break;
    case 'team-loaded':
      m.loading = null;
      m.team = { name: ev.team, agents: ev.agents, device: ev.device, precision: ev.precision, ms: ev.ms };
      announce(m, `Team ${ev.team} loaded on ${ev.device} at ${ev.precision} in ${seconds(ev.ms)}.`);
      break;
    case 'solve-start':
      m.phase = 'running';
      m.loading = null;
      m.solve = { mode: ev.mode, style: ev.style, rounds: ev.rounds, latentSteps: ev.latentSteps };
      break;
    case 'round-start':
      m.phase = 'running';
      roundOf(m, ev.round, now);
      announce(m, `Round ${ev.round} of ${ev.rounds} started.`);
      break;
    case 'round-end': {
      const r = roundOf(m, ev.round, now);
      r.status = 'done';
      r.ms = ev.ms;
      break;
    }
    case 'agent-start': {
      const r = roundOf(m, ev.round, now);
      r.runs.push({ agent: ev.agent, role: ev.role, action: ev.action, status: 'running', step: 0, steps: ev.action === 'latent' ? (m.solve?.latentSteps ?? 0) : 0, startedAt: now });
      if (ev.action === 'decode') m.phase = 'decoding';
      announce(m, ev.action === 'decode' ? `${ev.agent} is writing the code.` : `Round ${ev.round}: ${ev.agent} (${ev.role}) is thinking.`);
      break;
    }
    case 'latent-step': {
      const run = latestRun(roundOf(m, ev.round, now), ev.agent);
      if (run) {
        run.step = ev.step;
        run.steps = ev.steps;
      }
      break;
    }
    case 'agent-end': {
      const run = latestRun(roundOf(m, ev.round, now), ev.agent);
      if (run) {
        run.status = 'done';
        run.ms = ev.ms;
        run.promptTokens = ev.promptTokens;
        run.latentSteps = ev.latentSteps;
        run.textTokens = ev.textTokens;
        if (run.action === 'latent') run.step = run.steps = Math.max(run.steps, ev.latentSteps);
      }
      break;
    }
    case 'handoff':
      roundOf(m, ev.round, now).handoffs.push({ from: ev.from, to: ev.to, vectors: ev.vectors, meanNorm: ev.meanNorm, maxNorm: ev.maxNorm, ...(ev.text !== undefined ? { text: ev.text } : {}) });
      announce(m, ev.text !== undefined ? `${ev.from} sent a text message to ${ev.to}.` : `${ev.from} handed ${ev.vectors} latent vectors to ${ev.to}.`);
      break;
    case 'token': {
      const run = latestRun(roundOf(m, ev.round, now), ev.agent);
      if (!run || run.action === 'decode' || run.action === 'retry') m.output += ev.text;
      else run.text = ((run.text ?? '') + ev.text).slice(0, MAX_AGENT_TEXT);
      break;
    }
    case 'retry': {
      m.retries.push(ev.reason);
      m.output = '';
      // The retry is a row of its own after the final decode, so its time and tokens are seen.
      const r = m.rounds[m.rounds.length - 1];
      const decode = r ? lastOf(r.runs, (x) => x.action === 'decode') : undefined;
      if (r && decode) {
        if (decode.status === 'running') decode.status = 'done';
        r.runs.push({ agent: decode.agent, role: decode.role, action: 'retry', status: 'running', step: 0, steps: 0, startedAt: now });
      }
      announce(m, `Asking the solver again: ${ev.reason}`);
      break;
    }
    case 'answer':
      m.answer = { text: ev.text, code: ev.code, language: ev.language };
      for (const r of m.rounds) for (const run of r.runs) if (run.action === 'retry' && run.status === 'running') run.status = 'done';
      break;
    case 'metrics':
      m.metrics = ev.metrics;
      // The engine's stages are the one source of times: the rows take theirs (the retry has no agent-end).
      for (const r of m.rounds) {
        for (const run of r.runs) {
          const stage = lastOf(ev.metrics.stages, (st) => st.round === r.round && st.agent === run.agent && st.kind === run.action);
          if (!stage) continue;
          run.ms = stage.ms;
          if (run.action === 'retry' && stage.steps !== undefined) run.textTokens = stage.steps;
        }
      }
      break;
    case 'warning':
      m.warnings.push(ev.message);
      break;
    case 'check-plan':
      m.checks = { plan: ev.checks, maxRepairs: ev.maxRepairs, isolation: ev.isolation, candidates: [], repairs: [], chosen: null };
      if (ev.checks.length > 0) announce(m, `Each candidate will be checked: ${ev.checks.map((c) => c.label).join(', ')}.`);
      break;
    case 'check-start': {
      if (!m.checks) break;
      m.phase = 'checking';
      const c = candidateOf(m.checks, ev.candidate, m.rounds);
      c.results = c.results.filter((r) => r.check !== ev.check);
      c.results.push({ check: ev.check, status: 'running' });
      break;
    }
    case 'check-end': {
      if (!m.checks) break;
      const c = candidateOf(m.checks, ev.candidate, m.rounds);
      const result: CheckResultView = { check: ev.check, status: ev.status, ms: ev.ms, output: ev.output, ...(ev.firstFailure !== undefined ? { firstFailure: ev.firstFailure } : {}) };
      const i = c.results.findIndex((r) => r.check === ev.check);
      if (i >= 0) c.results[i] = result;
      else c.results.push(result);
      announce(m, `Candidate ${ev.candidate}: check ${labelOf(m.checks, ev.check)} ${ev.status === 'timed-out' ? 'timed out' : ev.status}.`);
      break;
    }
    case 'repair-round':
      if (!m.checks) break;
      m.checks.repairs.push({ repair: ev.repair, maxRepairs: ev.maxRepairs, candidate: ev.candidate, afterRound: ev.afterRound, failing: ev.failing, feedback: ev.feedback });
      // The next candidate streams from scratch.
      m.output = '';
      m.answer = null;
      m.phase = 'running';
      announce(m, `Repair ${ev.repair} of ${ev.maxRepairs}: the team tries again with the failing output.`);
      break;
    case 'candidate-chosen':
      if (!m.checks) break;
      m.checks.chosen = { candidate: ev.candidate, passed: ev.passed, total: ev.total, reason: ev.reason };
      announce(m, ev.reason);
      break;
  }
  return m;
}

function candidateOf(checks: ChecksView, candidate: number, rounds: RoundView[]): CandidateView {
  let c = checks.candidates.find((x) => x.candidate === candidate);
  if (!c) {
    const after = checks.repairs.find((r) => r.candidate === candidate)?.afterRound ?? 0;
    c = { candidate, firstRound: rounds.find((r) => r.round > after)?.round ?? after + 1, results: [] };
    checks.candidates.push(c);
    checks.candidates.sort((a, b) => a.candidate - b.candidate);
  }
  return c;
}

export function labelOf(checks: ChecksView, id: string): string {
  return checks.plan.find((c) => c.id === id)?.label ?? id;
}

/**
 * The code part of text that is still streaming: what follows the first opening fence (up to its
 * closing fence), or all of it when no fence has opened.
 */
export function streamingCode(text: string): { code: string; fenced: boolean; closed: boolean } {
  const open = /```[^\n`]*\n/.exec(text);
  if (!open) return { code: text, fenced: false, closed: false };
  const rest = text.slice(open.index + open[0].length);
  const close = rest.indexOf('```');
  return close === -1 ? { code: rest, fenced: true, closed: false } : { code: rest.slice(0, close).replace(/\n$/, ''), fenced: true, closed: true };
}

/** The code the panel shows as final: the answer's code, else the streamed text's code. */
export function finalCode(m: ViewModel): string {
  if (m.answer) return m.answer.code ?? streamingCode(m.answer.text).code;
  return streamingCode(m.output).code;
}

export function formatMs(ms: number): string {
  return seconds(ms);
}
