// The `recursivemas.*` settings: one table that both the manifest (package.json "contributes")
// and the reader are derived from, so defaults and ranges cannot drift apart. No `vscode` import:
// the reader takes a getter, so unit tests run it under plain Node.
import type { DeviceChoice, Mode, PrecisionChoice } from '../protocol/events';
import { LIMITS } from '../protocol/limits';

/**
 * An enum setting's values with their descriptions, in the order the Settings UI lists them. Typed
 * by the protocol's vocabulary: a value the runtime takes cannot be left out, nor one it refuses added.
 */
function choices<V extends string>(descriptions: Record<V, string>): { values: readonly V[]; descriptions: readonly string[] } {
  return { values: Object.keys(descriptions) as V[], descriptions: Object.values(descriptions) };
}

export type InsertAction = 'insertAtCursor' | 'replaceSelection' | 'showDiff';

export interface Settings {
  team: string;
  mode: Mode;
  rounds: number;
  latentSteps: number;
  device: DeviceChoice;
  precision: PrecisionChoice;
  /** 0 lets the runtime choose. */
  threads: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** Empty: the extension's global storage folder. */
  modelsDirectory: string;
  huggingFaceEndpoint: string;
  insertAction: InsertAction;
  warmUpOnOpen: boolean;
  contextLines: number;
  /** Empty: no command; checks found in the task still run once the workspace allows checks. */
  verifyCommand: string;
  verifyMaxRepairs: number;
  /** Show diff streams the answer into the file as an inline diff while it is written. */
  diffStream: boolean;
}

type Spec =
  | { kind: 'integer'; default: number; minimum: number; maximum: number; description: string; order: number }
  | { kind: 'number'; default: number; minimum: number; maximum: number; description: string; order: number }
  | { kind: 'boolean'; default: boolean; description: string; order: number }
  | { kind: 'string'; default: string; description: string; order: number; pattern?: string; scope?: 'machine' | 'application' }
  | { kind: 'enum'; default: string; values: readonly string[]; descriptions: readonly string[]; description: string; order: number };

