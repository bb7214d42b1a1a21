// The one event stream of a solve. The engine emits it, the runtime forwards it as JSON-RPC
// notifications, the extension and the webview render it. Each type is inferred from its schema,
// so what is checked at a boundary is exactly what the compiler lets the engine send. This file
// imports only the kit and the limits, so every layer (the webview included) may depend on it.
import { arrayOf, bool, int, nullable, num, object, oneOf, str, tagged, validator, variant, type Infer } from './kit';
import { LIMITS } from './limits';

// The vocabularies, one list each: the validators, the settings and the panel all read these.
export const MODES = ['latent', 'text', 'single'] as const;
export const STYLES = ['sequential', 'mixture', 'distillation'] as const;
export const DEVICES = ['cpu', 'webgpu', 'cuda'] as const;
export const DEVICE_CHOICES = ['auto', ...DEVICES] as const;
/** How a model's linear weights are stored in its graph (int8: the CPU provider only). */
export const PRECISIONS = ['fp32', 'fp16', 'int8', 'int4'] as const;
/** `auto`: fp16 on a GPU provider, int4 on the CPU (decided by the runtime, which knows the device). */
export const PRECISION_CHOICES = ['auto', ...PRECISIONS] as const;
export const CHECK_KINDS = ['command', 'doctest', 'assert', 'example'] as const;
export const CHECK_STATUSES = ['passed', 'failed', 'errored', 'timed-out'] as const;

export type Mode = (typeof MODES)[number];
export type Style = (typeof STYLES)[number];
export type Device = (typeof DEVICES)[number];
export type DeviceChoice = (typeof DEVICE_CHOICES)[number];
export type Precision = (typeof PRECISIONS)[number];
export type PrecisionChoice = (typeof PRECISION_CHOICES)[number];
export type CheckKind = (typeof CHECK_KINDS)[number];
export type CheckStatus = (typeof CHECK_STATUSES)[number];

// Building blocks shared by several messages (the runtime's requests use them too).
export const count = int({ min: 0 });
export const ms = num({ min: 0 });
export const name = str({ min: 1, max: 500 });
export const text = str({ max: 10_000_000 });
export const language = str({ max: 200 });
export const mode = oneOf(MODES);
export const style = oneOf(STYLES);
export const device = oneOf(DEVICES);
export const deviceChoice = oneOf(DEVICE_CHOICES);
export const precision = oneOf(PRECISIONS);
export const precisionChoice = oneOf(PRECISION_CHOICES);
export const agentInfo = object({ name, role: name, model: name });
const norm = num();

const stageTiming = object(
  {
    round: count,
    agent: name,
    /** What the stage did: a latent rollout, a text message, the final decode, an answer retry. */
    kind: oneOf(['latent', 'text', 'decode', 'retry']),
    ms,
  },
  {
    /** Of `ms`, the prompt's prefill; the rest ran `steps` model steps (latent steps after the first thought, or tokens written). */
    promptMs: ms,
    steps: count,
  },
);
export type StageTiming = Infer<typeof stageTiming>;

export const solveMetrics = object(
  { wallMs: ms, stages: arrayOf(stageTiming), promptTokens: count, latentSteps: count, textTokens: count, device, precision },
  {
    /** Prompt positions not run again because an earlier round's prefix state was reused. */
    reusedPromptTokens: count,
  },
);
export type SolveMetrics = Infer<typeof solveMetrics>;

// Checks on candidates (src/engine/verify).
const checkId = str({ min: 1, max: 100 });
/** One check a candidate is run against; `id` names it in check events. */
const checkInfo = object({
  id: checkId,
  kind: oneOf(CHECK_KINDS),
  /** What runs, for people ("pytest -q tests/test_parse.py", "3 doctest examples"). */
  label: str({ min: 1, max: 2000 }),
});
export type CheckInfo = Infer<typeof checkInfo>;

