// Role prompts. Their wording is data (models/prompts/*.json, chosen by each preset) and their
// structure follows the released prompt builders (the official repository's prompts.py), because
// the links were trained on it: a generic system line; in the user message a role sentence, the
// interface line, and the slot blocks placed per role (solver, learner, summarizer and the experts'
// feedback BEFORE the problem; critic and the planner's feedback AFTER it; no slot for a first-round
// planner or expert), then the output format.
import type { ChatMessage } from '../tokenizer/hf';
import { UserError } from '../api';

export type Role = 'planner' | 'critic' | 'solver' | 'expert' | 'summarizer' | 'learner';
export const ROLES: readonly Role[] = ['planner', 'critic', 'solver', 'expert', 'summarizer', 'learner'];

/** Marker for the i-th slot; the prompt is split here and the incoming vectors spliced in. */
export const slotMarker = (i: number): string => `<<<slot-${i}>>>`;

/** One role's wording. `first` is used while the role has no incoming message, `later` once it has one. */
export interface RoleTemplate {
  first?: string;
  later?: string;
  /** How one incoming message is introduced; `{slot}` is where it goes, `{sender}` who sent it. */
  slot?: string;
}

/**
 * A prompt set. Placeholders: {interface}, {problem}, {slots}, {checks}, {answerFormat}, {language},
 * {fence}, {name}, {task}, {context}, {domain}, {sender}, {slot}.
 */
export interface PromptSet {
  name: string;
  system: string;
  interface: { function: string; program: string; general: string };
  problem: string;
  /** Appended to the problem when the editor sends surrounding code. */
  context: string;
  /** Where the results of the user's checks go in a repair round (empty otherwise). */
  checks: string;
  answerFormat: string;
  /** The plain-text continuation asking for only the code; it ends inside an opened fence. */
  retry: string;
  /** The roles this set words; a preset may only use roles its set has. */
  roles: Partial<Record<Role, RoleTemplate>>;
}

export interface PromptInput {
  role: Role;
  task: string;
  language: string;
  context?: string;
  /** Who the incoming messages come from, one per slot (empty: no slot). */
  senders: string[];
  /** The expert's field, for mixture teams. */
  domain?: string;
  /** Output of the user's checks on the previous candidate, for a repair round. */
  checkFeedback?: string;
}

const PLACEHOLDERS = new Set(['interface', 'problem', 'slots', 'checks', 'answerFormat', 'language', 'fence', 'name', 'task', 'context', 'domain', 'sender', 'slot']);

export function languageName(language: string): string {
  const names: Record<string, string> = {
    python: 'Python', typescript: 'TypeScript', javascript: 'JavaScript', typescriptreact: 'TypeScript (React)',
    javascriptreact: 'JavaScript (React)', cpp: 'C++', c: 'C', csharp: 'C#', java: 'Java', go: 'Go', rust: 'Rust',
    ruby: 'Ruby', php: 'PHP', shellscript: 'Bash', kotlin: 'Kotlin', swift: 'Swift', scala: 'Scala', lua: 'Lua', r: 'R',
  };
  return names[language.toLowerCase()] ?? language;
}

/** The info string for a fenced block in `language` (VS Code language ids mapped to common tags). */
export function fenceTag(language: string): string {
  const tags: Record<string, string> = { shellscript: 'bash', typescriptreact: 'tsx', javascriptreact: 'jsx', csharp: 'csharp' };
  return tags[language.toLowerCase()] ?? language.toLowerCase();
}

/** Fills `{name}` placeholders; every name must be known and given (checked when a set is read). */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{([A-Za-z]+)\}/g, (whole, key: string) => values[key] ?? whole);
}

