// The engine's public types and errors; hosts import them through index.ts (or host.ts).
import type { Device, Mode, Precision, SolveEvent, SolveResult, Style } from '../protocol/events';
import type { UserErrorCode } from '../protocol/errors';
import type { DeviceChoice, SolveParams } from '../protocol/rpc';

export type { Device, DeviceChoice, Mode, Precision, SolveEvent, SolveResult, Style, UserErrorCode };

/** A solve as the engine takes it: the protocol's request without the runtime's routing fields. */
export type SolveRequest = Omit<SolveParams, 'id' | 'team' | 'device' | 'threads' | 'precision' | 'verify'> & {
  topK?: number;
  /** Ask the final agent once more when its answer has no code block (default true). */
  retryForCode?: boolean;
  /** Output of the user's checks on the previous candidate, for a repair round: the planner (or
   * expert) reads it as text in its feedback position, the final agent in its prompt. */
  checkFeedback?: string;
  /** Keep each agent's state after its prompt's text before the first slot and continue from it in
   * later rounds (default true; exact by construction; false for benchmarks and checks). */
  reusePrefixes?: boolean;
};

export interface LoadOptions {
  device: DeviceChoice;
  threads?: number;
  /** Default fp32; `auto` is resolved by the runtime, which knows the device. */
  precision?: Precision;
  /** Where downloaded models live (the model manager's store). */
  modelsDirectory?: string;
  /** Where built ONNX graphs are cached. */
  cacheDirectory?: string;
  onEvent?: (event: SolveEvent) => void;
  signal?: AbortSignal;
  /** Positions of KV cache to plan memory for (default 4096). */
  contextTokens?: number;
  /** Memory the team may use; default: what the OS reports available. */
  availableMemoryBytes?: number;
}

/** Thrown when a solve is cancelled; callers tell it apart from failures by `name`. */
export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor(message = 'cancelled') {
    super(message);
  }
}

/** An error a user can act on: `message` says what happened, `action` what to do. */
export class UserError extends Error {
  override name = 'UserError';
  constructor(
    message: string,
    /** One of the protocol's codes: it travels to the panel, which picks its fix buttons by it. */
    readonly code: UserErrorCode = 'bad-input',
    readonly action?: string,
  ) {
    super(message);
  }
}

export interface AgentInfo {
  name: string;
  role: string;
  model: string;
}

export interface PresetSummary {
  name: string;
  description: string;
  /** True for teams built from generated weights: they exercise the engine but write no useful code. */
  demo: boolean;
  /** Hugging Face repositories the team needs (empty for demo teams). */
  repos: string[];
  /** The authors' reported scores for a released team, e.g. {"MBPP+": 37.3}. */
  reference: Record<string, number>;
  /** What this version lacks to run the team (empty when it can run). */
  blockers: string[];
}

/** A team whose models are loaded on one execution provider, ready to solve. */
export interface LoadedTeam {
  readonly name: string;
  readonly device: Device;
  readonly precision: Precision;
  readonly agents: AgentInfo[];
  readonly warnings: string[];
  solve(request: SolveRequest, onEvent: (event: SolveEvent) => void, signal?: AbortSignal): Promise<SolveResult>;
  dispose(): Promise<void>;
}

/** What a host of the engine drives: the presets it can load and the loading itself (src/engine/index.ts). */
export interface Engine {
  listPresets(): Promise<PresetSummary[]>;
  loadTeam(name: string, options: LoadOptions): Promise<LoadedTeam>;
}