const checkOutcomeFields = {
  check: checkId,
  status: oneOf(CHECK_STATUSES),
  ms,
  /** The end of the check's output, trimmed. */
  output: str({ max: 100_000 }),
};
const checkOutcomeOptional = {
  /** The first failing assertion or example, or why the check could not run. */
  firstFailure: str({ max: 10_000 }),
};
const checkOutcome = object(checkOutcomeFields, checkOutcomeOptional);
export type CheckOutcome = Infer<typeof checkOutcome>;

/** What the sandbox could enforce on this machine, said plainly. */
const isolation = object({
  /** True when checks run in a network namespace of their own (no network at all). */
  network: bool,
  /** 'refused': the file system outside the temporary folder is read-only; 'detected': writes into the project are only looked for afterwards. */
  writes: oneOf(['refused', 'detected']),
  note: str({ max: 2000 }),
});
export type Isolation = Infer<typeof isolation>;

const candidateNumber = int({ min: 1, max: 1000 });
const candidateChecks = object({ candidate: candidateNumber, passed: count, results: arrayOf(checkOutcome, 100) });
export type CandidateChecks = Infer<typeof candidateChecks>;

/** The checks' part of a solve's result. */
const verification = object({
  checks: arrayOf(checkInfo, 100),
  isolation,
  candidates: arrayOf(candidateChecks, 1000),
  /** The candidate whose code is the answer (1 is the first solve, 2 the first repair...). */
  chosen: candidateNumber,
  reason: str({ max: 2000 }),
});
export type Verification = Infer<typeof verification>;

export const solveEvent = tagged(
  variant('team-loading', { team: name, model: name, index: count, count }),
  variant('team-loaded', { team: name, agents: arrayOf(agentInfo, 64), device, precision, ms }),
  variant('solve-start', { task: text, language, mode, style, rounds: count, latentSteps: count }),
  variant('round-start', { round: count, rounds: count }),
  variant('round-end', { round: count, ms }),
  variant('agent-start', { round: count, agent: name, role: name, action: oneOf(['latent', 'text', 'decode']) }),
  variant('latent-step', { round: count, agent: name, step: count, steps: count }),
  variant('agent-end', { round: count, agent: name, ms, promptTokens: count, latentSteps: count, textTokens: count }),
  variant('handoff', { round: count, from: name, to: name, vectors: count, meanNorm: norm, maxNorm: norm }, { text }),
  variant('token', { round: count, agent: name, text }),
  variant('retry', { reason: text }),
  variant('answer', { text, code: nullable(text), language }),
  variant('metrics', { metrics: solveMetrics }),
  variant('warning', { message: text }),
  // Checks on candidates: the plan first, then per candidate each check's start and end, a repair
  // round before each new candidate, and the final choice.
  variant('check-plan', { checks: arrayOf(checkInfo, 100), maxRepairs: int(LIMITS.maxRepairs), isolation }),
  variant('check-start', { candidate: candidateNumber, check: checkId }),
  variant('check-end', { candidate: candidateNumber, ...checkOutcomeFields }, checkOutcomeOptional),
  variant('repair-round', { repair: candidateNumber, maxRepairs: int(LIMITS.maxRepairs), candidate: candidateNumber, afterRound: count, failing: count, feedback: str({ max: 10_000 }) }),
  variant('candidate-chosen', { candidate: candidateNumber, passed: count, total: count, reason: str({ max: 2000 }) }),
);
export type SolveEvent = Infer<typeof solveEvent>;
export type SolveEventType = SolveEvent['type'];

export const solveResult = object(
  { rounds: count, answer: text, code: nullable(text), language, metrics: solveMetrics, device, precision },
  {
    /** Present when the solve ran checks on its candidates. */
    verification,
  },
);
export type SolveResult = Infer<typeof solveResult>;

export const validateSolveEvent = validator(solveEvent, 'event');
export const validateSolveMetrics = validator(solveMetrics, 'metrics');
export const validateSolveResult = validator(solveResult, 'result');
export const validateDevice = validator(device, 'device');
