// Messages between the extension host and the panel's webview. Each side checks what it receives
// with the same kit as the runtime's messages (src/protocol/kit.ts), drops what does not match and
// keeps running; the types are inferred from the schemas. Imports only other protocol modules that
// use no Node APIs (never rpc.ts at run time), so the webview bundle can use it.
import { device, deviceChoice, mode, solveEvent, validateSolveEvent, type SolveEvent } from './events';
import { arrayOf, bool, int, nullable, num, object, oneOf, str, tagged, validator, variant, type Infer, type Validation } from './kit';

/** Something the user can do to get past an error. */
export const FIXES = ['download-models', 'show-logs', 'switch-device', 'select-team', 'retry', 'open-settings', 'trust-workspace', 'use-demo-team', 'models-settings'] as const;
export type Fix = (typeof FIXES)[number];
export const PANEL_ACTIONS = ['insertAtCursor', 'replaceSelection', 'showDiff', 'copy', 'retry', 'cancel'] as const;
export type PanelAction = (typeof PANEL_ACTIONS)[number];
export const OUTCOMES = ['done', 'cancelled', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const RUNTIME_STATES = ['stopped', 'starting', 'ready', 'busy', 'crashed'] as const;
export type RuntimeState = (typeof RUNTIME_STATES)[number];

const solveId = str({ min: 1, max: 200 });
const shortText = str({ max: 200 });
const message = str({ max: 20_000 });

/** A solve as the panel shows it. */
const sessionInfo = object(
  {
    id: solveId,
    task: str({ max: 1_000_000 }),
    language: shortText,
    team: shortText,
    device: deviceChoice,
    mode,
    rounds: int({ min: 0, max: 1000 }),
    latentSteps: int({ min: 0, max: 100_000 }),
    /** Whether "Replace selection" makes sense (the task came from a selection). */
    hasSelection: bool,
    /** The action the user configured as the default (highlighted) one. */
    defaultAction: oneOf(PANEL_ACTIONS),
    /** Milliseconds since the epoch, from the host's clock. */
    startedAt: num(),
  },
  {
    /** Workspace-relative name of the file the task came from, when there is one. */
    fileName: str({ max: 4096 }),
    /** A line about the team the user should know (a demo team writes no useful code). */
    teamNote: str({ max: 2000 }),
  },
);
export type SessionInfo = Infer<typeof sessionInfo>;

const panelError = object(
  {
    /** What happened, in one or two sentences. */
    message,
    fixes: arrayOf(oneOf(FIXES), FIXES.length),
  },
  {
    /** What to do about it. */
    action: message,
  },
);
export type PanelError = Infer<typeof panelError>;

const hostMessage = tagged(
  /** A solve begins (or is re-sent on replay; the webview keeps what it has for the same id). */
  variant('session', { session: sessionInfo }),
  /** One event of the solve `id`; `seq` counts from 1 and lets the webview drop repeats. */
  variant('event', { id: shortText, seq: int({ min: 1 }), event: solveEvent }),
  variant('end', { id: shortText, outcome: oneOf(OUTCOMES) }, { error: panelError }),
  variant('runtime', { state: oneOf(RUNTIME_STATES) }, { device, detail: message }),
  variant('notice', { level: oneOf(['info', 'warning', 'error']), message }),
  /** The team or another solve setting changed while no solve runs: an old error no longer applies. */
  variant('settings-changed', { team: shortText }),
);
export type HostMessage = Infer<typeof hostMessage>;

const webviewMessage = tagged(
  /** Sent when the webview (re)loads; `solveId`/`lastSeq` say what it already shows. */
  variant('ready', { solveId: nullable(solveId), lastSeq: int({ min: 0 }) }),
  variant('action', { action: oneOf(PANEL_ACTIONS), id: solveId }),
  variant('fix', { fix: oneOf(FIXES) }),
  /** Solve again from solve `id`: with an edited task, or with a follow-up instruction on its answer. */
  variant('rerun', { id: solveId }, { task: str({ max: 100_000 }), followUp: message }),
  /** A script error inside the webview, forwarded to the log. */
  variant('error', { message }),
);
export type WebviewMessage = Infer<typeof webviewMessage>;

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

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

function checked<T>(v: Validation<T>): Checked<T> {
  return v.ok ? v : { ok: false, error: v.message };
}

/** Solve events are checked by the same validator the supervisor uses on the runtime's stream. */
export function checkSolveEvent(v: unknown): Checked<SolveEvent> {
  return checked(validateSolveEvent(v));
}

const validateHostMessage = validator(hostMessage, 'message');
const validateWebviewMessage = validator(webviewMessage, 'message');

/** Validates a message the webview received from the extension. */
export function checkHostMessage(v: unknown): Checked<HostMessage> {
  return checked(validateHostMessage(v));
}

/** Validates a message the extension received from the webview. */
export function checkWebviewMessage(v: unknown): Checked<WebviewMessage> {
  return checked(validateWebviewMessage(v));
}
