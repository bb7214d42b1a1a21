// Taking the code out of the final answer: drop any think block, then the first fenced block in
// the requested language (or an untagged one).
import { fenceTag } from './prompts';

const ALIASES: Record<string, string[]> = {
  python: ['python', 'py', 'python3'],
  typescript: ['typescript', 'ts'],
  javascript: ['javascript', 'js', 'node'],
  tsx: ['tsx', 'typescript'],
  jsx: ['jsx', 'javascript'],
  cpp: ['cpp', 'c++', 'cc', 'cxx'],
  csharp: ['csharp', 'cs', 'c#'],
  bash: ['bash', 'sh', 'shell', 'zsh'],
  go: ['go', 'golang'],
  rust: ['rust', 'rs'],
};

export function stripThinking(text: string): string {
  return text.replace(/<think>[\s\S]*?(<\/think>|$)/g, '').trimStart();
}

export function extractCode(answer: string, language: string): string | null {
  const text = stripThinking(answer);
  const tag = fenceTag(language);
  const accepted = new Set(ALIASES[tag] ?? [tag]);
  const fence = /(^|\n)[ \t]*(`{3,}|~{3,})[ \t]*([^\n`]*)\n([\s\S]*?)\n[ \t]*\2[ \t]*(?=\n|$)/g;
  let untagged: string | null = null;
  for (const m of text.matchAll(fence)) {
    const info = (m[3] ?? '').trim().split(/\s+/)[0]!.toLowerCase();
    if (accepted.has(info)) return m[4]!;
    if (!info && untagged === null) untagged = m[4]!;
  }
  return untagged;
}
