// Runtime checks for every message shape in rpc.ts and events.ts. Whatever crosses a process or
// iframe boundary is checked here before use; a failure lists every bad field by its path.
// Unknown fields are refused too, so a mismatched client and runtime fail loudly, not subtly.
import type { Device, SolveEvent, SolveMetrics, SolveResult } from './events';
import type {
  CancelParams,
  CancelResult,
  InitializeParams,
  InitializeResult,
  LoadTeamParams,
  LoadTeamResult,
  LogNotification,
  PingResult,
  RpcErrorData,
  SolveEventNotification,
  SolveParams,
} from './rpc';

/** Bounds the runtime enforces; InitializeResult.limits reports the first three. */
export const LIMITS = {
  maxRounds: 16,
  maxLatentSteps: 256,
  maxNewTokens: 32768,
  maxTaskChars: 100_000,
  maxContextChars: 400_000,
  maxIdChars: 200,
  maxThreads: 1024,
  maxRepairs: 10,
} as const;

export type Validation<T> = { ok: true; value: T } | { ok: false; issues: string[]; message: string };

/** A message that does not have its declared shape. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  constructor(
    readonly what: string,
    readonly issues: string[],
  ) {
    super(formatIssues(what, issues));
  }
}

function formatIssues(what: string, issues: string[]): string {
  const shown = issues.slice(0, 8);
  const more = issues.length > shown.length ? `\n  ... and ${issues.length - shown.length} more` : '';
  return `invalid ${what}:\n  ${shown.join('\n  ')}${more}`;
}

/** Returns the value when valid, throws a ProtocolError listing every bad field otherwise. */
export function expectValid<T>(result: Validation<T>, what: string): T {
  if (result.ok) return result.value;
  throw new ProtocolError(what, result.issues);
}

// A check pushes one line per problem; `path` names the field ("params.rounds").
type Check = (value: unknown, path: string, issues: string[]) => void;

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  return String(value);
}

function str(options: { min?: number; max?: number } = {}): Check {
  const min = options.min ?? 0;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return (v, path, issues) => {
    if (typeof v !== 'string') issues.push(`${path}: expected a string, got ${show(v)}`);
    else if (v.length < min) issues.push(min === 1 ? `${path}: must not be empty` : `${path}: must have at least ${min} characters`);
    else if (v.length > max) issues.push(`${path}: must have at most ${max} characters, got ${v.length}`);
  };
}

function num(options: { int?: boolean; min?: number; max?: number; aboveZero?: boolean } = {}): Check {
  return (v, path, issues) => {
    const kind = options.int ? 'a whole number' : 'a number';
    const range =
      options.min !== undefined && options.max !== undefined
        ? ` from ${options.min} to ${options.max}`
        : options.min !== undefined
          ? ` of at least ${options.min}`
          : options.max !== undefined
            ? ` of at most ${options.max}`
            : '';
    if (typeof v !== 'number' || !Number.isFinite(v)) issues.push(`${path}: expected ${kind}${range}, got ${show(v)}`);
    else if (options.int && !Number.isInteger(v)) issues.push(`${path}: expected ${kind}${range}, got ${v}`);
    else if ((options.min !== undefined && v < options.min) || (options.max !== undefined && v > options.max)) {
      issues.push(`${path}: expected ${kind}${range}, got ${v}`);
    } else if (options.aboveZero && v <= 0) issues.push(`${path}: must be above 0, got ${v}`);
  };
}

const bool: Check = (v, path, issues) => {
  if (typeof v !== 'boolean') issues.push(`${path}: expected true or false, got ${show(v)}`);
};

function oneOf(...allowed: readonly (string | number)[]): Check {
  return (v, path, issues) => {
    if (!allowed.includes(v as string)) issues.push(`${path}: expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${show(v)}`);
  };
}

function nullable(check: Check): Check {
  return (v, path, issues) => {
    if (v !== null) check(v, path, issues);
  };
}