/** The released interface line: a named function, a stdin/stdout program, or (ours) plain code. */
function interfaceLine(set: PromptSet, task: string, language: string): string {
  const name = /\bfunction\s+(?:named|called)\s+`?([A-Za-z_][\w]*)`?/i.exec(task)?.[1] ?? /`([A-Za-z_][\w]*)\s*\(/.exec(task)?.[1];
  const values = { language: languageName(language), name: name ?? '' };
  if (name) return fill(set.interface.function, values);
  if (/\b(stdin|standard input|reads? (from )?input)\b/i.test(task)) return fill(set.interface.program, values);
  return fill(set.interface.general, values);
}

export function buildRoleMessages(set: PromptSet, p: PromptInput): ChatMessage[] {
  const role = set.roles[p.role];
  if (!role) throw new UserError(`The prompt set "${set.name}" has no wording for the role ${p.role}.`, 'preset-invalid');
  const template = (p.senders.length > 0 ? role.later ?? role.first : role.first ?? role.later)!;
  if (p.senders.length > 0 && !template.includes('{slots}')) {
    throw new UserError(`The prompt set "${set.name}" gives the ${p.role} no place ({slots}) for its incoming messages.`, 'preset-invalid');
  }
  const common = { language: languageName(p.language), fence: fenceTag(p.language), domain: p.domain ?? '' };
  const slots = p.senders.map((sender, i) => fill(role.slot ?? '{slot}\n', { ...common, sender, slot: slotMarker(i) })).join('');
  const context = p.context?.trim() ? fill(set.context, { context: p.context.trim() }) : '';
  const values = {
    ...common,
    interface: interfaceLine(set, p.task, p.language),
    problem: fill(set.problem, { task: p.task.trim(), context }),
    slots,
    checks: p.checkFeedback?.trim() ? fill(set.checks, { checks: p.checkFeedback.trim() }) : '',
    answerFormat: fill(set.answerFormat, common),
  };
  return [
    { role: 'system', content: set.system },
    { role: 'user', content: fill(template, values) },
  ];
}

/** The retry as released: the raw answer continued as plain text, ending inside an opened code fence. */
export function retryContinuation(set: PromptSet, previous: string, language: string): string {
  return `${previous.trimEnd()}\n${fill(set.retry, { language: languageName(language), fence: fenceTag(language) })}`;
}

/** Checks a prompt set read from JSON: every field present, every placeholder known, slots where roles need them. */
export function parsePromptSet(json: unknown, source: string): PromptSet {
  const fail = (what: string): never => {
    throw new UserError(`Prompt set ${source}: ${what}`, 'preset-invalid');
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('is not a JSON object.');
  const o = json as Record<string, unknown>;
  const text = (v: unknown, where: string): string => {
    if (typeof v !== 'string') fail(`"${where}" must be a string.`);
    for (const [, key] of (v as string).matchAll(/\{([A-Za-z]+)\}/g)) {
      if (!PLACEHOLDERS.has(key!)) fail(`"${where}" uses the unknown placeholder {${key}} (known: ${[...PLACEHOLDERS].join(', ')}).`);
    }
    return v as string;
  };
  const iface = (o.interface ?? {}) as Record<string, unknown>;
  const roles = (o.roles ?? fail('"roles" is missing.')) as Record<string, unknown>;
  const parsedRoles: Partial<Record<Role, RoleTemplate>> = {};
  for (const r of Object.keys(roles)) {
    if (!(ROLES as readonly string[]).includes(r)) fail(`"roles.${r}" is not a role (roles: ${ROLES.join(', ')}).`);
    const t = roles[r];
    if (!t || typeof t !== 'object') fail(`"roles.${r}" is not an object.`);
    const rt = t as Record<string, unknown>;
    const out: RoleTemplate = {};
    if (rt.first !== undefined) out.first = text(rt.first, `roles.${r}.first`);
    if (rt.later !== undefined) out.later = text(rt.later, `roles.${r}.later`);
    if (rt.slot !== undefined) out.slot = text(rt.slot, `roles.${r}.slot`);
    if (out.first === undefined && out.later === undefined) fail(`"roles.${r}" needs "first" or "later".`);
    if (out.later !== undefined && !out.later.includes('{slots}')) fail(`"roles.${r}.later" must place the incoming messages with {slots}.`);
    if (out.slot !== undefined && !out.slot.includes('{slot}')) fail(`"roles.${r}.slot" must contain {slot}.`);
    parsedRoles[r as Role] = out;
  }
  const retry = text(o.retry, 'retry');
  if (!/`{3}\{fence\}\n$/.test(retry)) fail('"retry" must end with an opened code fence: ```{fence} and a newline.');
  return {
    name: typeof o.name === 'string' ? o.name : source,
    system: text(o.system, 'system'),
    interface: { function: text(iface.function, 'interface.function'), program: text(iface.program, 'interface.program'), general: text(iface.general, 'interface.general') },
    problem: text(o.problem, 'problem'),
    context: text(o.context, 'context'),
    checks: text(o.checks, 'checks'),
    answerFormat: text(o.answerFormat, 'answerFormat'),
    retry,
    roles: parsedRoles,
  };
}
