// The one event stream of a solve. The engine emits it, the runtime forwards it as JSON-RPC
// notifications, the extension and the webview render it. This file imports nothing, so every
// layer may depend on it.

export type Mode = 'latent' | 'text' | 'single';
export type Style = 'sequential' | 'mixture' | 'distillation';
export type Device = 'cpu' | 'webgpu' | 'cuda';
/** How a model's linear weights are stored in its graph. */
export type Precision = 'fp32' | 'fp16' | 'int4';

export interface StageTiming {
  round: number;
  agent: string;
  /** What the stage did: a latent rollout, a text message, the final decode, an answer retry. */
  kind: 'latent' | 'text' | 'decode' | 'retry';
  ms: number;
  /** Of `ms`, the prompt's prefill; the rest ran `steps` model steps (latent steps after the first thought, or tokens written). */
  promptMs?: number;
  steps?: number;
}

export interface SolveMetrics {
  wallMs: number;
  stages: StageTiming[];
  promptTokens: number;
  latentSteps: number;
  textTokens: number;
  /** Prompt positions not run again because an earlier round's prefix state was reused. */
  reusedPromptTokens?: number;
  device: Device;
  precision: Precision;
}

export type SolveEvent =
  | { type: 'team-loading'; team: string; model: string; index: number; count: number }
  | { type: 'team-loaded'; team: string; agents: { name: string; role: string; model: string }[]; device: Device; precision: Precision; ms: number }
  | { type: 'solve-start'; task: string; language: string; mode: Mode; style: Style; rounds: number; latentSteps: number }
  | { type: 'round-start'; round: number; rounds: number }
  | { type: 'round-end'; round: number; ms: number }
  | { type: 'agent-start'; round: number; agent: string; role: string; action: 'latent' | 'text' | 'decode' }
  | { type: 'latent-step'; round: number; agent: string; step: number; steps: number }
  | { type: 'agent-end'; round: number; agent: string; ms: number; promptTokens: number; latentSteps: number; textTokens: number }
  | { type: 'handoff'; round: number; from: string; to: string; vectors: number; meanNorm: number; maxNorm: number; text?: string }
  | { type: 'token'; round: number; agent: string; text: string }
  | { type: 'retry'; reason: string }
  | { type: 'answer'; text: string; code: string | null; language: string }
  | { type: 'metrics'; metrics: SolveMetrics }
  | { type: 'warning'; message: string }
  // Checks on candidates (src/engine/verify): the plan first, then per candidate each check's
  // start and end, a repair round before each new candidate, and the final choice.
  | { type: 'check-plan'; checks: CheckInfo[]; maxRepairs: number; isolation: Isolation }
  | { type: 'check-start'; candidate: number; check: string }
  | ({ type: 'check-end'; candidate: number } & CheckOutcome)
  | { type: 'repair-round'; repair: number; maxRepairs: number; candidate: number; afterRound: number; failing: number; feedback: string }
  | { type: 'candidate-chosen'; candidate: number; passed: number; total: number; reason: string };

export type SolveEventType = SolveEvent['type'];

export type CheckKind = 'command' | 'doctest' | 'assert' | 'example';
export type CheckStatus = 'passed' | 'failed' | 'errored' | 'timed-out';

/** One check a candidate is run against; `id` names it in check events. */
export interface CheckInfo {
  id: string;
  kind: CheckKind;
  /** What runs, for people ("pytest -q tests/test_parse.py", "3 doctest examples"). */
  label: string;
}

export interface CheckOutcome {
  check: string;
  status: CheckStatus;
  ms: number;
  /** The first failing assertion or example, or why the check could not run. */
  firstFailure?: string;
  /** The end of the check's output, trimmed. */
  output: string;
}

/** What the sandbox could enforce on this machine, said plainly. */
export interface Isolation {
  /** True when checks run in a network namespace of their own (no network at all). */
  network: boolean;
  /** 'refused': the file system outside the temporary folder is read-only; 'detected': writes into the project are only looked for afterwards. */
  writes: 'refused' | 'detected';
  note: string;
}

export interface CandidateChecks {
  candidate: number;
  passed: number;
  results: CheckOutcome[];
}

/** The checks' part of a solve's result. */
export interface Verification {
  checks: CheckInfo[];
  isolation: Isolation;
  candidates: CandidateChecks[];
  /** The candidate whose code is the answer (1 is the first solve, 2 the first repair...). */
  chosen: number;
  reason: string;
}

export interface SolveResult {
  rounds: number;
  answer: string;
  code: string | null;
  language: string;
  metrics: SolveMetrics;
  device: Device;
  precision: Precision;
  /** Present when the solve ran checks on its candidates. */
  verification?: Verification;
}
