// Finding the checks a candidate is run against, in the order of preference the user expects:
// a configured test command; else doctests and `assert` lines in the selection or the task; else
// input/expected-output examples in the task (a stdin/stdout program). Pure: no processes, no
// files, so the extension host can show the plan before anything runs.
import type { CheckInfo } from '../../protocol/events';

/** Which runner a check needs; decided by the solve's language. */
export type CheckLanguage = 'python' | 'javascript' | 'typescript';

export type Check = CheckInfo &
  (
    | { kind: 'command'; command: string }
    | { kind: 'doctest'; language: 'python'; source: string }
    | { kind: 'assert'; language: CheckLanguage; lines: string[] }
    | { kind: 'example'; language: CheckLanguage; input: string; expected: string }
  );

export interface CheckSources {
  task: string;
  language: string;
  /** The code the user selected, when it is not the task itself. */
  selection?: string;
  /** The configured test command, when there is one. */
  command?: string;
  /** Look in the task and the selection (false: only the command runs). */
  findChecks: boolean;
}

export function checkLanguage(language: string): CheckLanguage | null {
  const l = language.toLowerCase();
  if (l === 'python') return 'python';
  if (l === 'javascript' || l === 'javascriptreact') return 'javascript';
  if (l === 'typescript' || l === 'typescriptreact') return 'typescript';
  return null;
}

/** The checks for a task, most preferred kind first; empty when there are none. */
export function findChecks(s: CheckSources): Check[] {
  const command = s.command?.trim();
  if (command) return [{ id: 'command', kind: 'command', label: command, command }];
  if (!s.findChecks) return [];
  const language = checkLanguage(s.language);
  if (!language) return [];
  const texts = [s.selection ?? '', s.task];
  const checks: Check[] = [];
  if (language === 'python') {
    const source = uniqueBlocks(texts.map(doctestBlocks).flat()).join('\n');
    const examples = source.split('\n').filter((l) => l.startsWith('>>> ')).length;
    if (examples > 0) checks.push({ id: 'doctest', kind: 'doctest', language, source, label: `${examples} doctest example${examples === 1 ? '' : 's'}` });
  }
  const lines = unique(texts.map((t) => assertLines(t, language)).flat());
  if (lines.length > 0) checks.push({ id: 'assert', kind: 'assert', language, lines, label: `${lines.length} assert line${lines.length === 1 ? '' : 's'}` });
  if (checks.length > 0) return checks;
  examplesIn(s.task).forEach((e, i) => {
    checks.push({ id: `example-${i + 1}`, kind: 'example', language, input: e.input, expected: e.expected, label: `example ${i + 1}: input ${oneLine(e.input)} → ${oneLine(e.expected)}` });
  });
  return checks;
}

/** The kinds present, for a one-line summary. */
export function describeChecks(checks: readonly Check[]): string {
  if (checks.length === 0) return 'no checks';
  const command = checks.find((c) => c.kind === 'command');
  if (command) return `the command ${command.label}`;
  return checks.map((c) => c.label).join(', ');
}

function oneLine(s: string, max = 40): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return JSON.stringify(t.length > max ? `${t.slice(0, max - 1)}…` : t);
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function uniqueBlocks(blocks: string[]): string[] {
  return unique(blocks.map((b) => b.trimEnd()));
}

/**
 * Doctest examples (`>>> ` lines, their `... ` continuations and expected output) as dedented
 * blocks; output ends at a blank line, the next example or the docstring's closing quotes.
 */
