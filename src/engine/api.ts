// The engine's public surface for the runtime, the CLI, tests and benchmarks.
import type { Device, Mode, SolveEvent, SolveResult, Style } from '../protocol/events';
import type { DeviceChoice, SolveParams } from '../protocol/rpc';

export type { Device, DeviceChoice, Mode, SolveEvent, SolveResult, Style };
export type Precision = 'fp32' | 'fp16' | 'int4';

/** A solve as the engine takes it: the protocol's request without the runtime's routing fields. */
export type SolveRequest = Omit<SolveParams, 'id' | 'team' | 'device' | 'threads'> & {
  topK?: number;
  /** Ask the final agent once more when its answer has no code block (default true). */
  retryForCode?: boolean;
};

export interface LoadOptions {
  device: DeviceChoice;
  threads?: number;
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
    readonly code:
      | 'bad-input'
      | 'model-missing'
      | 'model-invalid'
      | 'unsupported'
      | 'out-of-memory'
      | 'device-unavailable'
      | 'link-mismatch'
      | 'preset-invalid' = 'bad-input',
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
}

/** A team whose models are loaded on one execution provider, ready to solve. */
export interface LoadedTeam {
  readonly name: string;
  readonly device: Device;
  readonly agents: AgentInfo[];
  readonly warnings: string[];
  solve(request: SolveRequest, onEvent: (event: SolveEvent) => void, signal?: AbortSignal): Promise<SolveResult>;
  dispose(): Promise<void>;
}