/** Setting key (below `recursivemas.`) -> the Settings field it fills and its schema. */
export const SETTING_SPECS = {
  team: {
    field: 'team',
    spec: { kind: 'string', default: 'sequential-light-code', order: 0, description: 'Agent team preset to solve with (a file in the extension\'s `models` folder). Use "RecursiveMAS: Select Team" to pick one.' },
  },
  mode: {
    field: 'mode',
    spec: {
      kind: 'enum',
      default: 'latent',
      ...choices<Mode>({
        latent: 'Agents exchange latent thoughts (RecursiveMAS).',
        text: 'Agents exchange text messages (a text-based multi-agent baseline).',
        single: 'Only the final agent answers (a single-agent baseline).',
      }),
      order: 1,
      description: 'How the agents collaborate.',
    },
  },
  rounds: {
    field: 'rounds',
    spec: { kind: 'integer', default: 3, minimum: LIMITS.rounds.settings.min, maximum: LIMITS.rounds.settings.max, order: 2, description: 'Number of recursion rounds the team runs before the final agent writes code.' },
  },
  latentSteps: {
    field: 'latentSteps',
    spec: { kind: 'integer', default: 16, minimum: LIMITS.latentSteps.settings.min, maximum: LIMITS.latentSteps.settings.max, order: 3, description: 'Latent thinking steps per agent and round (m). Accuracy grows up to about 64 steps; time grows linearly.' },
  },
  device: {
    field: 'device',
    spec: {
      kind: 'enum',
      default: 'auto',
      ...choices<DeviceChoice>({ auto: 'The fastest available provider.', cuda: 'NVIDIA GPU (needs the CUDA libraries).', webgpu: 'GPU through WebGPU.', cpu: 'CPU only.' }),
      order: 4,
      description: 'Execution provider the models run on. Changing it restarts the runtime.',
    },
  },
  precision: {
    field: 'precision',
    spec: {
      kind: 'enum',
      default: 'auto',
      ...choices<PrecisionChoice>({
        auto: 'fp16 on a GPU, int4 on the CPU.',
        int4: 'Weights in 4 bits: about a quarter of fp32\'s memory, slightly less accurate.',
        int8: 'Weights in 8 bits, CPU only: about twice int4\'s memory, closer to fp32, and on the CPUs measured so far faster than int4.',
        fp16: 'Weights in 16 bits: half of fp32\'s memory on a GPU (on the CPU it costs as much as fp32).',
        fp32: 'Full precision: the most memory.',
      }),
      // Between device and threads in the Settings UI.
      order: 4.5,
      description: 'Precision of the model weights. Changing it reloads the team (the first load at a new precision builds its graphs).',
    },
  },
  threads: {
    field: 'threads',
    spec: { kind: 'integer', default: 0, minimum: LIMITS.threads.settings.min, maximum: LIMITS.threads.settings.max, order: 5, description: 'CPU threads for inference; 0 lets the runtime choose. Changing it restarts the runtime.' },
  },
  maxNewTokens: {
    field: 'maxNewTokens',
    spec: { kind: 'integer', default: 4000, minimum: LIMITS.maxNewTokens.settings.min, maximum: LIMITS.maxNewTokens.settings.max, order: 6, description: 'Most tokens the final agent may write (the released systems were evaluated with 4000).' },
  },
  temperature: {
    field: 'temperature',
    spec: { kind: 'number', default: 0.2, minimum: LIMITS.temperature.settings.min, maximum: LIMITS.temperature.settings.max, order: 7, description: 'Sampling temperature of the final answer; 0 decodes greedily.' },
  },
  topP: {
    field: 'topP',
    spec: { kind: 'number', default: 0.95, minimum: LIMITS.topP.settings.min, maximum: LIMITS.topP.settings.max, order: 8, description: 'Nucleus sampling: keep the smallest set of tokens whose probabilities sum to this.' },
  },
  insertAction: {
    field: 'insertAction',
    spec: {
      kind: 'enum',
      default: 'insertAtCursor',
      values: ['insertAtCursor', 'replaceSelection', 'showDiff'],
      descriptions: ['Insert the code at the cursor.', 'Replace the selection the task came from.', 'Open a diff to accept or discard.'],
      order: 9,
      description: 'The highlighted action in the panel once the code is ready. Nothing is written until you choose it.',
    },
  },
  warmUpOnOpen: {
    field: 'warmUpOnOpen',
    spec: { kind: 'boolean', default: false, order: 10, description: 'Load the team as soon as the panel opens, so the first solve starts faster (uses memory while idle).' },
  },
  contextLines: {
    field: 'contextLines',
    spec: { kind: 'integer', default: 30, minimum: 0, maximum: 400, order: 11, description: 'Lines of surrounding code (above and below the selection) sent with the task; 0 sends none.' },
  },
  modelsDirectory: {
    field: 'modelsDirectory',
    spec: { kind: 'string', default: '', scope: 'machine', order: 12, description: 'Folder for downloaded models. Empty: the extension\'s own storage folder.' },
  },
  'huggingFace.endpoint': {
    field: 'huggingFaceEndpoint',
    spec: {
      kind: 'string',
      default: 'https://huggingface.co',
      // The same rule as the downloader: HTTPS, or plain HTTP only to this machine (a local mirror).
      pattern: '^(https://|http://(localhost|127\\.0\\.0\\.1|\\[::1\\])(:[0-9]+)?(/|$))',
      scope: 'machine',
      order: 13,
      description: 'Hugging Face endpoint (or a mirror) models are downloaded from. HTTPS, or plain HTTP to a mirror on this machine only.',
    },
  },
  'verify.command': {
    field: 'verifyCommand',
    spec: {
      kind: 'string',
      default: '',
      order: 14,
      description:
        'Test command run on each candidate before you see it (e.g. `pytest -q tests/test_parse.py`, `npm test -- parse`), in a temporary copy of the workspace folder with the candidate in place of the selection; a failure sends its output to a repair round. Empty: doctests, `assert` lines or input/output examples in the selection or task are used when there are any. Checks run only in a trusted workspace, after you allowed them once for it.',
    },
  },
  'verify.maxRepairs': {
    field: 'verifyMaxRepairs',
    spec: { kind: 'integer', default: 2, minimum: LIMITS.maxRepairs.settings.min, maximum: LIMITS.maxRepairs.settings.max, order: 15, description: 'How many times the team tries again with the failing check output before the best candidate is kept.' },
  },
  'diff.stream': {
    field: 'diffStream',
    spec: {
      kind: 'boolean',
      default: true,
      order: 16,
      description:
        'Show diff streams the answer into the file as an inline diff while the team writes it: new lines marked as added, the lines they replace as removed, each change accepted or discarded on its own. With Show diff as the highlighted action (`recursivemas.insertAction`) it starts by itself. Off: Show diff opens a side-by-side diff once the answer is ready.',
    },
  },
} as const satisfies Record<string, { field: keyof Settings; spec: Spec }>;

