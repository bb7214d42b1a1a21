// Team presets are data (models/*.json): which models, which roles, which links, which defaults.
// This module reads and checks them; team.ts turns one into loaded models and links.
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError, type PresetSummary, type Style } from '../api';
import type { Role } from './prompts';

/** Where a model comes from. */
export type ModelSource =
  | { repo: string; revision?: string; files?: string[] }
  | { path: string }
  | { generated: SyntheticSpec };

export interface SyntheticSpec {
  family: 'llama' | 'qwen2' | 'qwen3' | 'mistral';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  seed: number;
  headDim?: number;
  maxPositionEmbeddings?: number;
  tieWordEmbeddings?: boolean;
}

/** Where a link's weights come from. */
export type LinkSource =
  /** A file inside a model folder or repository (.pt or .safetensors). */
  | { file: string; repo?: string }
  /** Resolved through the released manifests (innerlink_config.json / outerlink_config.json). */
  | { manifest: 'inner'; task: string }
  | { manifest: 'outer'; repo: string; key: string; task: string }
  | { trainingFree: true }
  /** Random weights generated with a seed, for demo teams. */
  | { generated: number };

export interface AgentPreset {
  name: string;
  role: Role;
  model: string;
  domain?: string;
  innerLink: LinkSource;
}

export interface TeamDefaults {
  rounds: number;
  latentSteps: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  /** Token budget of one text message in `text` mode. */
  textMessageTokens: number;
}

export interface TeamPreset {
  name: string;
  description: string;
  demo: boolean;
  style: Style;
  models: Record<string, ModelSource>;
  agents: AgentPreset[];
  /** Keyed "sender->receiver" by agent name. */
  outerLinks: Record<string, LinkSource>;
  defaults: TeamDefaults;
  /** The file it was read from. */
  file: string;
}

const ROLES_BY_STYLE: Record<Style, Role[][]> = {
  sequential: [['planner'], ['critic'], ['solver']],
  mixture: [['expert'], ['summarizer']],
  distillation: [['expert'], ['learner']],
};

export function presetDirectories(): string[] {
  const dirs = [resolve(import.meta.dirname ?? '.', '..', '..', '..', 'models')];
  // The bundled CLI/runtime live in dist/; the presets sit beside it in the package.
  dirs.push(resolve(import.meta.dirname ?? '.', '..', 'models'));
  if (process.env.RECURSIVEMAS_PRESETS) dirs.unshift(...process.env.RECURSIVEMAS_PRESETS.split(':'));
  return [...new Set(dirs)];
}

function fail(file: string, what: string): never {
  throw new UserError(`Team preset ${file}: ${what}`, 'preset-invalid');
}

/** owner/name with the characters the hub allows; anything else could point outside the models folder. */
export function checkRepoId(repo: unknown, file: string): void {
  if (typeof repo !== 'string' || !/^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(repo) || repo.includes('..')) {
    fail(file, `${JSON.stringify(repo)} is not a Hugging Face repository id (owner/name).`);
  }
}

export function parsePreset(json: unknown, file: string): TeamPreset {
  if (!json || typeof json !== 'object') fail(file, 'is not a JSON object.');
  const p = json as Record<string, unknown>;
  const str = (v: unknown, what: string): string => (typeof v === 'string' && v ? v : fail(file, `"${what}" must be a non-empty string.`));
  const name = str(p.name, 'name');
  const style = p.style as Style;
  if (!['sequential', 'mixture', 'distillation'].includes(style)) fail(file, `"style" must be sequential, mixture or distillation, not ${JSON.stringify(p.style)}.`);
  const models = (p.models ?? {}) as Record<string, ModelSource>;
  if (typeof models !== 'object' || Object.keys(models).length === 0) fail(file, '"models" must name at least one model.');
  for (const [key, m] of Object.entries(models)) {
    if (!m || typeof m !== 'object' || !('repo' in m || 'path' in m || 'generated' in m)) fail(file, `model "${key}" needs "repo", "path" or "generated".`);
    if ('repo' in m) checkRepoId(m.repo, file);
  }
  const agents = p.agents as AgentPreset[];
  if (!Array.isArray(agents) || agents.length < 2) fail(file, '"agents" must list at least two agents.');
  const seen = new Set<string>();
  for (const a of agents) {
    str(a?.name, 'agents[].name');
    if (seen.has(a.name)) fail(file, `two agents are named "${a.name}".`);
    seen.add(a.name);
    if (!models[a.model]) fail(file, `agent "${a.name}" uses the model "${a.model}", which "models" does not define (defined: ${Object.keys(models).join(', ')}).`);
    if (!a.innerLink) fail(file, `agent "${a.name}" has no "innerLink".`);
  }
  const groups = ROLES_BY_STYLE[style];
  const roles = agents.map((a) => a.role);
  for (const group of groups) {
    if (!roles.some((r) => group.includes(r))) fail(file, `a ${style} team needs a ${group.join(' or ')}.`);
  }
  const outerLinks = (p.outerLinks ?? {}) as Record<string, LinkSource>;
  for (const link of [...Object.values(outerLinks), ...agents.map((a) => a.innerLink)]) {
    if ('repo' in link && link.repo !== undefined) checkRepoId(link.repo, file);
  }
  const d = (p.defaults ?? {}) as Partial<TeamDefaults>;
  return {
    name,
    description: typeof p.description === 'string' ? p.description : '',
    demo: p.demo === true,
    style,
    models,
    agents,
    outerLinks,
    defaults: {
      rounds: d.rounds ?? 3,
      latentSteps: d.latentSteps ?? 16,
      temperature: d.temperature ?? 0.2,
      topP: d.topP ?? 0.95,
      maxNewTokens: d.maxNewTokens ?? 4000,
      textMessageTokens: d.textMessageTokens ?? 256,
    },
    file,
  };
}

async function presetFiles(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const dir of presetDirectories()) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names.sort()) if (n.endsWith('.json') && !found.has(n.slice(0, -5))) found.set(n.slice(0, -5), join(dir, n));
  }
  return found;
}

export async function readPreset(name: string): Promise<TeamPreset> {
  const files = await presetFiles();
  const file = name.endsWith('.json') ? resolve(name) : files.get(name);
  if (!file) {
    throw new UserError(`There is no team preset named "${name}". Available: ${[...files.keys()].join(', ')}.`, 'preset-invalid', 'Pick one with "RecursiveMAS: Select Team" or --team.');
  }
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    fail(file, `cannot be read as JSON (${(e as Error).message}).`);
  }
  return parsePreset(json, file);
}

export function reposOf(preset: TeamPreset): string[] {
  const repos = new Set<string>();
  for (const m of Object.values(preset.models)) if ('repo' in m) repos.add(m.repo);
  for (const l of Object.values(preset.outerLinks)) if ('repo' in l && l.repo) repos.add(l.repo);
  for (const a of preset.agents) if ('repo' in a.innerLink && a.innerLink.repo) repos.add(a.innerLink.repo);
  return [...repos];
}

export async function listPresets(): Promise<PresetSummary[]> {
  const out: PresetSummary[] = [];
  for (const [, file] of await presetFiles()) {
    try {
      const p = parsePreset(JSON.parse(await readFile(file, 'utf8')), file);
      out.push({ name: p.name, description: p.description, demo: p.demo, repos: reposOf(p) });
    } catch {
      // A broken preset is reported when it is selected, not while listing the others.
    }
  }
  return out;
}
