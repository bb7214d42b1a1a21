// Team presets as the extension sees them: the JSON files in the extension's `models` folder,
// read as data (the engine that interprets them runs in the runtime process). Used to offer teams
// in "Select Team" and to know which repositories "Download Models" must fetch. No `vscode` here.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TeamRepo {
  repo: string;
  revision?: string;
  /** File globs to fetch (all files when absent). */
  files?: string[];
}

export interface TeamSummary {
  name: string;
  description: string;
  demo: boolean;
  style: string;
  agents: { name: string; role: string; model: string }[];
  repos: TeamRepo[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/** Reads one preset's summary; null when the file is not a usable preset. */
export function summarizePreset(json: unknown): TeamSummary | null {
  if (!isObj(json)) return null;
  const name = str(json.name);
  if (!name || !Array.isArray(json.agents)) return null;
  const repos = new Map<string, TeamRepo>();
  const addRepo = (r: TeamRepo) => {
    const known = repos.get(r.repo);
    if (!known) repos.set(r.repo, r);
    else if (known.files && r.files) known.files = [...new Set([...known.files, ...r.files])];
    else known.files = undefined;
  };
  const models = isObj(json.models) ? json.models : {};
  for (const m of Object.values(models)) {
    if (isObj(m) && str(m.repo)) {
      const files = Array.isArray(m.files) && m.files.every((f) => typeof f === 'string') ? (m.files as string[]) : undefined;
      addRepo({ repo: m.repo as string, revision: str(m.revision), files });
    }
  }
  const links = [...Object.values(isObj(json.outerLinks) ? json.outerLinks : {}), ...json.agents.map((a) => (isObj(a) ? a.innerLink : undefined))];
  for (const l of links) if (isObj(l) && str(l.repo)) addRepo({ repo: l.repo as string });
  const agents = json.agents.filter(isObj).map((a) => ({ name: str(a.name) ?? '?', role: str(a.role) ?? '?', model: str(a.model) ?? '?' }));
  return { name, description: str(json.description) ?? '', demo: json.demo === true, style: str(json.style) ?? 'sequential', agents, repos: [...repos.values()] };
}

/** Every preset in `folder`, sorted: real teams first, then demo teams, each by name. */
export async function listTeams(folder: string): Promise<TeamSummary[]> {
  const names = await readdir(folder).catch(() => [] as string[]);
  const out: TeamSummary[] = [];
  for (const n of names.filter((f) => f.endsWith('.json')).sort()) {
    try {
      const s = summarizePreset(JSON.parse(await readFile(join(folder, n), 'utf8')));
      if (s) out.push(s);
    } catch {
      // A broken preset file is reported by the runtime when it is selected.
    }
  }
  return out.sort((a, b) => Number(a.demo) - Number(b.demo) || a.name.localeCompare(b.name));
}
