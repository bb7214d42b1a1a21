// Role prompts, in our own words, with the structure the RecursiveMAS agents were trained on: a
// role sentence, the interface requirement, the problem, the slot where incoming thoughts go, and
// the output format (a short plan for planners and critics, one fenced code block for the solver).
import type { ChatMessage } from '../tokenizer/hf';

export type Role = 'planner' | 'critic' | 'solver' | 'expert' | 'summarizer' | 'learner';

/** Marker for the i-th slot; the prompt is split here and the incoming vectors spliced in. */
export const slotMarker = (i: number): string => `<<<slot-${i}>>>`;

export interface PromptInput {
  role: Role;
  task: string;
  language: string;
  context?: string;
  /** Who the incoming messages come from, one per slot (empty: no slot). */
  senders: string[];
  /** The expert's field, for mixture teams. */
  domain?: string;
  final: boolean;
}

const ROLE_SENTENCE: Record<Role, string> = {
  planner: 'You are the planner of a team that writes code. You read the problem and decide how it should be solved.',
  critic: "You are the critic of a team that writes code. You check the planner's approach, find its mistakes and gaps, and improve it.",
  solver: 'You are the solver of a team that writes code. You write the final, correct program.',
  expert: 'You are a domain expert on a team that writes code. You contribute the insight your field brings to the problem.',
  summarizer: "You are the lead of a team of experts that writes code. You combine the experts' insights and write the final program.",
  learner: "You are the learner of a teacher-student pair that writes code. You use the teacher's guidance to write the final program.",
};

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

function interfaceRequirement(task: string, language: string): string {
  const name = /\bfunction\s+(?:named|called)\s+`?([A-Za-z_][\w]*)`?/i.exec(task)?.[1] ?? /`([A-Za-z_][\w]*)\s*\(/.exec(task)?.[1];
  const lang = languageName(language);
  if (name) return `Write the solution in ${lang} as a function named ${name}.`;
  if (/\b(stdin|standard input|reads? (from )?input)\b/i.test(task)) return `Write the solution in ${lang} as a program that reads standard input and writes standard output.`;
  return `Write the solution in ${lang}.`;
}

export function buildRoleMessages(p: PromptInput): ChatMessage[] {
  const lines: string[] = [];
  lines.push(interfaceRequirement(p.task, p.language));
  if (p.role === 'expert' && p.domain) lines.push(`Your field: ${p.domain}.`);
  lines.push('', 'Problem:', p.task.trim());
  if (p.context?.trim()) lines.push('', 'Code around the place where the solution goes:', p.context.trim());
  p.senders.forEach((sender, i) => {
    // Slots sit on lines of their own so that splicing never changes how the text around them tokenizes.
    lines.push('', `Thoughts from the ${sender}:`, slotMarker(i), '');
  });
  const tag = fenceTag(p.language);
  if (p.final) {
    lines.push('', `Answer with the complete solution in a single fenced code block (\`\`\`${tag}), and nothing after it.`);
  } else if (p.role === 'critic') {
    lines.push('', 'Reply with a corrected plan of 3 to 6 short numbered steps. Do not write code.');
  } else {
    lines.push('', 'Reply with a plan of 3 to 6 short numbered steps. Do not write code.');
  }
  return [
    { role: 'system', content: ROLE_SENTENCE[p.role] },
    { role: 'user', content: lines.join('\n') },
  ];
}

/** The follow-up when the final answer had no code block. */
export function codeOnlyFollowUp(language: string): string {
  return `Now give only the final ${languageName(language)} code, in one fenced code block (\`\`\`${fenceTag(language)}), with no explanation.`;
}
