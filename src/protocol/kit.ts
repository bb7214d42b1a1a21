// The validator kit every message shape is written with. A schema checks a value at run time and
// carries its TypeScript type, so a message's type is inferred from its validator (`Infer`) and
// the two cannot drift apart. A failure lists every bad field by its path ("params.rounds").
// Imports nothing: the webview bundle, the extension, the runtime and the engine all use it.

/** Checks a value; pushes one line per problem, each starting with `path`. */
export type Check = (value: unknown, path: string, issues: string[]) => void;

export interface Schema<T> {
  readonly check: Check;
  /** Never set: it only carries the type for `Infer`. */
  readonly __type?: T;
}

/** The type a schema accepts. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

type Fields = Record<string, Schema<unknown>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type ObjectOf<R extends Fields, O extends Fields> = Simplify<{ -readonly [K in keyof R]: Infer<R[K]> } & { -readonly [K in keyof O]?: Infer<O[K]> }>;

export type Validation<T> = { ok: true; value: T } | { ok: false; issues: string[]; message: string };
export type Validator<T> = (value: unknown) => Validation<T>;

/** A message that does not have its declared shape. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  constructor(
    readonly what: string,
    readonly issues: string[],
  ) {
    super(formatIssues(what, issues));
  }
}

export function formatIssues(what: string, issues: string[]): string {
  const shown = issues.slice(0, 8);
  const more = issues.length > shown.length ? `\n  ... and ${issues.length - shown.length} more` : '';
  return `invalid ${what}:\n  ${shown.join('\n  ')}${more}`;
}

/** Returns the value when valid, throws a ProtocolError listing every bad field otherwise. */
export function expectValid<T>(result: Validation<T>, what: string): T {
  if (result.ok) return result.value;
  throw new ProtocolError(what, result.issues);
}

/** A function that checks `value` against `schema`; `root` starts every issue's path. */
export function validator<T>(schema: Schema<T>, root: string): Validator<T> {
  return (value) => {
    const issues: string[] = [];
    schema.check(value, root, issues);
    // The checks just proved the shape; this is the one place the kit trusts them.
    return issues.length === 0 ? { ok: true, value: value as T } : { ok: false, issues, message: formatIssues(root, issues) };
  };
}

/** A schema from a hand-written check, for the rare shape the builders below do not cover. */
export function custom<T>(check: Check): Schema<T> {
  return { check };
}

export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return `a ${typeof value}`;
}

export function str(options: { min?: number; max?: number } = {}): Schema<string> {
  const min = options.min ?? 0;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return custom<string>((v, path, issues) => {
    if (typeof v !== 'string') issues.push(`${path}: expected a string, got ${show(v)}`);
    else if (v.length < min) issues.push(min === 1 ? `${path}: must not be empty` : `${path}: must have at least ${min} characters`);
    else if (v.length > max) issues.push(`${path}: must have at most ${max} characters, got ${v.length}`);
  });
}

export interface NumberRange {
  min?: number;
  max?: number;
  /** `min` itself is refused (a probability above 0). */
  aboveMin?: boolean;
}

export function num(options: NumberRange & { int?: boolean } = {}): Schema<number> {
  const kind = options.int ? 'a whole number' : 'a number';
  const { min, max } = options;
  const range =
    min !== undefined && max !== undefined ? ` from ${min} to ${max}` : min !== undefined ? ` of at least ${min}` : max !== undefined ? ` of at most ${max}` : '';
  return custom<number>((v, path, issues) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) issues.push(`${path}: expected ${kind}${range}, got ${show(v)}`);
    else if (options.int && !Number.isInteger(v)) issues.push(`${path}: expected ${kind}${range}, got ${v}`);
    else if ((min !== undefined && v < min) || (max !== undefined && v > max)) issues.push(`${path}: expected ${kind}${range}, got ${v}`);
    else if (options.aboveMin && v === min) issues.push(`${path}: must be above ${min}, got ${v}`);
  });
}

export function int(range: NumberRange = {}): Schema<number> {
  return num({ ...range, int: true });
}

export const bool: Schema<boolean> = custom<boolean>((v, path, issues) => {
  if (typeof v !== 'boolean') issues.push(`${path}: expected true or false, got ${show(v)}`);
});

