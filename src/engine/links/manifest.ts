// The manifests released with RecursiveMAS link weights:
//   adapter_config.json    {"adapter_type": "ln_res_adapter", ...}
//   innerlink_config.json  {"tasks": {"math": {"adapter.pt": "adapter(math).pt"}, "code": {...}}}
//   outerlink_config.json  {"adapters": [entry...]} (flat) or {"tasks": {"math": {"adapters": [...]}}}
//                          with entry {"legacy_key", "filename", "adapter_type", "in_dim", "out_dim", ...}
// The exact field names of every release are not documented, so reasonable variants are accepted
// (listed below); a shape that matches none is refused with an error naming the file. File names
// from manifests are untrusted: they must be plain relative names that stay inside the folder.
import { UserError } from '../api';
import { checkFileName } from '../safe-path';

/** Link weights read from files: one named file, or one the released manifests name. */
export type LinkFileSource =
  /** A file inside a model folder or repository (.pt or .safetensors). */
  | { file: string; repo?: string }
  /** Resolved through the released manifests (innerlink_config.json / outerlink_config.json). */
  | { manifest: 'inner'; task: string }
  | { manifest: 'outer'; repo: string; key: string; task: string };

export interface OuterLinkEntry {
  key: string;
  file: string;
  type: string;
  inDim: number;
  outDim: number;
}

const KEY_FIELDS = ['legacy_key', 'legacyKey', 'key', 'name', 'id'];
const FILE_FIELDS = ['filename', 'file', 'path', 'file_name', 'fileName', 'weights'];
const TYPE_FIELDS = ['adapter_type', 'adapterType', 'type'];
const IN_FIELDS = ['in_dim', 'input_dim', 'inDim', 'inputDim', 'in_features', 'd_in'];
const OUT_FIELDS = ['out_dim', 'output_dim', 'outDim', 'outputDim', 'out_features', 'd_out'];
const LIST_FIELDS = ['adapters', 'outerlinks', 'outer_links', 'links', 'entries'];
const INNER_FILE_FIELDS = ['adapter.pt', 'filename', 'file', 'path', 'adapter', 'weights'];

/** The only types the released code supports; used when a manifest leaves the type out. */
const DEFAULT_OUTER_TYPE = 'outer_ln_res_adapter';
const DEFAULT_INNER_TYPE = 'ln_res_adapter';
const MAX_DIM = 1 << 20;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(source: string, what: string): UserError {
  return new UserError(`${source}: ${what}.`, 'model-invalid', 'Download the link repository again; if the file is yours, fix it to the released layout.');
}

function first(obj: Json, fields: string[]): [string, unknown] | undefined {
  for (const f of fields) if (obj[f] !== undefined && obj[f] !== null) return [f, obj[f]];
  return undefined;
}

function keysOf(obj: Json): string {
  const keys = Object.keys(obj);
  return keys.length ? keys.map((k) => JSON.stringify(k)).join(', ') : 'no keys';
}

function dim(entry: Json, fields: string[], what: string, where: string, source: string): number {
  const found = first(entry, fields);
  if (!found) throw bad(source, `${where} has no ${what} (expected one of ${fields.join(', ')})`);
  const [field, raw] = found;
  const v = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > MAX_DIM) throw bad(source, `${where} has ${field} = ${JSON.stringify(raw)}, not a positive width`);
  return v;
}

function parseEntry(raw: unknown, where: string, source: string, keyFromMap?: string): OuterLinkEntry {
  if (!isObject(raw)) throw bad(source, `${where} is ${Array.isArray(raw) ? 'a list' : JSON.stringify(raw)}, not an object`);
  const key = first(raw, KEY_FIELDS)?.[1] ?? keyFromMap;
  if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key)) {
    throw bad(source, `${where} has no usable legacy key (expected one of ${KEY_FIELDS.join(', ')}, like "outer_12"; it has ${keysOf(raw)})`);
  }
  const at = `${where} (${key})`;
  const fileField = first(raw, FILE_FIELDS);
  if (!fileField) throw bad(source, `${at} has no file name (expected one of ${FILE_FIELDS.join(', ')})`);
  const file = checkFileName(fileField[1], source);
  const typeField = first(raw, TYPE_FIELDS);
  const type = typeField ? typeField[1] : DEFAULT_OUTER_TYPE;
  if (typeof type !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(type)) throw bad(source, `${at} has the adapter type ${JSON.stringify(type)}`);
  return { key, file, type, inDim: dim(raw, IN_FIELDS, 'input width', at, source), outDim: dim(raw, OUT_FIELDS, 'output width', at, source) };
}

