// A small syntax highlighter: a single-pass tokenizer with per-language keyword sets and comment
// and string rules. It returns tokens; the renderer puts each into a <span> with textContent, so
// generated code can never become markup. Colours come from theme variables in main.css.

export type TokenKind = 'keyword' | 'string' | 'number' | 'comment' | 'function' | 'type' | 'constant' | 'operator' | 'plain';
export interface Token {
  kind: TokenKind;
  text: string;
}

interface LanguageRules {
  keywords: Set<string>;
  constants: Set<string>;
  lineComments: string[];
  blockComments: [string, string][];
  /** Quote sequences that open strings, longest first. */
  quotes: string[];
  /** Strings may span lines (template literals, triple quotes). */
  multilineQuotes: Set<string>;
}

const words = (s: string) => new Set(s.split(/\s+/).filter(Boolean));

const C_LIKE_CONSTANTS = words('true false null NULL nullptr undefined this self super NaN Infinity');
const JS = words(
  'break case catch class const continue debugger default delete do else export extends finally for function if import in instanceof let new return switch throw try typeof var void while with yield async await of static get set from as interface type enum implements private protected public readonly declare namespace abstract keyof infer satisfies',
);

const RULES: Record<string, LanguageRules> = {
  python: {
    keywords: words('and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case print'),
    constants: words('True False None self cls'),
    lineComments: ['#'],
    blockComments: [],
    quotes: ['"""', "'''", '"', "'"],
    multilineQuotes: new Set(['"""', "'''"]),
  },
  javascript: { keywords: JS, constants: C_LIKE_CONSTANTS, lineComments: ['//'], blockComments: [['/*', '*/']], quotes: ['`', '"', "'"], multilineQuotes: new Set(['`']) },
  c: {
    keywords: words(
      'auto break case char const continue default do double else enum extern float for goto if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while class namespace template typename public private protected virtual override final new delete using try catch throw operator friend constexpr bool std',
    ),
    constants: C_LIKE_CONSTANTS,
    lineComments: ['//'],
    blockComments: [['/*', '*/']],
    quotes: ['"', "'"],
    multilineQuotes: new Set(),
  },
  java: {
    keywords: words(
      'abstract assert boolean break byte case catch char class const continue default do double else enum extends final finally float for goto if implements import instanceof int interface long native new package private protected public return short static strictfp super switch synchronized throw throws transient try void volatile while var record fun val when object is in override open data sealed internal',
    ),
    constants: C_LIKE_CONSTANTS,
    lineComments: ['//'],
    blockComments: [['/*', '*/']],
    quotes: ['"""', '"', "'"],
    multilineQuotes: new Set(['"""']),
  },
  go: {
    keywords: words('break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var'),
    constants: words('true false nil iota'),
    lineComments: ['//'],
    blockComments: [['/*', '*/']],
    quotes: ['`', '"', "'"],
    multilineQuotes: new Set(['`']),
  },
  rust: {
    keywords: words('as async await break const continue crate dyn else enum extern fn for if impl in let loop match mod move mut pub ref return static struct super trait type unsafe use where while'),
    constants: words('true false self Self None Some Ok Err'),
    lineComments: ['//'],
    blockComments: [['/*', '*/']],
    quotes: ['"'],
    multilineQuotes: new Set(['"']),
  },
  shell: {
    keywords: words('if then else elif fi for while until do done case esac function in return local export echo exit'),
    constants: words('true false'),
    lineComments: ['#'],
    blockComments: [],
    quotes: ['"', "'"],
    multilineQuotes: new Set(['"', "'"]),
  },
  ruby: {
    keywords: words('alias and begin break case class def defined? do else elsif end ensure for if in module next not or redo rescue retry return self super then undef unless until when while yield require puts'),
    constants: words('true false nil'),
    lineComments: ['#'],
    blockComments: [],
    quotes: ['"', "'"],
    multilineQuotes: new Set(),
  },
  sql: {
    keywords: words('select from where and or not insert into values update set delete create table drop alter join left right inner outer on group by order having limit as distinct union all case when then else end null is in like primary key'),
    constants: words('true false null'),
    lineComments: ['--'],
    blockComments: [['/*', '*/']],
    quotes: ["'", '"'],
    multilineQuotes: new Set(),
  },
};