/** One of a fixed list of strings; the list is usually a vocabulary exported beside the schema. */
export function oneOf<const V extends readonly string[]>(values: V): Schema<V[number]> {
  return custom<V[number]>((v, path, issues) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) issues.push(`${path}: expected one of ${values.map((a) => JSON.stringify(a)).join(', ')}, got ${show(v)}`);
  });
}

export function nullable<T>(schema: Schema<T>): Schema<T | null> {
  return custom<T | null>((v, path, issues) => {
    if (v !== null) schema.check(v, path, issues);
  });
}

export function arrayOf<T>(item: Schema<T>, max = 100_000): Schema<T[]> {
  return custom<T[]>((v, path, issues) => {
    if (!Array.isArray(v)) {
      issues.push(`${path}: expected an array, got ${show(v)}`);
      return;
    }
    if (v.length > max) {
      issues.push(`${path}: must have at most ${max} items, got ${v.length}`);
      return;
    }
    v.forEach((x, i) => item.check(x, `${path}[${i}]`, issues));
  });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkFields(v: Record<string, unknown>, required: Fields, optional: Fields, path: string, issues: string[], skip?: string): void {
  for (const [key, schema] of Object.entries(required)) {
    if (key === skip) continue;
    const value = v[key];
    if (!Object.hasOwn(v, key) || value === undefined) issues.push(`${path}.${key}: is required`);
    else schema.check(value, `${path}.${key}`, issues);
  }
  for (const [key, schema] of Object.entries(optional)) {
    const value = v[key];
    if (Object.hasOwn(v, key) && value !== undefined) schema.check(value, `${path}.${key}`, issues);
  }
  // Unknown fields are refused, so a mismatched client and runtime fail loudly, not subtly.
  for (const key of Object.keys(v)) {
    if (key !== skip && !Object.hasOwn(required, key) && !Object.hasOwn(optional, key)) issues.push(`${path}.${key}: is not a known field`);
  }
}

/** An object with `required` fields and `optional` ones (absent or undefined); no other fields. */
export function object<R extends Fields, O extends Fields = Record<never, never>>(required: R, optional?: O): Schema<ObjectOf<R, O>> {
  return custom<ObjectOf<R, O>>((v, path, issues) => {
    if (!isPlainObject(v)) issues.push(`${path}: expected an object, got ${show(v)}`);
    else checkFields(v, required, optional ?? {}, path, issues);
  });
}

/** One member of a union told apart by its `type` field. */
export interface Variant<Tag extends string, T> extends Schema<T> {
  readonly tag: Tag;
  readonly required: Fields;
  readonly optional: Fields;
}

export function variant<const Tag extends string, R extends Fields, O extends Fields = Record<never, never>>(
  tag: Tag,
  required: R,
  optional?: O,
): Variant<Tag, Simplify<{ type: Tag } & ObjectOf<R, O>>> {
  return {
    tag,
    required,
    optional: optional ?? {},
    check: (v, path, issues) => {
      if (!isPlainObject(v)) issues.push(`${path}: expected an object, got ${show(v)}`);
      else if (v.type !== tag) issues.push(`${path}.type: expected ${JSON.stringify(tag)}, got ${show(v.type)}`);
      else checkFields(v, required, optional ?? {}, path, issues, 'type');
    },
  };
}

/** A union of variants; `tags` lists their `type` values in order. */
export interface Tagged<T, Tag extends string> extends Schema<T> {
  readonly tags: readonly Tag[];
}

export function tagged<const V extends readonly Variant<string, unknown>[]>(...variants: V): Tagged<Infer<V[number]>, V[number]['tag']> {
  const byTag = new Map<string, Variant<string, unknown>>(variants.map((x) => [x.tag, x] as const));
  const tags = variants.map((x) => x.tag);
  return {
    tags,
    check: (v, path, issues) => {
      if (!isPlainObject(v)) {
        issues.push(`${path}: expected an object, got ${show(v)}`);
        return;
      }
      const chosen = typeof v.type === 'string' ? byTag.get(v.type) : undefined;
      if (!chosen) issues.push(`${path}.type: expected one of ${tags.join(', ')}, got ${show(v.type)}`);
      else chosen.check(v, path, issues);
    },
  };
}
