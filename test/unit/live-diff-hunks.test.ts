// The line diff behind the live inline diff: hunks, the rows the editor shows, per-hunk decisions,
// the minimal edit each streamed update makes, and the code taken from a partial answer.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { diffLines, findLines, hunkStarts, layoutRows, minimalEdit, resolvedLines, streamedCode } from '../../src/extension/hunks';

/** Length of a longest common subsequence, by plain recursion with a memo (a second, independent way). */
function lcsLength(a: string[], b: string[]): number {
  const memo = new Map<string, number>();
  const go = (i: number, j: number): number => {
    if (i === a.length || j === b.length) return 0;
    const key = `${i},${j}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const v = a[i] === b[j] ? 1 + go(i + 1, j + 1) : Math.max(go(i + 1, j), go(i, j + 1));
    memo.set(key, v);
    return v;
  };
  return go(0, 0);
}

/** A small deterministic generator, so a failing case can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('live diff hunks', () => {
  test('a selection with kept and changed lines: two hunks around the kept ones', () => {
    const before = ['def area(w, h):', '    # compute the area', '    pass', '', 'print(area(2, 3))'];
    const after = ['def area(w, h):', '    """Area of a w x h rectangle."""', '    return w * h', '', 'print(area(2, 3), "cm2")'];
    const hunks = diffLines(before, after);
    assert.deepEqual(hunks, [
      { origStart: 1, origEnd: 3, newStart: 1, newEnd: 3 },
      { origStart: 4, origEnd: 5, newStart: 4, newEnd: 5 },
    ]);
    const rows = layoutRows(before, after, hunks);
    assert.deepEqual(
      rows.map((r) => `${r.kind[0]}${r.hunk}:${r.text}`),
      [
        's-1:def area(w, h):',
        'r0:    # compute the area',
        'r0:    pass',
        'a0:    """Area of a w x h rectangle."""',
        'a0:    return w * h',
        's-1:',
        'r1:print(area(2, 3))',
        'a1:print(area(2, 3), "cm2")',
      ],
    );
    assert.deepEqual([...hunkStarts(rows)], [[0, 1], [1, 6]]);
    // Accept the first change, discard the second: the body is new, the call is the user's.
    assert.deepEqual(resolvedLines(before, after, hunks, ['accepted', 'discarded'], 'accepted'), ['def area(w, h):', '    """Area of a w x h rectangle."""', '    return w * h', '', 'print(area(2, 3))']);
    // With one decided, the document shows the other still pending, with the decided one settled.
    const half = layoutRows(before, after, hunks, ['accepted', 'pending']);
    assert.deepEqual(half.map((r) => r.kind), ['same', 'same', 'same', 'same', 'removed', 'added']);
    assert.deepEqual([...hunkStarts(half)], [[1, 4]]);
    assert.deepEqual(resolvedLines(before, after, hunks, ['pending', 'pending'], 'accepted'), after);
    assert.deepEqual(resolvedLines(before, after, hunks, ['pending', 'pending'], 'discarded'), before);
  });

  test('pure insertions and pure removals', () => {
    assert.deepEqual(diffLines(['a', 'b'], ['a', 'x', 'y', 'b']), [{ origStart: 1, origEnd: 1, newStart: 1, newEnd: 3 }]);
    assert.deepEqual(diffLines(['a', 'x', 'b'], ['a', 'b']), [{ origStart: 1, origEnd: 2, newStart: 1, newEnd: 1 }]);
    assert.deepEqual(diffLines([''], ['def f():', '    return 1']), [{ origStart: 0, origEnd: 1, newStart: 0, newEnd: 2 }]);
    assert.deepEqual(diffLines(['same'], ['same']), []);
  });

  test('on random inputs: unchanged rows are a longest common subsequence, and both decisions give back each side', () => {
    const next = rng(12);
    const words = ['a', 'b', 'c', 'd', ''];
    for (let n = 0; n < 300; n++) {
      const make = () => Array.from({ length: Math.floor(next() * 9) }, () => words[Math.floor(next() * words.length)]!);
      const before = make();
      const after = make();
      const hunks = diffLines(before, after);
      const rows = layoutRows(before, after, hunks);
      const same = rows.filter((r) => r.kind === 'same').length;
      assert.equal(same, lcsLength(before, after), `${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
      assert.deepEqual(resolvedLines(before, after, hunks, [], 'accepted'), after);
      assert.deepEqual(resolvedLines(before, after, hunks, [], 'discarded'), before);
      // Hunks are separated by at least one unchanged line, and in each one removed rows come first.
      for (let h = 1; h < hunks.length; h++) assert.ok(hunks[h]!.origStart > hunks[h - 1]!.origEnd);
      for (const [h] of hunkStarts(rows)) {
        const kinds = rows.filter((r) => r.hunk === h).map((r) => r.kind);
        assert.deepEqual(kinds, [...kinds].sort((x, y) => (x === y ? 0 : x === 'removed' ? -1 : 1)));
      }
    }
  });

  test('each streamed update is one minimal replacement', () => {
    const cases: [string, string][] = [
      ['def f():\n    pass', 'def f():\n    return 1'],
      ['', 'abc'],
      ['abc', ''],
      ['aaa', 'aaaa'],
      ['x = 1\ny = 2', 'x = 1\nz = 3\ny = 2'],
    ];
    for (const [from, to] of cases) {
      const e = minimalEdit(from, to);
      assert.equal(from.slice(0, e.start) + e.text + from.slice(e.end), to);
      assert.ok(e.end - e.start <= from.length && e.text.length <= to.length);
    }
    assert.deepEqual(minimalEdit('def f():\n    pass', 'def f():\n    pass\n    x'), { start: 17, end: 17, text: '\n    x' });
  });

  test('the code of a partial answer', () => {
    assert.equal(streamedCode('def add(a, b):\n    return a'), 'def add(a, b):\n    return a');
    assert.equal(streamedCode('Here is the function:\n``'), 'Here is the function:\n``');
    assert.equal(streamedCode('Here is the function:\n```pyth'), '', 'an opening fence still being written shows nothing');
    assert.equal(streamedCode('Here it is:\n```python\ndef add(a, b):\n    ret'), 'def add(a, b):\n    ret');
    assert.equal(streamedCode('```python\ndef add(a, b):\n    return a + b\n```\nThat adds them.'), 'def add(a, b):\n    return a + b');
  });

  test('finding a diff\'s rows in the file after a reload: where they were, else their only place, else nowhere', () => {
    const rows = ['    }', '    return w * h;'];
    const file = ['function area(w, h) {', '    if (w < 0) {', '        return 0;', '    }', '    return w * h;', '}'];
    assert.equal(findLines(file, rows, 3), 3, 'at the line it was saved with');
    assert.equal(findLines(file, rows, 0), 3, 'lines added above it moved it: its only place');
    assert.equal(findLines(['// new first line', ...file], rows, 3), 4);
    assert.equal(findLines(file, ['    }', '    return w + h;'], 3), -1, 'an edited row: not ours any more');
    assert.equal(findLines(file, rows, 40), 3, 'a hint past the end');
    const twice = [...file, ...rows];
    assert.equal(findLines(twice, rows, 3), 3, 'the saved place wins over a copy');
    assert.equal(findLines(twice, rows, 0), -1, 'two places and neither is where it was: nobody can tell which');
    assert.equal(findLines(file.slice(0, 4), rows, 3), -1, 'cut short by the end of the file');
  });
});
