// The line diff behind the live inline diff: which lines of the original region the streamed code
// keeps, which it removes and which it adds, grouped into hunks the user accepts or discards one by
// one. No `vscode` here, so unit tests run it under plain Node.

/** A run of changed lines: original lines [origStart, origEnd) give way to new lines [newStart, newEnd). */
export interface Hunk {
  origStart: number;
  origEnd: number;
  newStart: number;
  newEnd: number;
}

/** Above this many cells the LCS table is not built: the changed middle becomes one hunk. */
const MAX_TABLE_CELLS = 4_000_000;

/** The hunks that turn `before` into `after`, in order, from a longest common subsequence of lines. */
export function diffLines(before: readonly string[], after: readonly string[]): Hunk[] {
  // Common head and tail are kept as they are; the table covers only the middle.
  let head = 0;
  while (head < before.length && head < after.length && before[head] === after[head]) head++;
  let tail = 0;
  while (tail < before.length - head && tail < after.length - head && before[before.length - 1 - tail] === after[after.length - 1 - tail]) tail++;
  const a = before.slice(head, before.length - tail);
  const b = after.slice(head, after.length - tail);
  if (a.length === 0 && b.length === 0) return [];
  if (a.length === 0 || b.length === 0 || a.length * b.length > MAX_TABLE_CELLS) {
    return [{ origStart: head, origEnd: head + a.length, newStart: head, newEnd: head + b.length }];
  }
  // lcs[i][j]: length of the LCS of a[i..] and b[j..], in one flat array.
  const width = b.length + 1;
  const lcs = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * width + j] = a[i] === b[j] ? (lcs[(i + 1) * width + j + 1] ?? 0) + 1 : Math.max(lcs[(i + 1) * width + j] ?? 0, lcs[i * width + j + 1] ?? 0);
    }
  }
  const hunks: Hunk[] = [];
  let open: Hunk | undefined;
  const close = () => {
    if (open) hunks.push(open);
    open = undefined;
  };
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      close();
      i++;
      j++;
      continue;
    }
    open ??= { origStart: head + i, origEnd: head + i, newStart: head + j, newEnd: head + j };
    // Prefer removing first when both ways keep the same common length: removed lines then sit above added ones.
    if (j >= b.length || (i < a.length && (lcs[(i + 1) * width + j] ?? 0) >= (lcs[i * width + j + 1] ?? 0))) {
      i++;
      open.origEnd = head + i;
    } else {
      j++;
      open.newEnd = head + j;
    }
  }
  close();
  return hunks;
}

export type RowKind = 'same' | 'removed' | 'added';

/** One line of the region as the editor shows it during a live diff. */
export interface Row {
  kind: RowKind;
  text: string;
  /** Index of the hunk the row belongs to; -1 for unchanged lines. */
  hunk: number;
}

export type Decision = 'pending' | 'accepted' | 'discarded';

/**
 * The region's lines as the document holds them: unchanged lines once; for each hunk still pending
 * its removed lines followed by its added ones; an accepted hunk only its new lines, a discarded
 * one only its original lines.
 */
export function layoutRows(before: readonly string[], after: readonly string[], hunks: readonly Hunk[], decisions: readonly Decision[] = []): Row[] {
  const rows: Row[] = [];
  let i = 0;
  hunks.forEach((h, n) => {
    for (; i < h.origStart; i++) rows.push({ kind: 'same', text: before[i] ?? '', hunk: -1 });
    const decision = decisions[n] ?? 'pending';
    if (decision !== 'accepted') for (let k = h.origStart; k < h.origEnd; k++) rows.push({ kind: decision === 'pending' ? 'removed' : 'same', text: before[k] ?? '', hunk: decision === 'pending' ? n : -1 });
    if (decision !== 'discarded') for (let k = h.newStart; k < h.newEnd; k++) rows.push({ kind: decision === 'pending' ? 'added' : 'same', text: after[k] ?? '', hunk: decision === 'pending' ? n : -1 });
    i = h.origEnd;
  });
  for (; i < before.length; i++) rows.push({ kind: 'same', text: before[i] ?? '', hunk: -1 });
  return rows;
}

/** The first row of each hunk still shown as pending (where its Accept / Discard go), by hunk index. */
export function hunkStarts(rows: readonly Row[]): Map<number, number> {
  const starts = new Map<number, number>();
  rows.forEach((r, index) => {
    if (r.hunk >= 0 && !starts.has(r.hunk)) starts.set(r.hunk, index);
  });
  return starts;
}

/** The lines of the region once every hunk is decided (pending ones count as `otherwise`). */
export function resolvedLines(before: readonly string[], after: readonly string[], hunks: readonly Hunk[], decisions: readonly Decision[], otherwise: 'accepted' | 'discarded'): string[] {
  const final = hunks.map((_, n) => {
    const d = decisions[n] ?? 'pending';
    return d === 'pending' ? otherwise : d;
  });
  return layoutRows(before, after, hunks, final).map((r) => r.text);
}

/** The smallest single replacement turning `from` into `to`: common head and tail stay untouched. */
export function minimalEdit(from: string, to: string): { start: number; end: number; text: string } {
  let start = 0;
  const max = Math.min(from.length, to.length);
  while (start < max && from.charCodeAt(start) === to.charCodeAt(start)) start++;
  let tail = 0;
  while (tail < max - start && from.charCodeAt(from.length - 1 - tail) === to.charCodeAt(to.length - 1 - tail)) tail++;
  return { start, end: from.length - tail, text: to.slice(start, to.length - tail) };
}

/**
 * The code written so far, for streaming: inside the first fenced block once its opening line is
 * complete, nothing while an opening fence line is still being written, else the text as it is
 * (an answer without a fence is used whole, as codeOfAnswer does at the end).
 */
export function streamedCode(partial: string): string {
  const fence = partial.indexOf('```');
  if (fence === -1) return partial.replace(/\s+$/, '');
  const lineEnd = partial.indexOf('\n', fence);
  if (lineEnd === -1) return '';
  const body = partial.slice(lineEnd + 1);
  const close = body.indexOf('```');
  return (close === -1 ? body : body.slice(0, close)).replace(/\s+$/, '');
}

/**
 * Where `want` sits among the document's `lines`: at `hint` if it is there, else at its only
 * occurrence; -1 when it is nowhere or in more than one place (then nobody can tell which is ours).
 */
export function findLines(lines: readonly string[], want: readonly string[], hint: number): number {
  const at = (start: number) => start >= 0 && start + want.length <= lines.length && want.every((w, k) => lines[start + k] === w);
  if (at(hint)) return hint;
  let found = -1;
  for (let start = 0; start + want.length <= lines.length; start++) {
    if (!at(start)) continue;
    if (found !== -1) return -1;
    found = start;
  }
  return found;
}
