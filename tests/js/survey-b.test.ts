// Generalized BatchNorm and Switchable Norm through the public API, driven by the method table
// (nl.describeMethods()): the cases are keyed by method name (a test fails for a key the table does
// not have), each method's in comparisons (its variants learn, with their labels and short ids;
// the statistic pairs compared are every centering statistic the table lists) and as layers
// (parameters, state, the identities the C++ tests check in more depth). survey.test.ts holds the
// case every method of the table must have.
import { afterAll, describe, expect, test } from 'vitest';
import { expectClose, load, testValues } from './helpers.js';
import type { CompareConfig, MethodInfo } from '../../dist/index.js';

// At the top level: describe.each needs the table when the file is collected.
const nl = await load();
const table: MethodInfo[] = nl.describeMethods();
afterAll(() => {
  expect(nl.memory().liveLayers).toBe(0);
  expect(nl.memory().liveRunners).toBe(0);
});

interface MethodCases {
  /** Comparisons with the method: [title, test]. */
  comparisons: [string, (info: MethodInfo) => Promise<void>][];
  /** Its layer through the API: [title, test]. */
  layers: [string, (info: MethodInfo) => void][];
}

const cases: Record<string, MethodCases> = {
  generalizedbatchnorm: {
    comparisons: [['each statistic pair learns two moons in an MLP', async (info) => {
      const config: CompareConfig = {
        dataset: { name: 'moons', noise: 0.1, trainSize: 400, testSize: 200 },
        model: { kind: 'mlp', hidden: [16, 16] },
        methods: ['none', 'bn', 'gbn', { method: 'gbn', options: { center: 'median' } },
          { method: 'generalizedbatchnorm', options: { deviation: 'superquantile', level: 0.3 } }],
        batchSize: 32,
        optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
        steps: 300,
        evalInterval: 100,
        seed: 5,
      };
      const result = await nl.compare(config);
      expect(result.methods.map((m) => m.id)).toEqual(['none', 'bn', 'gbn', 'gbn-2', 'gbn-3']);
      expect(result.methods.map((m) => m.label)).toEqual(['No normalization', 'BatchNorm',
        'Generalized BN (mean/std)', 'Generalized BN (median/MAD)',
        'Generalized BN (quantile/superquantile, level 0.3)']);
      expect(result.methods[3].model).toBe('linear generalizedbatchnorm relu linear generalizedbatchnorm relu linear');
      for (const m of result.methods.slice(1)) {
        expect(m.diverged ?? false, m.label).toBe(false);
        expect(m.train.loss[0], m.label).toBeGreaterThan(0.5);
        // Inference mode (running S and D) classifies the held-out moons.
        expect(m.final!.testAccuracy, m.label).toBeGreaterThanOrEqual(0.95);
        expect(m.final!.testLoss, m.label).toBeLessThan(0.2);
      }
      // The pairs compared are every centering statistic of the table.
      const centers = result.methods.slice(2).map((m) => /\((\w+)\//.exec(m.label)?.[1]);
      expect(centers).toEqual(info.options.find((o) => o.key === 'center')!.values);
    }]],
    layers: [['options, state, and mean/std = BatchNorm where eps placement agrees', () => {
      using g = nl.createLayer('generalizedbatchnorm', { channels: 3, deviation: 'mad' });
      expect(g.options).toEqual({ channels: 3, center: 'median', deviation: 'mad', level: 0.5, eps: 1e-5, momentum: 0.1, affine: true });
      expect(Object.keys(g.getState()).sort()).toEqual(['runningCenter', 'runningDeviation']);

      using m = nl.createLayer('generalizedbatchnorm', { channels: 3, eps: 1e-10 });
      using b = nl.createLayer('batchnorm', { channels: 3, eps: 1e-10 });
      const x = testValues(30, 1, 2, 0.5);
      const dy = testValues(30, 2);
      expectClose('y', m.forward(x, [2, 3, 5], { training: true }), b.forward(x, [2, 3, 5], { training: true }), 1e-5, 1e-5);
      expectClose('dx', m.backward(dy), b.backward(dy), 1e-5, 1e-4);
    }]],
  },
  switchablenorm: {
    comparisons: [['learns digits in a CNN, and two moons in an MLP (without IN)', async () => {
      const cnn = await nl.compare({
        dataset: { name: 'digits', testSize: 300 },
        model: { kind: 'cnn', channels: [8, 16] },
        methods: ['bn', 'sn'],
        batchSize: 32,
        optimizer: { kind: 'adam', lr: 0.01 },
        schedule: { kind: 'cosine' },
        steps: 150,
        seed: 2,
      });
      expect(cnn.methods[1].id).toBe('sn');
      expect(cnn.methods[1].label).toBe('Switchable Norm');
      expect(cnn.methods[1].model).toBe('conv2d switchablenorm relu maxpool2d conv2d switchablenorm relu maxpool2d flatten linear');
      for (const m of cnn.methods) expect(m.final!.testAccuracy, m.label).toBeGreaterThan(0.9);

      // [N, C] activations: the model turns IN off by itself (useIN: false).
      const mlp = await nl.compare({
        dataset: { name: 'moons', noise: 0.05, trainSize: 400, testSize: 200 },
        model: { kind: 'mlp', hidden: [16, 16] },
        methods: ['sn', { method: 'sn', options: { useBN: false } }],
        batchSize: 16,
        optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
        steps: 300,
        seed: 5,
      });
      expect(mlp.methods.map((m) => m.label)).toEqual(['Switchable Norm', 'Switchable Norm (no BN)']);
      for (const m of mlp.methods) expect(m.final!.testAccuracy, m.label).toBeGreaterThanOrEqual(0.95);
    }]],
    layers: [['mixture-weight parameters and their gradients; one-hot weights are IN', () => {
      using sn = nl.createLayer('switchablenorm', { channels: 3 });
      const p = sn.getParams();
      expect(Object.keys(p)).toEqual(['gamma', 'beta', 'meanWeight', 'varWeight']);
      expect(Array.from(p.meanWeight!)).toEqual([1, 1, 1]);
      expect(Object.keys(sn.getState()).sort()).toEqual(['runningMean', 'runningVar']);
      const x = testValues(30, 3, 1.5, 0.2);
      sn.forward(x, [2, 3, 5], { training: true });
      sn.backward(testValues(30, 4));
      const g = sn.grads();
      expect(g.meanWeight!.length).toBe(3);
      expect(g.varWeight!.some((v) => v !== 0)).toBe(true);

      sn.setParams({ meanWeight: Float32Array.of(100, 0, 0), varWeight: Float32Array.of(100, 0, 0) });
      using inorm = nl.createLayer('instancenorm', { channels: 3 });
      expectClose('SN(IN) vs IN', sn.forward(x, [2, 3, 5], { training: true }), inorm.forward(x, [2, 3, 5], { training: true }), 1e-5, 1e-5);

      using noBn = nl.createLayer('switchablenorm', { channels: 3, useIN: false, useBN: false });
      expect(noBn.getState()).toEqual({});
      expect(noBn.getParams().meanWeight!.length).toBe(1);
    }]],
  },
};

test('every case names a method of the table, with comparisons and layer tests', () => {
  expect(Object.keys(cases).filter((name) => !table.some((m) => m.name === name))).toEqual([]);
  for (const [name, c] of Object.entries(cases)) {
    expect(c.comparisons.length, name).toBeGreaterThan(0);
    expect(c.layers.length, name).toBeGreaterThan(0);
  }
});

describe.each(table.filter((m) => cases[m.name]))('$name', (info) => {
  describe('in comparisons', () => {
    test.each(cases[info.name].comparisons)('%s', (_title, fn) => fn(info));
  });

  describe('as layers', () => {
    test.each(cases[info.name].layers)('%s', (_title, fn) => fn(info));
  });
});
