// Pure text logic behind "Insert at cursor" and "Replace selection": fitting generated code to the
// indentation of the target line and checking that a selection is still what the user selected.
// No `vscode` import, so unit tests run it under plain Node; editor.ts applies the results.

export interface IndentStyle {
  insertSpaces: boolean;
  tabSize: number;
}

export interface TextEdit {
  /** Offsets into the document text (UTF-16 code units, like VS Code's offsetAt). */
  start: number;
  end: number;
  text: string;
}

const LINE_SPLIT = /\r\n|\r|\n/;

export function leadingWhitespace(line: string): string {
  return /^[ \t]*/.exec(line)![0];
}

/** Visual width of a run of indentation, tabs counting up to the next tab stop. */
export function indentWidth(ws: string, tabSize: number): number {
  let w = 0;
  for (const ch of ws) w = ch === '\t' ? w + tabSize - (w % tabSize) : w + 1;
  return w;
}

/** "1 line" or "N lines", counted as the panel counts them. */
export { linesLabel } from '../protocol/webview';

function isBlank(line: string): boolean {
  return line.trim() === '';
}

/**
 * The indentation step of `lines`: the most common positive difference between the widths of
 * consecutive indented lines (how code indented by 2 or 4 spaces is told apart), or the tab size
 * when the code indents with tabs.
 */
export function detectIndentUnit(lines: string[], tabSize: number): number {
  const counts = new Map<number, number>();
  let prev = 0;
  let sawTab = false;
  for (const line of lines) {
    if (isBlank(line)) continue;
    const ws = leadingWhitespace(line);
    if (ws.includes('\t')) sawTab = true;
    const w = indentWidth(ws, tabSize);
    const d = Math.abs(w - prev);
    if (d > 0) counts.set(d, (counts.get(d) ?? 0) + 1);
    prev = w;
  }
  if (counts.size === 0) return sawTab ? tabSize : 4;
  let best = 0;
  let bestCount = -1;
  for (const [d, c] of counts) if (c > bestCount || (c === bestCount && d < best)) [best, bestCount] = [d, c];
  return best;
}

/**
 * Re-indents `code` so that its least indented lines sit at `baseIndent`, deeper levels use the
 * target's style (tabs or N spaces). Returns the lines (join them with the document's line ending).
 * Blank lines carry no indentation; leading and trailing blank lines are dropped.
 */
export function reindent(code: string, baseIndent: string, target: IndentStyle): string[] {
  const lines = code.replace(/\s+$/, '').split(LINE_SPLIT);
  while (lines.length > 1 && isBlank(lines[0]!)) lines.shift();
  const tab = target.tabSize > 0 ? target.tabSize : 4;
  const unit = detectIndentUnit(lines, tab);
  const widths = lines.map((l) => (isBlank(l) ? Infinity : indentWidth(leadingWhitespace(l), tab)));
  const min = Math.min(...widths.filter((w) => w !== Infinity), Infinity);
  const step = target.insertSpaces ? ' '.repeat(tab) : '\t';
  return lines.map((line, i) => {
    if (isBlank(line)) return '';
    const rel = widths[i]! - (min === Infinity ? 0 : min);
    const levels = Math.floor(rel / unit);
    const rest = rel - levels * unit;
    return baseIndent + step.repeat(levels) + ' '.repeat(rest) + line.slice(leadingWhitespace(line).length).replace(/[ \t]+$/, '');
  });
}

export function detectEol(text: string): '\n' | '\r\n' {
  return text.includes('\r\n') ? '\r\n' : '\n';
}

/**
 * Text to insert at a cursor on `lineText` (column `column`) so the code lines up with that line.
 * - cursor in the line's indentation (or on a blank line): the block starts there and keeps that
 *   indentation; text after the cursor moves below the block at the same indentation;
 * - cursor after code on the line: the block goes on the next lines, at the line's indentation,
 *   so it never splits an expression in two.
 */
export function planInsertAtCursor(code: string, lineText: string, column: number, target: IndentStyle, eol: string): string {
  const before = lineText.slice(0, column);
  const after = lineText.slice(column);
  const lineIndent = leadingWhitespace(lineText);
  if (isBlank(before)) {
    const lines = reindent(code, before, target);
    lines[0] = lines[0]!.slice(before.length);
    let text = lines.join(eol);
    if (!isBlank(after)) text += eol + before;
    return text;
  }
  const lines = reindent(code, lineIndent, target);
  let text = eol + lines.join(eol);
  if (!isBlank(after)) text += eol + lineIndent;
  return text;
}

/**
 * Text that replaces a selection starting at `startColumn` of `firstLineText`. The code takes the
 * indentation of the selected block's first line. When the selection ended with a line break (whole
 * lines selected), the replacement does too.
 */
export function planReplaceSelection(code: string, firstLineText: string, startColumn: number, selectedText: string, target: IndentStyle, eol: string): string {
  const lineIndent = leadingWhitespace(firstLineText);
  const before = firstLineText.slice(0, startColumn);
  const inIndent = isBlank(before);
  // A selection that starts at column 0 of an indented line carries that indentation itself.
  const base = inIndent ? (startColumn <= lineIndent.length ? lineIndent : before) : lineIndent;
  const lines = reindent(code, base, target);
  if (inIndent) lines[0] = lines[0]!.slice(Math.min(startColumn, base.length));
  else lines[0] = lines[0]!.slice(base.length);
  let text = lines.join(eol);
  if (/(\r\n|\r|\n)$/.test(selectedText)) text += eol;
  return text;
}

export type SelectionCheck =
  | { status: 'unchanged'; start: number; end: number }
  /** The same text is still there once, but edits above it moved it. */
  | { status: 'moved'; start: number; end: number }
  | { status: 'changed'; reason: string };

/**
 * Whether the text the solve started from is still where it was. `original` is the selected text
 * captured when the solve started, `start`/`end` its offsets then.
 */
export function checkSelection(documentText: string, start: number, end: number, original: string): SelectionCheck {
  if (documentText.slice(start, end) === original) return { status: 'unchanged', start, end };
  if (original.length === 0) return { status: 'changed', reason: 'the selection was empty' };
  const first = documentText.indexOf(original);
  if (first === -1) return { status: 'changed', reason: 'the selected text was edited since the solve started' };
  if (documentText.indexOf(original, first + 1) !== -1) {
    return { status: 'changed', reason: 'the selected text moved and now appears more than once' };
  }
  return { status: 'moved', start: first, end: first + original.length };
}

/**
 * The code to write for an answer: the extracted code when the solver gave a fenced block, else
 * the answer text with any stray fences removed.
 */
export function codeOfAnswer(answer: { text: string; code: string | null }): string {
  if (answer.code !== null && answer.code.trim() !== '') return answer.code;
  const fenced = /```[^\n`]*\n([\s\S]*?)(```|$)/.exec(answer.text);
  return (fenced ? fenced[1]! : answer.text).replace(/\s+$/, '');
}
