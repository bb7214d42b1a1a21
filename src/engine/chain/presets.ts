// Team presets are data (models/*.json): which models, which roles, which links, which defaults.
// This module reads and checks them; team.ts turns one into loaded models and links.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError, type PresetSummary, type Style } from '../api';
import { HF_FAMILIES } from '../model/families/index';
import { parsePromptSet, type PromptSet, type Role } from './prompts';
import type { SyntheticSpec } from '../model/synthetic';
import type { LinkFileSource } from '../links/manifest';

/** Where a model comes from. */
export type ModelSource =
  | {
      repo: string;
      revision?: string;
      files?: string[];
      /** config.json's model_type, known before download so a family we cannot build is refused up front. */
      family?: string;
      /** Parameter count from the model card (billions), for sizes shown before download. */
      parametersB?: number;
    }
  | { path: string }
  | { generated: SyntheticSpec };

export type { SyntheticSpec };

/** Where a link's weights come from. */
export type LinkSource =
  | LinkFileSource
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
  style: PresetStyle;
  /** The role wording (models/prompts/<name>.json, or inline in the preset). */
  prompts: PromptSet;
  /** Benchmark scores the authors report for this release (their README), e.g. {"MBPP+": 37.3}. */
  reference: Record<string, number>;
  /** Set when the team cannot run yet: what it needs that this version lacks. */
  lacks?: string;
  models: Record<string, ModelSource>;
  agents: AgentPreset[];
  /** Keyed "sender->receiver" by agent name. */
  outerLinks: Record<string, LinkSource>;
  defaults: TeamDefaults;
  /** The file it was read from. */
  file: string;
}

/** The styles the engine runs, plus released ones it can list but not run yet (the preset says what it lacks). */
export type PresetStyle = Style | 'deliberation';

const ROLES_BY_STYLE: Record<PresetStyle, Role[][]> = {
  sequential: [['planner'], ['critic'], ['solver']],
  mixture: [['expert'], ['summarizer']],
  distillation: [['expert'], ['learner']],
  deliberation: [],
};

const DEFAULT_PROMPTS = 'code';

export function presetDirectories(): string[] {
  // import.meta.url, unlike import.meta.dirname, is also defined in the extension host's CJS bundle.
  const here = dirname(fileURLToPath(import.meta.url));
  const dirs = [resolve(here, '..', '..', '..', 'models')];
  // The bundled CLI/runtime live in dist/; the presets sit beside it in the package.
  dirs.push(resolve(here, '..', 'models'));
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

/** A preset's prompt set: inline, or by name from a `prompts` folder beside the preset (then the built-in one). */
async function loadPromptSet(value: unknown, file: string): Promise<PromptSet> {
  if (value !== undefined && typeof value === 'object') return parsePromptSet(value, `${file} (prompts)`);
  const name = value ?? DEFAULT_PROMPTS;
  if (typeof name !== 'string' || !/^[\w.-]+$/.test(name)) fail(file, `"prompts" must be a prompt set's name or an object, not ${JSON.stringify(value)}.`);
  for (const dir of [join(dirname(file), 'prompts'), ...presetDirectories().map((d) => join(d, 'prompts'))]) {
    const path = join(dir, `${name}.json`);
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UserError(`Prompt set ${path} cannot be read as JSON (${(e as Error).message}).`, 'preset-invalid');
    }
    return parsePromptSet(json, path);
  }
  return fail(file, `names the prompt set "${name}", but there is no prompts/${name}.json beside it or among the built-in prompt sets.`);
}

export function parsePreset(json: unknown, file: string, prompts: PromptSet): TeamPreset {
  if (!json || typeof json !== 'object') fail(file, 'is not a JSON object.');
  const p = json as Record<string, unknown>;
  const str = (v: unknown, what: string): string => (typeof v === 'string' && v ? v : fail(file, `"${what}" must be a non-empty string.`));
  const name = str(p.name, 'name');
  const style = p.style as PresetStyle;
  if (!Object.hasOwn(ROLES_BY_STYLE, style)) fail(file, `"style" must be sequential, mixture or distillation, not ${JSON.stringify(p.style)}.`);
  const lacks = p.lacks === undefined ? undefined : str(p.lacks, 'lacks');
  if (style === 'deliberation' && !lacks) fail(file, 'a deliberation team cannot run in this version; the preset must say what it lacks ("lacks").');
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
  if (!lacks) {
    for (const r of new Set(roles)) if (!prompts.roles[r]) fail(file, `its prompt set "${prompts.name}" has no wording for the role ${r}.`);
  }
  const reference = (p.reference ?? {}) as Record<string, unknown>;
  if (typeof reference !== 'object' || Object.values(reference).some((v) => typeof v !== 'number')) fail(file, '"reference" must map benchmark names to scores.');
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
    prompts,
    reference: reference as Record<string, number>,
    ...(lacks ? { lacks } : {}),
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
  return parsePreset(json, file, await loadPromptSet((json as Record<string, unknown> | null)?.prompts, file));
}

/** Families a preset's models declare that the engine cannot build (known before anything is downloaded). */
export function unsupportedFamilies(preset: Pick<TeamPreset, 'models'>): string[] {
  const out = new Set<string>();
  for (const m of Object.values(preset.models)) if ('repo' in m && m.family && !Object.hasOwn(HF_FAMILIES, m.family)) out.add(m.family);
  return [...out];
}

/** The ordered pairs a style passes messages along. */
export function messagePairs(preset: Pick<TeamPreset, 'agents' | 'style'>, rounds: number): [string, string][] {
  const by = (role: string) => preset.agents.filter((a) => a.role === role).map((a) => a.name);
  const pairs: [string, string][] = [];
  if (preset.style === 'sequential') {
    const [p, c, s] = [by('planner')[0]!, by('critic')[0]!, by('solver')[0]!];
    pairs.push([p, c], [c, s]);
    if (rounds > 1) pairs.push([s, p]);
  } else {
    const hub = preset.style === 'mixture' ? by('summarizer')[0]! : by('learner')[0]!;
    for (const e of by('expert')) {
      pairs.push([e, hub]);
      if (rounds > 1) pairs.push([hub, e]);
    }
  }
  return pairs;
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
      const p = await readPreset(file);
      out.push({
        name: p.name,
        description: p.description,
        demo: p.demo,
        repos: reposOf(p),
        reference: p.reference,
        blockers: [...(p.lacks ? [p.lacks] : []), ...unsupportedFamilies(p).map((f) => `the ${f} model family`)],
      });
    } catch {
      // A broken preset is reported when it is selected, not while listing the others.
    }
  }
  return out;
}
