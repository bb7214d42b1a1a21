// The editor-side text logic: fitting generated code to the target line's indentation, checking
// that a selection is unchanged, and the bounded context sent with a task.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkSelection,
  codeOfAnswer,
  detectEol,
  detectIndentUnit,
  indentWidth,
  linesLabel,
  planInsertAtCursor,
  planReplaceSelection,
  reindent,
} from '../../src/extension/insertion';
import { MAX_CONTEXT_CHARS, normalizeTask, solveLanguage, surroundingContext } from '../../src/extension/task';

const SPACES4 = { insertSpaces: true, tabSize: 4 };
const SPACES2 = { insertSpaces: true, tabSize: 2 };
const TABS = { insertSpaces: false, tabSize: 4 };

/** Applies an insertion at (line, column) of `doc` the way the editor would. */
function insertAt(doc: string, line: number, column: number, text: string): string {
  const lines = doc.split('\n');
  const offset = lines.slice(0, line).reduce((a, l) => a + l.length + 1, 0) + column;
  return doc.slice(0, offset) + text + doc.slice(offset);
}

describe('indentation', () => {
  test('widths count tabs up to the next tab stop', () => {
    assert.equal(indentWidth('\t', 4), 4);
    assert.equal(indentWidth('  \t', 4), 4);
    assert.equal(indentWidth('\t  ', 8), 10);
    assert.equal(indentWidth('', 4), 0);
  });

  test('the indentation step of code is detected (2, 4, tabs)', () => {
    assert.equal(detectIndentUnit(['def f():', '  if x:', '    return 1', '  return 2'], 4), 2);
    assert.equal(detectIndentUnit(['def f():', '    if x:', '        return 1', '    return 2'], 4), 4);
    assert.equal(detectIndentUnit(['fn f() {', '\tif x {', '\t\treturn', '\t}', '}'], 8), 8);
    assert.equal(detectIndentUnit(['x = 1', 'y = 2'], 4), 4);
  });

  test('reindent moves the block to the base indentation and converts 4-space levels to 2-space', () => {
    const code = 'def f(x):\n    if x:\n        return 1\n    return 2\n';
    assert.deepEqual(reindent(code, '  ', SPACES2), ['  def f(x):', '    if x:', '      return 1', '    return 2']);
  });

  test('reindent removes a common indentation and drops surrounding blank lines and trailing spaces', () => {
    const code = '\n\n        a = 1   \n\n        if a:\n            b()\n\n';
    assert.deepEqual(reindent(code, '', SPACES4), ['a = 1', '', 'if a:', '    b()']);
  });

  test('reindent writes tabs when the editor indents with tabs', () => {
    assert.deepEqual(reindent('if a:\n    b()\n        c()', '\t', TABS), ['\tif a:', '\t\tb()', '\t\t\tc()']);
  });

  test('CRLF input is split the same, and line endings are detected', () => {
    assert.deepEqual(reindent('a\r\n  b\r\n', '', SPACES2), ['a', '  b']);
    assert.equal(detectEol('x\r\ny'), '\r\n');
    assert.equal(detectEol('x\ny'), '\n');
  });

  test('messages count lines in the singular and the plural, whatever the line endings', () => {
    assert.equal(linesLabel('x = 1'), '1 line');
    assert.equal(linesLabel('a\r\nb\rc\nd'), '4 lines');
  });
});

describe('insert at cursor', () => {
  const doc = ['class A:', '    def f(self):', '        ', '        return 1', ''].join('\n');

  test('on a blank indented line the block starts at the cursor and keeps the indentation', () => {
    const text = planInsertAtCursor('x = 1\nif x:\n    y = 2', '        ', 8, SPACES4, '\n');
    const out = insertAt(doc, 2, 8, text);
    assert.equal(out, ['class A:', '    def f(self):', '        x = 1', '        if x:', '            y = 2', '        return 1', ''].join('\n'));
  });

  test('after code on the line the block goes on the next lines, at the line indentation', () => {
    const line = '        return 1';
    const text = planInsertAtCursor('z = 3\nprint(z)', line, line.length, SPACES4, '\n');
    const out = insertAt(doc, 3, line.length, text);
    assert.equal(out, ['class A:', '    def f(self):', '        ', '        return 1', '        z = 3', '        print(z)', ''].join('\n'));
  });

  test('in the middle of code, the rest of the line moves below the block', () => {
    const line = '    foo(); bar()';
    const text = planInsertAtCursor('baz()', line, 10, SPACES4, '\n');
    assert.equal(insertAt(line, 0, 10, text), '    foo();\n    baz()\n     bar()');
  });

  test('at column 0 of a code line, the block sits above it', () => {
    const text = planInsertAtCursor('import os\n', 'def g():', 0, SPACES4, '\n');
    assert.equal(insertAt('def g():\n    pass', 0, 0, text), 'import os\ndef g():\n    pass');
  });

  test('the document line ending is used', () => {
    const text = planInsertAtCursor('a\nb', '', 0, SPACES4, '\r\n');
    assert.equal(text, 'a\r\nb');
  });
});