export type SettingKey = keyof typeof SETTING_SPECS;
export const SECTION = 'recursivemas';

/** The settings a team is loaded with: the runtime reloads the team when one of them changes. */
export function teamLoadOptions(s: Settings): { device: DeviceChoice; precision: PrecisionChoice; threads?: number } {
  return { device: s.device, precision: s.precision, threads: s.threads || undefined };
}

/** Settings whose change requires a new runtime process. */
export const RUNTIME_RESTART_KEYS: readonly SettingKey[] = ['device', 'threads'];

/** The `contributes.configuration.properties` object for package.json. */
export function manifestProperties(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, { spec }] of Object.entries(SETTING_SPECS) as [string, { spec: Spec }][]) {
    const p: Record<string, unknown> = { order: spec.order };
    switch (spec.kind) {
      case 'integer':
      case 'number':
        Object.assign(p, { type: spec.kind, default: spec.default, minimum: spec.minimum, maximum: spec.maximum });
        break;
      case 'boolean':
        Object.assign(p, { type: 'boolean', default: spec.default });
        break;
      case 'string':
        Object.assign(p, { type: 'string', default: spec.default });
        if (spec.pattern) Object.assign(p, { pattern: spec.pattern, patternErrorMessage: 'Use an https:// address (http:// only for localhost).' });
        if (spec.scope) p.scope = spec.scope;
        break;
      case 'enum':
        Object.assign(p, { type: 'string', default: spec.default, enum: [...spec.values], enumDescriptions: [...spec.descriptions] });
        break;
    }
    p.markdownDescription = spec.description;
    out[`${SECTION}.${key}`] = p;
  }
  return out;
}

/** A problem with one setting: the value was replaced by the nearest valid one. */
export interface SettingIssue {
  key: string;
  message: string;
}

/**
 * Reads every setting through `get` (e.g. `workspace.getConfiguration('recursivemas').get`),
 * replacing wrong types by the default and clamping numbers into range. Called at each solve,
 * so a changed setting applies without a reload.
 */
export function readSettings(get: (key: string) => unknown, issues: SettingIssue[] = []): Settings {
  const out: Record<string, unknown> = {};
  for (const [key, { field, spec }] of Object.entries(SETTING_SPECS) as [string, { field: string; spec: Spec }][]) {
    out[field] = coerce(key, spec, get(key), issues);
  }
  return out as unknown as Settings;
}

function coerce(key: string, spec: Spec, raw: unknown, issues: SettingIssue[]): unknown {
  if (raw === undefined || raw === null) return spec.default;
  const wrong = (why: string) => {
    issues.push({ key: `${SECTION}.${key}`, message: `${why}; using ${JSON.stringify(spec.default)}.` });
    return spec.default;
  };
  switch (spec.kind) {
    case 'integer':
    case 'number': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n)) return wrong(`${JSON.stringify(raw)} is not a number`);
      const v = spec.kind === 'integer' ? Math.round(n) : n;
      const clamped = Math.min(spec.maximum, Math.max(spec.minimum, v));
      if (clamped !== v) issues.push({ key: `${SECTION}.${key}`, message: `${v} is outside ${spec.minimum}-${spec.maximum}; using ${clamped}.` });
      return clamped;
    }
    case 'boolean':
      return typeof raw === 'boolean' ? raw : wrong(`${JSON.stringify(raw)} is not true or false`);
    case 'string': {
      if (typeof raw !== 'string') return wrong(`${JSON.stringify(raw)} is not text`);
      const v = raw.trim();
      if (spec.pattern && v !== '' && !new RegExp(spec.pattern).test(v)) return wrong(`"${v}" must match ${spec.pattern}`);
      return v === '' && spec.default !== '' ? spec.default : v;
    }
    case 'enum':
      return typeof raw === 'string' && spec.values.includes(raw) ? raw : wrong(`${JSON.stringify(raw)} is not one of ${spec.values.join(', ')}`);
  }
}

/** The keys (without the section) whose values differ between two readings. */
export function changedKeys(a: Settings, b: Settings): SettingKey[] {
  return (Object.keys(SETTING_SPECS) as SettingKey[]).filter((k) => {
    const f = SETTING_SPECS[k].field;
    return a[f] !== b[f];
  });
}

/** True when going from `a` to `b` needs a fresh runtime process. */
export function needsRuntimeRestart(a: Settings, b: Settings): boolean {
  return changedKeys(a, b).some((k) => RUNTIME_RESTART_KEYS.includes(k));
}