export function doctestBlocks(text: string): string[] {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const blocks: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)>>> /.exec(lines[i]!);
    if (!m) continue;
    const indent = m[1]!.length;
    const block: string[] = [];
    while (i < lines.length) {
      const line = lines[i]!;
      const body = line.slice(Math.min(indent, line.length - line.trimStart().length));
      if (block.length > 0 && (body.startsWith('>>> ') || line.trim() === '' || /^("""|''')/.test(line.trim()))) break;
      block.push(body);
      i++;
      // Continuations of this example, then its expected output.
      while (i < lines.length && lines[i]!.slice(indent).startsWith('... ')) block.push(lines[i++]!.slice(indent));
      while (i < lines.length) {
        const out = lines[i]!;
        const t = out.trim();
        if (t === '' || t.startsWith('>>> ') || /^("""|''')/.test(t)) break;
        block.push(out.slice(Math.min(indent, out.length - out.trimStart().length)).replace(/("""|''')\s*$/, ''));
        if (/("""|''')\s*$/.test(t)) {
          i++;
          break;
        }
        i++;
      }
    }
    i--;
    blocks.push(block.join('\n'));
  }
  return blocks;
}

/** Whole-line assertions: Python `assert ...`; JavaScript `assert(...)`, `assert.equal(...)`, `console.assert(...)`. */
export function assertLines(text: string, language: CheckLanguage): string[] {
  const out: string[] = [];
  for (const raw of text.replace(/\r\n?/g, '\n').split('\n')) {
    const line = raw.trim().replace(/^(#|\/\/)\s*/, '');
    if (language === 'python') {
      if (/^assert\s+\S/.test(line) && balanced(line)) out.push(line);
    } else if (/^(console\.)?assert(\.\w+)?\s*\(.*\)\s*;?$/.test(line) && balanced(line)) out.push(line.replace(/;?$/, ';'));
  }
  return out;
}

function balanced(line: string): boolean {
  let depth = 0;
  for (const c of line) {
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    if (depth < 0) return false;
  }
  return depth === 0;
}

/**
 * Input/expected-output pairs written the usual ways: "Input:" then "Output:" (also "Sample
 * input", "Expected output", numbered), each value on the same line or in the lines (or fenced
 * block) below it.
 */
export function examplesIn(task: string): { input: string; expected: string }[] {
  const lines = task.replace(/\r\n?/g, '\n').split('\n');
  const labelled = (word: string) => new RegExp(`^\\s*(?:sample\\s+|example\\s+)?${word}(?:\\s*\\d+)?\\s*:\\s*(.*)$`, 'i');
  const inputLabel = labelled('input');
  const outputLabel = labelled('(?:expected\\s+)?output');
  const pairs: { input: string; expected: string }[] = [];
  // A value: the rest of the label's line, or the lines below it up to a blank line outside a fence.
  const value = (first: string, from: number, stop: RegExp): { text: string; next: number } => {
    if (first.trim() !== '') return { text: first.trim(), next: from };
    const body: string[] = [];
    let fenced = false;
    let i = from;
    for (; i < lines.length; i++) {
      const line = lines[i]!;
      if (/^\s*```/.test(line)) {
        fenced = !fenced;
        body.push(line);
        if (!fenced) {
          i++;
          break;
        }
        continue;
      }
      if (!fenced && (line.trim() === '' ? body.length > 0 : stop.test(line) || inputLabel.test(line) || outputLabel.test(line))) break;
      if (line.trim() !== '' || fenced) body.push(line);
    }
    return { text: unfence(body.join('\n')), next: i };
  };
  for (let i = 0; i < lines.length; i++) {
    const m = inputLabel.exec(lines[i]!);
    if (!m) continue;
    const input = value(m[1]!, i + 1, outputLabel);
    let k = input.next;
    while (k < lines.length && lines[k]!.trim() === '') k++;
    const o = k < lines.length ? outputLabel.exec(lines[k]!) : null;
    if (!o) continue;
    const output = value(o[1]!, k + 1, inputLabel);
    if (output.text !== '') pairs.push({ input: input.text, expected: output.text });
    i = output.next - 1;
  }
  return pairs;
}

function unfence(s: string): string {
  return s.replace(/^\s*```[^\n]*\n/, '').replace(/\n?```\s*$/, '').replace(/^\n+|\s+$/g, '');
}