describe('replace selection', () => {
  test('whole indented lines selected from column 0 are replaced at the same indentation', () => {
    const selected = '    pass\n    return None';
    const text = planReplaceSelection('if x:\n    return 1\nreturn 0', '    pass', 0, selected, SPACES4, '\n');
    assert.equal(text, '    if x:\n        return 1\n    return 0');
  });

  test('a selection starting after the indentation does not indent its first line twice', () => {
    const text = planReplaceSelection('a()\nb()', '    pass', 4, 'pass', SPACES4, '\n');
    assert.equal(text, 'a()\n    b()');
  });

  test('a selection ending with a line break keeps one', () => {
    const text = planReplaceSelection('x = 1', 'old = 0', 0, 'old = 0\n', SPACES4, '\n');
    assert.equal(text, 'x = 1\n');
  });

  test('an expression selected inside a line is replaced inline', () => {
    const text = planReplaceSelection('compute(a, b)', '    result = old(a)', 13, 'old(a)', SPACES4, '\n');
    assert.equal(text, 'compute(a, b)');
  });
});

describe('selection check', () => {
  const doc = 'a\nb = 1\nc = 2\n';
  test('unchanged text at the same place', () => {
    assert.deepEqual(checkSelection(doc, 2, 7, 'b = 1'), { status: 'unchanged', start: 2, end: 7 });
  });
  test('the same text moved by edits above it is found again', () => {
    const edited = '# new line\n' + doc;
    assert.deepEqual(checkSelection(edited, 2, 7, 'b = 1'), { status: 'moved', start: 13, end: 18 });
  });
  test('edited text is reported as changed', () => {
    const r = checkSelection('a\nb = 10\nc = 2\n', 2, 7, 'b = 1\n');
    assert.equal(r.status, 'changed');
  });
  test('text that now appears twice is ambiguous, so changed', () => {
    const r = checkSelection('x\nb = 1\nb = 1\n', 0, 5, 'b = 1');
    assert.equal(r.status, 'changed');
    assert.match((r as { reason: string }).reason, /more than once/);
  });
  test('an empty original selection cannot be found again', () => {
    assert.equal(checkSelection('abc', 1, 2, '').status, 'changed');
  });
});

describe('answer code', () => {
  test('prefers the extracted code, then a fenced block, then the text', () => {
    assert.equal(codeOfAnswer({ text: 'x', code: 'print(1)' }), 'print(1)');
    assert.equal(codeOfAnswer({ text: 'Here:\n```python\ndef f():\n    return 1\n```\nDone.', code: null }), 'def f():\n    return 1');
    assert.equal(codeOfAnswer({ text: 'Start:\n```js\nlet a = 1;\n', code: null }), 'let a = 1;');
    assert.equal(codeOfAnswer({ text: 'just text  \n\n', code: null }), 'just text');
  });
});

describe('task capture', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `line ${i}`);

  test('context takes up to N lines on each side and marks where the selection was', () => {
    const c = surroundingContext(lines, 50, 52, 3);
    assert.equal(c.linesBefore, 3);
    assert.equal(c.linesAfter, 3);
    assert.equal(c.text.split('\n').length, 7);
    assert.equal(c.text.split('\n')[0], 'line 47');
    assert.match(c.text.split('\n')[3]!, /selected code/);
    assert.equal(c.text.split('\n')[6], 'line 55');
    assert.equal(c.truncated, true);
  });

  test('context stops at the file edges', () => {
    const c = surroundingContext(lines, 1, 1, 10);
    assert.equal(c.linesBefore, 1);
    assert.equal(c.linesAfter, 10);
  });

  test('context respects the character budget and stays contiguous', () => {
    const long = ['short', 'x'.repeat(MAX_CONTEXT_CHARS), 'near', 'SEL', 'after'];
    const c = surroundingContext(long, 3, 3, 10);
    assert.ok(c.text.length <= MAX_CONTEXT_CHARS + 60);
    assert.deepEqual(c.text.split('\n').slice(0, 1), ['near']);
    assert.ok(!c.text.includes('short'), 'lines beyond a line that does not fit are not taken');
  });

  test('zero lines or only blank surroundings give no context', () => {
    assert.equal(surroundingContext(lines, 5, 5, 0).text, '');
    assert.equal(surroundingContext(['', 'x', ''], 1, 1, 5).text, '');
  });

  test('tasks are trimmed, empty ones refused, long ones cut', () => {
    assert.deepEqual(normalizeTask('  do it \r\n'), { task: 'do it', cut: false });
    assert.equal(normalizeTask(' \n '), null);
    const long = normalizeTask('y'.repeat(20000))!;
    assert.equal(long.cut, true);
    assert.ok(long.task.length < 20000);
  });

  test('the language comes from the document, plain text falls back to python', () => {
    assert.equal(solveLanguage('typescript'), 'typescript');
    assert.equal(solveLanguage('plaintext'), 'python');
    assert.equal(solveLanguage(undefined), 'python');
  });
});
