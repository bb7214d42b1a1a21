// The engine's one seeded generator: in range, normally distributed normals, one sequence per seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/engine/random';

test('uniforms lie in [0, 1) and normals have mean 0 and variance 1', () => {
  const random = new SeededRandom(7);
  let sum = 0;
  let squares = 0;
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    const u = random.next();
    assert.ok(u >= 0 && u < 1);
    const z = random.normal();
    sum += z;
    squares += z * z;
  }
  assert.ok(Math.abs(sum / n) < 0.01, `mean ${sum / n}`);
  assert.ok(Math.abs(squares / n - 1) < 0.02, `variance ${squares / n}`);
});

test('one seed gives one sequence, whatever number the seed is', () => {
  for (const seed of [0, 1, 2 ** 40 + 12345, -7, Date.UTC(2026, 0, 1)]) {
    const a = new SeededRandom(seed);
    const b = new SeededRandom(seed);
    for (let i = 0; i < 100; i++) assert.equal(a.nextU32(), b.nextU32());
  }
  const a = new SeededRandom(99).fillNormal(new Float32Array(64), 0.5, 1);
  const b = new SeededRandom(99).fillNormal(new Float32Array(64), 0.5, 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, new SeededRandom(100).fillNormal(new Float32Array(64), 0.5, 1));
});
