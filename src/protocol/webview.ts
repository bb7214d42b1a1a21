// Messages between the extension host and the panel's webview, with validators for both
// directions: each side checks what it receives, drops what does not match and keeps running.
// Imports only other protocol modules (no Node APIs), so the webview bundle can use it.
import type { Device, Mode, SolveEvent } from './events';
import type { DeviceChoice } from './rpc';
import { validateSolveEvent } from './validate';

/** A solve as the panel shows it. */
export interface SessionInfo {
  id: string;
  task: string;
  language: string;
  team: string;
  device: DeviceChoice;
  mode: Mode;
  rounds: number;
  latentSteps: number;
  /** Workspace-relative name of the file the task came from, when there is one. */
  fileName?: string;
  /** A line about the team the user should know (a demo team writes no useful code). */
  teamNote?: string;
  /** Whether "Replace selection" makes sense (the task came from a selection). */
  hasSelection: boolean;
  /** The action the user configured as the default (highlighted) one. */
  defaultAction: PanelAction;
  /** Milliseconds since the epoch, from the host's clock. */
  startedAt: number;
}

/** Something the user can do to get past an error. */
export type Fix = 'download-models' | 'show-logs' | 'switch-device' | 'select-team' | 'retry' | 'open-settings' | 'trust-workspace' | 'use-demo-team' | 'models-settings';
export const FIXES: readonly Fix[] = ['download-models', 'show-logs', 'switch-device', 'select-team', 'retry', 'open-settings', 'trust-workspace', 'use-demo-team', 'models-settings'];

export interface PanelError {
  /** What happened, in one or two sentences. */
  message: string;
  /** What to do about it. */
  action?: string;
  fixes: Fix[];
}

export type Outcome = 'done' | 'cancelled' | 'failed';
export type RuntimeState = 'stopped' | 'starting' | 'ready' | 'busy' | 'crashed';
export type PanelAction = 'insertAtCursor' | 'replaceSelection' | 'showDiff' | 'copy' | 'retry' | 'cancel';
export const PANEL_ACTIONS: readonly PanelAction[] = ['insertAtCursor', 'replaceSelection', 'showDiff', 'copy', 'retry', 'cancel'];

export type HostMessage =
  /** A solve begins (or is re-sent on replay; the webview keeps what it has for the same id). */
  | { type: 'session'; session: SessionInfo }
  /** One event of the solve `id`; `seq` counts from 1 and lets the webview drop repeats. */
  | { type: 'event'; id: string; seq: number; event: SolveEvent }
  | { type: 'end'; id: string; outcome: Outcome; error?: PanelError }
  | { type: 'runtime'; state: RuntimeState; device?: Device; detail?: string }
  | { type: 'notice'; level: 'info' | 'warning' | 'error'; message: string }
  /** The team or another solve setting changed while no solve runs: an old error no longer applies. */
  | { type: 'settings-changed'; team: string };

export type WebviewMessage =
  /** Sent when the webview (re)loads; `solveId`/`lastSeq` say what it already shows. */
  | { type: 'ready'; solveId: string | null; lastSeq: number }
  | { type: 'action'; action: PanelAction; id: string }
  | { type: 'fix'; fix: Fix }
  /** Solve again from solve `id`: with an edited task, or with a follow-up instruction on its answer. */
  | { type: 'rerun'; id: string; task?: string; followUp?: string }
  /** A script error inside the webview, forwarded to the log. */
  | { type: 'error'; message: string };

/**
 * Lines of code as the panel shows them and the editor receives them: blank lines at either end
 * are not inserted, so they do not count. The one rule for every "N lines" in the extension.
 */
export function countLines(code: string): number {
  const lines = code.split(/\r\n|\r|\n/);
  let first = 0;
  let end = lines.length;
  while (first < end && lines[first]!.trim() === '') first++;
  while (end > first && lines[end - 1]!.trim() === '') end--;
  return end - first;
}

export function linesLabel(code: string): string {
  const n = countLines(code);
  return n === 1 ? '1 line' : `${n} lines`;
}

// ---------------------------------------------------------------------------------------------
// Validation. Hand-written checks: the shapes are small, and the messages say what was wrong.

type Obj = Record<string, unknown>;
export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const MAX_TEXT = 1_000_000;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown, max = MAX_TEXT): v is string => typeof v === 'string' && v.length <= max;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isOneOf = <T extends string>(v: unknown, values: readonly T[]): v is T => typeof v === 'string' && (values as readonly string[]).includes(v);

const MODES: readonly Mode[] = ['latent', 'text', 'single'];
const DEVICES: readonly Device[] = ['cpu', 'webgpu', 'cuda'];
const DEVICE_CHOICES: readonly DeviceChoice[] = ['auto', 'cpu', 'webgpu', 'cuda'];
const OUTCOMES: readonly Outcome[] = ['done', 'cancelled', 'failed'];
const RUNTIME_STATES: readonly RuntimeState[] = ['stopped', 'starting', 'ready', 'busy', 'crashed'];