const ALIASES: Record<string, string> = {
  py: 'python',
  typescript: 'javascript',
  typescriptreact: 'javascript',
  javascriptreact: 'javascript',
  js: 'javascript',
  ts: 'javascript',
  cpp: 'c',
  'c++': 'c',
  csharp: 'java',
  kotlin: 'java',
  scala: 'java',
  swift: 'java',
  php: 'javascript',
  dart: 'java',
  bash: 'shell',
  sh: 'shell',
  shellscript: 'shell',
  zsh: 'shell',
  rb: 'ruby',
  golang: 'go',
  rs: 'rust',
};

export function rulesFor(language: string): LanguageRules {
  const id = language.toLowerCase();
  return RULES[id] ?? RULES[ALIASES[id] ?? ''] ?? RULES.javascript!;
}

const IDENT = /[A-Za-z_$][\w$]*\??/y;
const NUMBER = /(?:0[xX][\da-fA-F_]+|0[bB][01_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)[a-zA-Z]*/y;
const SPACE = /\s+/y;
const OPERATOR = /[+\-*/%=<>!&|^~?:;,.()[\]{}@]+/y;

function match(re: RegExp, text: string, at: number): string | null {
  re.lastIndex = at;
  const m = re.exec(text);
  return m ? m[0] : null;
}

/** Splits `code` into highlighted tokens; concatenating their texts gives `code` back exactly. */
export function tokenize(code: string, language: string): Token[] {
  const rules = rulesFor(language);
  const caseless = rules === RULES.sql;
  const out: Token[] = [];
  const push = (kind: TokenKind, text: string) => {
    const last = out[out.length - 1];
    if (last && last.kind === kind) last.text += text;
    else out.push({ kind, text });
  };
  const at = (prefix: string, pos: number) => code.startsWith(prefix, pos);
  let i = 0;
  while (i < code.length) {
    const line = rules.lineComments.find((c) => at(c, i));
    if (line) {
      const end = code.indexOf('\n', i);
      const stop = end === -1 ? code.length : end;
      push('comment', code.slice(i, stop));
      i = stop;
      continue;
    }
    const block = rules.blockComments.find(([open]) => at(open, i));
    if (block) {
      const end = code.indexOf(block[1], i + block[0].length);
      const stop = end === -1 ? code.length : end + block[1].length;
      push('comment', code.slice(i, stop));
      i = stop;
      continue;
    }
    const quote = rules.quotes.find((q) => at(q, i));
    if (quote) {
      let j = i + quote.length;
      while (j < code.length) {
        if (code[j] === '\\') {
          j += 2;
          continue;
        }
        if (at(quote, j)) {
          j += quote.length;
          break;
        }
        if (code[j] === '\n' && !rules.multilineQuotes.has(quote)) break;
        j++;
      }
      j = Math.min(j, code.length);
      push('string', code.slice(i, j));
      i = j;
      continue;
    }
    const space = match(SPACE, code, i);
    if (space) {
      push('plain', space);
      i += space.length;
      continue;
    }
    const prevChar = i > 0 ? code[i - 1]! : '';
    if (/\d/.test(code[i]!) || (code[i] === '.' && /\d/.test(code[i + 1] ?? ''))) {
      if (!/[\w$]/.test(prevChar)) {
        const num = match(NUMBER, code, i);
        if (num) {
          push('number', num);
          i += num.length;
          continue;
        }
      }
    }
    const ident = match(IDENT, code, i);
    if (ident) {
      const word = ident.endsWith('?') && !rules.keywords.has(ident) ? ident.slice(0, -1) : ident;
      const key = caseless ? word.toLowerCase() : word;
      let kind: TokenKind = 'plain';
      if (rules.keywords.has(key)) kind = 'keyword';
      else if (rules.constants.has(key)) kind = 'constant';
      else if (/^\s*\(/.test(code.slice(i + word.length, i + word.length + 8))) kind = 'function';
      else if (/^[A-Z][a-z0-9]/.test(word)) kind = 'type';
      push(kind, word);
      i += word.length;
      continue;
    }
    const op = match(OPERATOR, code, i);
    if (op) {
      push('operator', op);
      i += op.length;
      continue;
    }
    push('plain', code[i]!);
    i++;
  }
  return out;
}
