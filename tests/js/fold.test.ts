// Folding normalization layers for deployment through the runner: predictions of the folded model
// equal the unfolded model's (atol 1e-5 + rtol 1e-4 on the probabilities), fold() reports what it
// folded and kept, and the training model is left as it was.
import { beforeAll, describe, expect, test } from 'vitest';
import { load, type Normlab } from './helpers.js';
import type { CompareConfig } from '../../dist/index.js';

let nl: Normlab;
beforeAll(async () => {
  nl = await load();
});

function expectClose(got: Float32Array, want: Float32Array, label: string): number {
  expect(got.length, label).toBe(want.length);
  let worst = 0;
  let maxDiff = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    worst = Math.max(worst, d / (1e-5 + 1e-4 * Math.abs(want[i])));
    maxDiff = Math.max(maxDiff, d);
  }
  expect(worst, `${label}: max |folded - unfolded| = ${maxDiff}`).toBeLessThanOrEqual(1);
  return maxDiff;
}

const moons: CompareConfig = {
  dataset: { name: 'moons', noise: 0.1, trainSize: 300, testSize: 200 },
  model: { kind: 'mlp', hidden: [16, 16] },
  methods: ['bn', 'brn', 'l1bn', 'gbn', 'ln', 'gn'],
  batchSize: 16,
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  steps: 40,
  evalInterval: 40,
  seed: 3,
};

const foldable = new Set(['bn', 'brn', 'l1bn', 'gbn']);

describe('fold', () => {
  test('an MLP: folded predictions equal the unfolded ones; foldable layers go, others stay', () => {
    using runner = nl.createRunner(moons);
    runner.step(40);
    const grid = Float32Array.from({ length: 2 * 150 }, (_, i) => ((i * 37) % 101) / 25 - 2);
    for (const id of ['bn', 'brn', 'l1bn', 'gbn', 'ln', 'gn']) {
      const plain = runner.predict(id, grid);
      const folded = runner.predict(id, grid, { folded: true });
      expectClose(folded, plain, id);
      const s = runner.fold(id);
      expect(s.maxAbsDiff, id).not.toBeNull();
      expect(s.maxAbsDiff!, id).toBeLessThan(1e-4);
      if (foldable.has(id)) {
        expect(s.folded.map((f) => f.into), id).toEqual(['linear', 'linear']);
        expect(s.folded.map((f) => f.layer), id).toEqual([1, 4]);
        expect(s.kept, id).toEqual([]);
        expect(s.layers, id).toEqual({ before: 7, after: 5 });
        expect(s.summary.after, id).toBe('linear relu linear relu linear');
      } else {
        expect(s.folded, id).toEqual([]);
        expect(s.kept.map((k) => k.reason), id).toEqual(['inference depends on the sample', 'inference depends on the sample']);
        expect(s.layers.after, id).toBe(s.layers.before);
      }
      // The training model is untouched by folding.
      expect(runner.predict(id, grid), id).toEqual(plain);
    }
    // Training goes on after folding, and the fold follows the model.
    runner.step(5);
    expectClose(runner.predict('bn', grid, { folded: true }), runner.predict('bn', grid), 'bn after more steps');
  });

  test('a CNN on digits: batchnorm folds into the convolutions', async () => {
    const data = await nl.loadDataset('digits');
    using runner = nl.createRunner({
      dataset: { name: 'digits', testSize: 100 },
      model: { kind: 'cnn', channels: [4, 8] },
      methods: ['bn', 'gn'],
      batchSize: 16,
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
      steps: 15,
      evalInterval: 15,
      seed: 2,
    }, data);
    runner.step(15);
    const { sampleShape } = runner.dataInfo();
    const per = sampleShape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: 20 * per }, (_, i) => ((i * 13) % 17) / 16);
    const bn = runner.fold('bn');
    expect(bn.folded.map((f) => f.into)).toEqual(['conv2d', 'conv2d']);
    expect(bn.summary.after).not.toMatch(/batchnorm/);
    expect(bn.maxAbsDiff!).toBeLessThan(1e-4);
    expectClose(runner.predict('bn', x, { folded: true }), runner.predict('bn', x), 'cnn bn');
    const gn = runner.fold('gn');
    expect(gn.kept.map((k) => k.method)).toEqual(['groupnorm', 'groupnorm']);
    expectClose(runner.predict('gn', x, { folded: true }), runner.predict('gn', x), 'cnn gn');
  });

  test('errors come back as exceptions', () => {
    using runner = nl.createRunner({ ...moons, methods: ['bn'] });
    expect(() => runner.fold('gn')).toThrow(/runner: no method 'gn' \(methods: bn\)/);
    expect(() => runner.predict('bn', new Float32Array(4), { folded: 1 as never })).toThrow(/folded must be a boolean/);
    runner.dispose();
    expect(() => runner.fold('bn')).toThrow(/fold\(\) called after dispose\(\)/);
  });
});