/** Field checks per key; a missing optional field is written `key?`. */
type Shape = Record<string, (v: unknown) => boolean>;

function fits(o: Obj, shape: Shape): string | null {
  for (const [rawKey, check] of Object.entries(shape)) {
    const optional = rawKey.endsWith('?');
    const key = optional ? rawKey.slice(0, -1) : rawKey;
    const v = o[key];
    if (v === undefined) {
      if (optional) continue;
      return `"${key}" is missing`;
    }
    if (!check(v)) return `"${key}" has the wrong type or value (${short(v)})`;
  }
  return null;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Solve events are checked by the same validator the supervisor uses on the runtime's stream. */
export function checkSolveEvent(v: unknown): Checked<SolveEvent> {
  const r = validateSolveEvent(v);
  return r.ok ? { ok: true, value: r.value } : { ok: false, error: r.message };
}

const round = (n: unknown) => isInt(n, 0, 1000);
const name = (s: unknown) => isStr(s, 200);

const sessionInfo = (v: unknown) =>
  isObj(v) &&
  fits(v, {
    id: (s) => isStr(s, 200) && (s as string).length > 0,
    task: isStr,
    language: name,
    team: name,
    device: (d) => isOneOf(d, DEVICE_CHOICES),
    mode: (m) => isOneOf(m, MODES),
    rounds: round,
    latentSteps: (n) => isInt(n, 0, 100_000),
    'fileName?': (s) => isStr(s, 4096),
    'teamNote?': (s) => isStr(s, 2000),
    hasSelection: (b) => typeof b === 'boolean',
    defaultAction: (a) => isOneOf(a, PANEL_ACTIONS),
    startedAt: isNum,
  }) === null;

const panelError = (v: unknown) =>
  isObj(v) &&
  fits(v, {
    message: (s) => isStr(s, 20_000),
    'action?': (s) => isStr(s, 20_000),
    fixes: (f) => Array.isArray(f) && f.length <= FIXES.length && f.every((x) => isOneOf(x, FIXES)),
  }) === null;

const HOST_SHAPES: Record<HostMessage['type'], Shape> = {
  session: { session: sessionInfo },
  event: { id: name, seq: (n) => isInt(n, 1), event: (e) => checkSolveEvent(e).ok },
  end: { id: name, outcome: (o) => isOneOf(o, OUTCOMES), 'error?': panelError },
  runtime: { state: (s) => isOneOf(s, RUNTIME_STATES), 'device?': (d) => isOneOf(d, DEVICES), 'detail?': (s) => isStr(s, 20_000) },
  notice: { level: (l) => isOneOf(l, ['info', 'warning', 'error'] as const), message: (s) => isStr(s, 20_000) },
  'settings-changed': { team: name },
};

const WEBVIEW_SHAPES: Record<WebviewMessage['type'], Shape> = {
  ready: { solveId: (s) => s === null || (isStr(s, 200) && (s as string).length > 0), lastSeq: (n) => isInt(n) },
  action: { action: (a) => isOneOf(a, PANEL_ACTIONS), id: (s) => isStr(s, 200) && (s as string).length > 0 },
  fix: { fix: (f) => isOneOf(f, FIXES) },
  rerun: { id: (s) => isStr(s, 200) && (s as string).length > 0, 'task?': (s) => isStr(s, 100_000), 'followUp?': (s) => isStr(s, 20_000) },
  error: { message: (s) => isStr(s, 20_000) },
};

function checkMessage<T>(v: unknown, shapes: Record<string, Shape>, what: string): Checked<T> {
  if (!isObj(v)) return { ok: false, error: `${what} message is not an object` };
  if (typeof v.type !== 'string' || !Object.hasOwn(shapes, v.type)) return { ok: false, error: `unknown ${what} message type ${short(v.type)}` };
  const why = fits(v, shapes[v.type]!);
  if (why) return { ok: false, error: `${what} message "${v.type}": ${why}` };
  if (v.type === 'event') {
    const ev = checkSolveEvent(v.event);
    if (!ev.ok) return { ok: false, error: `${what} message "event": ${ev.error}` };
  }
  return { ok: true, value: v as T };
}

/** Validates a message the webview received from the extension. */
export function checkHostMessage(v: unknown): Checked<HostMessage> {
  return checkMessage<HostMessage>(v, HOST_SHAPES, 'host');
}

/** Validates a message the extension received from the webview. */
export function checkWebviewMessage(v: unknown): Checked<WebviewMessage> {
  return checkMessage<WebviewMessage>(v, WEBVIEW_SHAPES, 'webview');
}
