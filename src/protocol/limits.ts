// Bounds on what a solve may ask for, in one table. The protocol's validators, the engine's request
// check, the CLI's flags and the VS Code settings (and so package.json) all read it.
// `min`..`max` is what the runtime and the engine accept; `settings` is the narrower range the
// settings offer, past which a solve gets slow without getting better.
export const LIMITS = {
  rounds: { min: 1, max: 16, settings: { min: 1, max: 8 } },
  latentSteps: { min: 1, max: 256, settings: { min: 1, max: 128 } },
  maxNewTokens: { min: 1, max: 32768, settings: { min: 16, max: 8192 } },
  temperature: { min: 0, max: 10, settings: { min: 0, max: 2 } },
  /** A probability: 0 itself is refused. */
  topP: { min: 0, max: 1, aboveMin: true, settings: { min: 0.01, max: 1 } },
  /** 0 lets the runtime choose. */
  threads: { min: 0, max: 1024, settings: { min: 0, max: 256 } },
  maxRepairs: { min: 0, max: 10, settings: { min: 0, max: 10 } },
  taskChars: 100_000,
  contextChars: 400_000,
  idChars: 200,
} as const;

/** The message both the CLI and the engine give for a value outside its range. */
export function outOfRange(what: string, value: number, range: { min: number; max: number }): string | undefined {
  if (Number.isInteger(value) && value >= range.min && value <= range.max) return undefined;
  return `${what} must be a whole number from ${range.min} to ${range.max}, got ${value}.`;
}
