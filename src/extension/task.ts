// What a solve is asked: the task text, the language, and a bounded window of the code around the
// selection. Pure (no `vscode`), so the bounds are unit-tested.

/** Hard cap on context characters, whatever the line setting says: prompts must stay small. */
export const MAX_CONTEXT_CHARS = 6000;
/** Hard cap on the task text sent to the runtime. */
export const MAX_TASK_CHARS = 12000;

export interface ContextWindow {
  /** Lines before the selection, then a marker line, then lines after; '' when none. */
  text: string;
  linesBefore: number;
  linesAfter: number;
  truncated: boolean;
}

const MARKER = '<<< the selected code / task goes here >>>';

/**
 * Up to `maxLines` lines above and below the selection [startLine, endLine] (inclusive), nearest
 * first, until `maxChars` characters are used; lines closer to the selection win.
 */
export function surroundingContext(lines: readonly string[], startLine: number, endLine: number, maxLines: number, maxChars = MAX_CONTEXT_CHARS): ContextWindow {
  const before: string[] = [];
  const after: string[] = [];
  let used = 0;
  // The window stays contiguous: a side stops at the first line that no longer fits.
  let openBefore = maxLines > 0;
  let openAfter = maxLines > 0;
  for (let k = 1; k <= maxLines && (openBefore || openAfter); k++) {
    if (openBefore) {
      const line = lines[startLine - k];
      if (line === undefined || used + line.length + 1 > maxChars) openBefore = false;
      else {
        used += line.length + 1;
        before.unshift(line);
      }
    }
    if (openAfter) {
      const line = lines[endLine + k];
      if (line === undefined || used + line.length + 1 > maxChars) openAfter = false;
      else {
        used += line.length + 1;
        after.push(line);
      }
    }
  }
  const truncated = before.length < startLine || after.length < lines.length - 1 - endLine;
  if (![...before, ...after].some((l) => l.trim() !== '')) return { text: '', linesBefore: 0, linesAfter: 0, truncated };
  return { text: [...before, MARKER, ...after].join('\n'), linesBefore: before.length, linesAfter: after.length, truncated };
}

/** Trims the task and refuses an empty one; long tasks are cut with a note. */
export function normalizeTask(raw: string): { task: string; cut: boolean } | null {
  const t = raw.replace(/\r\n?/g, '\n').trim();
  if (t === '') return null;
  if (t.length <= MAX_TASK_CHARS) return { task: t, cut: false };
  return { task: t.slice(0, MAX_TASK_CHARS), cut: true };
}

/** Languages whose id says nothing about the code to write fall back to Python, the teams' home. */
export function solveLanguage(languageId: string | undefined): string {
  if (!languageId || ['plaintext', 'markdown', 'log', 'scminput', 'output', 'Log'].includes(languageId)) return 'python';
  return languageId;
}

/**
 * The task of a follow-up: the instruction, then the earlier task and the code the team wrote for
 * it, so the team changes that code instead of starting over.
 */
export function followUpTask(instruction: string, previousTask: string, previousCode: string, language: string): string {
  return `${instruction.trim()}\n\nApply this to the ${language} code you wrote for the earlier task "${previousTask.trim()}":\n\`\`\`${language}\n${previousCode.replace(/\n+$/, '')}\n\`\`\``;
}