/** Entries from a list, or from an object keyed by legacy key ({"outer_12": {...}}). */
function parseEntries(raw: unknown, where: string, source: string): OuterLinkEntry[] {
  let entries: OuterLinkEntry[];
  if (Array.isArray(raw)) {
    entries = raw.map((e, i) => parseEntry(e, `${where}[${i}]`, source));
  } else if (isObject(raw) && Object.keys(raw).length > 0 && Object.keys(raw).every((k) => k.startsWith('outer_')) && Object.values(raw).every(isObject)) {
    entries = Object.entries(raw).map(([k, e]) => parseEntry(e, `${where}.${k}`, source, k));
  } else {
    throw bad(source, `${where} is not a list of links`);
  }
  if (entries.length === 0) throw bad(source, `${where} lists no links`);
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.key)) throw bad(source, `${where} lists the link ${e.key} twice`);
    seen.add(e.key);
  }
  return entries;
}

/** A task's value: a list, {"adapters": [...]}, or an object keyed by legacy key. */
function taskEntries(raw: unknown, where: string, source: string): OuterLinkEntry[] {
  if (isObject(raw)) {
    const list = first(raw, LIST_FIELDS);
    if (list) return parseEntries(list[1], `${where}.${list[0]}`, source);
  }
  return parseEntries(raw, where, source);
}

function looksLikeTaskValue(v: unknown): boolean {
  return Array.isArray(v) || (isObject(v) && first(v, LIST_FIELDS) !== undefined);
}

/**
 * The outer links of `task`. A flat manifest (a list, or {"adapters": [...]}) serves every task;
 * a per-task one ({"tasks": {task: ...}} or {task: [...], ...}) must name the task.
 */
export function parseOuterLinkConfig(json: unknown, task: string, source: string): OuterLinkEntry[] {
  if (Array.isArray(json)) return parseEntries(json, 'the manifest', source);
  if (!isObject(json)) throw bad(source, 'the manifest is not a JSON object or list');
  const tasks = json['tasks'];
  if (tasks !== undefined && tasks !== null) {
    if (!isObject(tasks)) throw bad(source, '"tasks" is not an object');
    if (!Object.hasOwn(tasks, task)) {
      // A release could carry shared links next to per-task ones.
      const shared = first(json, LIST_FIELDS);
      if (shared) return parseEntries(shared[1], shared[0], source);
      throw new UserError(`${source} has no outer links for the task "${task}" (it has: ${Object.keys(tasks).join(', ') || 'none'}).`, 'link-mismatch');
    }
    return taskEntries(tasks[task], `tasks.${task}`, source);
  }
  const flat = first(json, LIST_FIELDS);
  if (flat) return parseEntries(flat[1], flat[0], source);
  const perTask = Object.entries(json).filter(([, v]) => looksLikeTaskValue(v));
  if (perTask.length > 0) {
    const hit = perTask.find(([k]) => k === task);
    if (!hit) {
      throw new UserError(`${source} has no outer links for the task "${task}" (it has: ${perTask.map(([k]) => k).join(', ')}).`, 'link-mismatch');
    }
    return taskEntries(hit[1], task, source);
  }
  if (Object.keys(json).length > 0 && Object.keys(json).every((k) => k.startsWith('outer_'))) return parseEntries(json, 'the manifest', source);
  throw bad(source, `the manifest has neither a list of links nor per-task lists (it has ${keysOf(json)})`);
}

/** The inner-link file for `task`: {"tasks": {task: {"adapter.pt": file}}}, or {task: file}, and similar. */
export function parseInnerLinkConfig(json: unknown, task: string, source: string): string {
  if (!isObject(json)) throw bad(source, 'the manifest is not a JSON object');
  const tasks = json['tasks'] ?? json;
  if (!isObject(tasks)) throw bad(source, '"tasks" is not an object');
  const known = Object.keys(tasks).filter((k) => typeof tasks[k] === 'string' || isObject(tasks[k]));
  if (!Object.hasOwn(tasks, task)) {
    throw new UserError(`${source} has no inner link for the task "${task}" (it has: ${known.join(', ') || 'none'}).`, 'link-mismatch');
  }
  const value = tasks[task];
  if (typeof value === 'string') return checkFileName(value, source);
  if (isObject(value)) {
    const file = first(value, INNER_FILE_FIELDS);
    if (file) return checkFileName(file[1], source);
    throw bad(source, `the task "${task}" names no file (expected one of ${INNER_FILE_FIELDS.map((f) => JSON.stringify(f)).join(', ')}; it has ${keysOf(value)})`);
  }
  throw bad(source, `the task "${task}" is ${JSON.stringify(value)}, not a file name`);
}

/** The adapter type of an agent repository's adapter_config.json. */
export function parseAdapterConfig(json: unknown, source: string): { type: string } {
  if (!isObject(json)) throw bad(source, 'the adapter config is not a JSON object');
  const found = first(json, [...TYPE_FIELDS, 'inner_adapter_type']);
  const type = found ? found[1] : DEFAULT_INNER_TYPE;
  if (typeof type !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(type)) throw bad(source, `the adapter type ${JSON.stringify(type)} is not a type name`);
  return { type };
}
