// The panel's view model and the pure function that folds host messages into it. The whole model
// is what the webview saves with setState, so it must stay plain JSON. No DOM here: unit tests
// replay recorded event sequences through `reduce` under Node.
import type { Device, Mode, SolveMetrics, Style } from '../src/protocol/events';
import type { HostMessage, Outcome, PanelError, RuntimeState, SessionInfo } from '../src/protocol/webview';

export type Phase = 'idle' | 'loading' | 'running' | 'decoding' | 'done' | 'cancelled' | 'failed';

export interface AgentRun {
  agent: string;
  role: string;
  action: 'latent' | 'text' | 'decode';
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

export interface ViewModel {
  version: 1;
  session: SessionInfo | null;
  lastSeq: number;
  phase: Phase;
  outcome: Outcome | null;
  loading: { model: string; index: number; count: number } | null;
  team: { name: string; agents: { name: string; role: string; model: string }[]; device: Device; ms: number } | null;
  solve: { mode: Mode; style: Style; rounds: number; latentSteps: number } | null;
  rounds: RoundView[];
  /** The final agent's decoded text so far. */
  output: string;
  answer: { text: string; code: string | null; language: string } | null;
  metrics: SolveMetrics | null;
  warnings: string[];
  retries: string[];
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
      m.team = { name: ev.team, agents: ev.agents, device: ev.device, ms: ev.ms };
      announce(m, `Team ${ev.team} loaded on ${ev.device} in ${seconds(ev.ms)}.`);
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
      if (!run || run.action === 'decode') m.output += ev.text;
      else run.text = ((run.text ?? '') + ev.text).slice(0, MAX_AGENT_TEXT);
      break;
    }
    case 'retry':
      m.retries.push(ev.reason);
      m.output = '';
      announce(m, `Asking the solver again: ${ev.reason}`);
      break;
    case 'answer':
      m.answer = { text: ev.text, code: ev.code, language: ev.language };
      break;
    case 'metrics':
      m.metrics = ev.metrics;
      break;
    case 'warning':
      m.warnings.push(ev.message);
      break;
  }
  return m;
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