function arrayOf(item: Check, max = 100_000): Check {
  return (v, path, issues) => {
    if (!Array.isArray(v)) {
      issues.push(`${path}: expected an array, got ${show(v)}`);
      return;
    }
    if (v.length > max) {
      issues.push(`${path}: must have at most ${max} items, got ${v.length}`);
      return;
    }
    v.forEach((x, i) => item(x, `${path}[${i}]`, issues));
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(required: Record<string, Check>, optional: Record<string, Check> = {}): Check {
  return (v, path, issues) => {
    if (!isPlainObject(v)) {
      issues.push(`${path}: expected an object, got ${show(v)}`);
      return;
    }
    for (const [key, check] of Object.entries(required)) {
      if (!Object.hasOwn(v, key) || v[key] === undefined) issues.push(`${path}.${key}: is required`);
      else check(v[key], `${path}.${key}`, issues);
    }
    for (const [key, check] of Object.entries(optional)) {
      if (Object.hasOwn(v, key) && v[key] !== undefined) check(v[key], `${path}.${key}`, issues);
    }
    for (const key of Object.keys(v)) {
      if (!Object.hasOwn(required, key) && !Object.hasOwn(optional, key)) issues.push(`${path}.${key}: is not a known field`);
    }
  };
}

/** A union told apart by its `type` field. */
function tagged(variants: Record<string, Check>): Check {
  return (v, path, issues) => {
    if (!isPlainObject(v)) {
      issues.push(`${path}: expected an object, got ${show(v)}`);
      return;
    }
    const tag = v.type;
    if (typeof tag !== 'string' || !Object.hasOwn(variants, tag)) {
      issues.push(`${path}.type: expected one of ${Object.keys(variants).join(', ')}, got ${show(tag)}`);
      return;
    }
    variants[tag]!(v, path, issues);
  };
}

function validator<T>(check: Check, root: string): (value: unknown) => Validation<T> {
  return (value) => {
    const issues: string[] = [];
    check(value, root, issues);
    return issues.length === 0 ? { ok: true, value: value as T } : { ok: false, issues, message: formatIssues(root, issues) };
  };
}

// Building blocks shared by several messages.
const count = num({ int: true, min: 0 });
const ms = num({ min: 0 });
const name = str({ min: 1, max: 500 });
const text = str({ max: 10_000_000 });
const device = oneOf('cpu', 'webgpu', 'cuda');
const deviceChoice = oneOf('auto', 'cpu', 'webgpu', 'cuda');
const precision = oneOf('fp32', 'fp16', 'int4');
const precisionChoice = oneOf('auto', 'fp32', 'fp16', 'int4');
const mode = oneOf('latent', 'text', 'single');
const style = oneOf('sequential', 'mixture', 'distillation');
const id = str({ min: 1, max: LIMITS.maxIdChars });
const threads = num({ int: true, min: 0, max: LIMITS.maxThreads });
const agentInfo = object({ name, role: name, model: name });
const norm = num();

const stageTiming = object({ round: count, agent: name, kind: oneOf('latent', 'text', 'decode', 'retry'), ms }, { promptMs: ms, steps: count });
const solveMetrics = object({
  wallMs: ms,
  stages: arrayOf(stageTiming),
  promptTokens: count,
  latentSteps: count,
  textTokens: count,
  device,
  precision,
}, { reusedPromptTokens: count });

// Checks on candidates (src/engine/verify).
const checkId = str({ min: 1, max: 100 });
const checkInfo = object({ id: checkId, kind: oneOf('command', 'doctest', 'assert', 'example'), label: str({ min: 1, max: 2000 }) });
const checkStatus = oneOf('passed', 'failed', 'errored', 'timed-out');
const checkOutcomeFields = { check: checkId, status: checkStatus, ms, output: str({ max: 100_000 }) };
const checkOutcomeOptional = { firstFailure: str({ max: 10_000 }) };
const isolation = object({ network: bool, writes: oneOf('refused', 'detected'), note: str({ max: 2000 }) });
const candidateNumber = num({ int: true, min: 1, max: 1000 });
const maxRepairs = num({ int: true, min: 0, max: LIMITS.maxRepairs });
const verification = object({
  checks: arrayOf(checkInfo, 100),
  isolation,
  candidates: arrayOf(object({ candidate: candidateNumber, passed: count, results: arrayOf(object(checkOutcomeFields, checkOutcomeOptional), 100) }), 1000),
  chosen: candidateNumber,
  reason: str({ max: 2000 }),
});

const type = (t: string) => oneOf(t);
const solveEvent = tagged({
  'team-loading': object({ type: type('team-loading'), team: name, model: name, index: count, count }),
  'team-loaded': object({ type: type('team-loaded'), team: name, agents: arrayOf(agentInfo, 64), device, precision, ms }),
  'solve-start': object({ type: type('solve-start'), task: text, language: str({ max: 200 }), mode, style, rounds: count, latentSteps: count }),
  'round-start': object({ type: type('round-start'), round: count, rounds: count }),
  'round-end': object({ type: type('round-end'), round: count, ms }),
  'agent-start': object({ type: type('agent-start'), round: count, agent: name, role: name, action: oneOf('latent', 'text', 'decode') }),
  'latent-step': object({ type: type('latent-step'), round: count, agent: name, step: count, steps: count }),
  'agent-end': object({ type: type('agent-end'), round: count, agent: name, ms, promptTokens: count, latentSteps: count, textTokens: count }),
  handoff: object({ type: type('handoff'), round: count, from: name, to: name, vectors: count, meanNorm: norm, maxNorm: norm }, { text }),
  token: object({ type: type('token'), round: count, agent: name, text }),
  retry: object({ type: type('retry'), reason: text }),
  answer: object({ type: type('answer'), text, code: nullable(text), language: str({ max: 200 }) }),
  metrics: object({ type: type('metrics'), metrics: solveMetrics }),
  warning: object({ type: type('warning'), message: text }),
  'check-plan': object({ type: type('check-plan'), checks: arrayOf(checkInfo, 100), maxRepairs, isolation }),
  'check-start': object({ type: type('check-start'), candidate: candidateNumber, check: checkId }),
  'check-end': object({ type: type('check-end'), candidate: candidateNumber, ...checkOutcomeFields }, checkOutcomeOptional),
  'repair-round': object({ type: type('repair-round'), repair: candidateNumber, maxRepairs, candidate: candidateNumber, afterRound: count, failing: count, feedback: str({ max: 10_000 }) }),
  'candidate-chosen': object({ type: type('candidate-chosen'), candidate: candidateNumber, passed: count, total: count, reason: str({ max: 2000 }) }),
});

const solveResult = object({ rounds: count, answer: text, code: nullable(text), language: str({ max: 200 }), metrics: solveMetrics, device, precision }, { verification });

export const validateSolveEvent = validator<SolveEvent>(solveEvent, 'event');
export const validateSolveMetrics = validator<SolveMetrics>(solveMetrics, 'metrics');
export const validateSolveResult = validator<SolveResult>(solveResult, 'result');
export const validateDevice = validator<Device>(device, 'device');

export const validateInitializeParams = validator<InitializeParams>(
  object({ clientName: name }, { threads, modelsDirectory: str({ min: 1, max: 4096 }) }),
  'params',
);

export const validateInitializeResult = validator<InitializeResult>(
  object({
    runtimeVersion: name,
    ortVersion: name,
    node: name,
    providers: arrayOf(object({ name: device, available: bool }, { reason: text, note: text }), 16),
    limits: object({ maxRounds: count, maxLatentSteps: count, maxNewTokens: count }),
  }),
  'result',
);

export const validateLoadTeamParams = validator<LoadTeamParams>(object({ team: name, device: deviceChoice }, { id, threads, precision: precisionChoice }), 'params');

export const validateLoadTeamResult = validator<LoadTeamResult>(
  object({ team: name, device, precision, agents: arrayOf(agentInfo, 64), ms, warnings: arrayOf(text, 1000) }),
  'result',
);

export const validateSolveParams = validator<SolveParams>(
  object(
    {
      id,
      task: str({ min: 1, max: LIMITS.maxTaskChars }),
      language: str({ max: 200 }),
      team: name,
      mode,
      rounds: num({ int: true, min: 1, max: LIMITS.maxRounds }),
      latentSteps: num({ int: true, min: 0, max: LIMITS.maxLatentSteps }),
      maxNewTokens: num({ int: true, min: 1, max: LIMITS.maxNewTokens }),
      temperature: num({ min: 0, max: 10 }),
      topP: num({ min: 0, max: 1, aboveZero: true }),
      device: deviceChoice,
    },
    {
      context: str({ max: LIMITS.maxContextChars }),
      seed: num({ int: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
      threads,
      precision: precisionChoice,
      fixedLength: bool,
      verify: object(
        { findChecks: bool, maxRepairs },
        {
          command: str({ min: 1, max: 10_000 }),
          root: str({ min: 1, max: 4096 }),
          file: object({ path: str({ min: 1, max: 4096 }), text: str({ max: LIMITS.maxContextChars }), start: count, end: count }),
          selection: str({ max: LIMITS.maxTaskChars }),
          timeoutMs: num({ int: true, min: 100, max: 3_600_000 }),
        },
      ),
    },
  ),
  'params',
);

export const validateCancelParams = validator<CancelParams>(object({ id }), 'params');
export const validateCancelResult = validator<CancelResult>(object({ cancelled: bool }), 'result');
export const validatePingResult = validator<PingResult>(object({ uptimeMs: ms, team: nullable(name), solves: arrayOf(id, 10_000) }), 'result');

export const validateSolveEventNotification = validator<SolveEventNotification>(object({ id, event: solveEvent }), 'params');

export const validateLogNotification = validator<LogNotification>(
  object({ level: oneOf('trace', 'debug', 'info', 'warn', 'error'), message: text }),
  'params',
);

export const validateRpcErrorData = validator<RpcErrorData>(
  object({ kind: oneOf('cancelled', 'user', 'engine', 'invalid') }, { code: name, action: text, issues: arrayOf(text, 1000) }),
  'error.data',
);

/** For requests that take no parameters: nothing, null, {} or [] are accepted. */
export const validateNoParams = validator<undefined>((v, path, issues) => {
  if (v === undefined || v === null) return;
  if (Array.isArray(v) ? v.length > 0 : !isPlainObject(v) || Object.keys(v).length > 0) issues.push(`${path}: this method takes no parameters, got ${show(v)}`);
}, 'params');
