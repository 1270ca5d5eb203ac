// Every method of the method table (nl.describeMethods()) inside a model, one case each, keyed by
// method name (a test fails for a method without one): it learns (an MLP on a separable 2-D set,
// or a CNN on digits for the methods that need spatial dims), with its short id, label and layers;
// the methods without batch statistics evaluate identically either way; its full name and its
// alias give the same run; and the batch-statistics methods refuse batch size 1 in an MLP. Then
// what is specific to LRN, RMSNorm, FRN + TLU and L1-norm BatchNorm, which came with the survey:
// their configuration errors, their layers through the API, and the command line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { expectClose, load, root, testValues } from './helpers.js';
import { hostile } from './hostile.js';
import type { CompareConfig, MethodInfo, MethodName } from '../../dist/index.js';

// At the top level: describe.each needs the table when the file is collected.
const nl = await load();
const table: MethodInfo[] = nl.describeMethods();

/** An MLP on two moons: every method that does not need spatial dims learns it. */
const moons: Omit<CompareConfig, 'methods'> = {
  dataset: { name: 'moons', noise: 0.05, trainSize: 400, testSize: 200 },
  model: { kind: 'mlp', hidden: [16, 16] },
  batchSize: 16,
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  steps: 300,
  evalInterval: 100,
  seed: 5,
};

/** A CNN on the digits. */
const digits: Omit<CompareConfig, 'methods'> = {
  dataset: { name: 'digits', testSize: 300 },
  model: { kind: 'cnn', channels: [8, 16] },
  batchSize: 32,
  optimizer: { kind: 'adam', lr: 0.01 },
  schedule: { kind: 'cosine' },
  steps: 150,
  seed: 2,
};

/** A comparison of the one method (with `options`) and what its result must show. */
interface ModelCase {
  config: Omit<CompareConfig, 'methods'>;
  options?: Record<string, unknown>;
  id: string;
  label: string;
  /** The model's layers. */
  layers: string;
  /** Final test accuracy in inference mode: at least `min`, or above `above`. */
  accuracy: { min: number } | { above: number };
  /** Final test loss below this. */
  maxLoss?: number;
  /** The first step's training loss above this (the model starts untrained). */
  firstLossAbove?: number;
  /**
   * A method with batch statistics: the least final test accuracy in training mode (required).
   * Without: 'same' when it must equal the accuracy in inference mode.
   */
  batchStats?: number | 'same';
}

interface MethodCases {
  models: ModelCase[];
  /** Configuration errors of this method: [title, config, message]. */
  errors?: [string, CompareConfig, RegExp][];
  /** Tests of the method's layer through the API: [title, test]. */
  layers?: [string, () => void][];
}

const learnsMoons = { accuracy: { min: 0.98 }, maxLoss: 0.1, firstLossAbove: 0.5 };
const learnsDigits = { accuracy: { above: 0.85 } };

const cases: Record<string, MethodCases> = {
  // The baseline: the same model with nothing in the norm slot.
  none: {
    models: [{ config: moons, id: 'none', label: 'No normalization', layers: 'linear relu linear relu linear',
      ...learnsMoons, batchStats: 'same' }],
  },
  batchnorm: {
    models: [{ config: moons, id: 'bn', label: 'BatchNorm', layers: 'linear batchnorm relu linear batchnorm relu linear',
      ...learnsMoons, batchStats: 0.95 }],
  },
  batchrenorm: {
    models: [{ config: moons, id: 'brn', label: 'Batch Renorm', layers: 'linear batchrenorm relu linear batchrenorm relu linear',
      ...learnsMoons, batchStats: 0.95 }],
  },
  layernorm: {
    models: [{ config: moons, id: 'ln', label: 'LayerNorm', layers: 'linear layernorm relu linear layernorm relu linear',
      ...learnsMoons, batchStats: 'same' }],
  },
  groupnorm: {
    models: [{ config: moons, options: { groups: 4 }, id: 'gn', label: 'GroupNorm (4 groups)',
      layers: 'linear groupnorm relu linear groupnorm relu linear', ...learnsMoons, batchStats: 'same' }],
  },
  instancenorm: {
    models: [{ config: digits, id: 'in', label: 'InstanceNorm',
      layers: 'conv2d instancenorm relu maxpool2d conv2d instancenorm relu maxpool2d flatten linear', ...learnsDigits }],
  },
  lrn: {
    models: [{ config: digits, options: { size: 5 }, id: 'lrn', label: 'LRN',
      layers: 'conv2d lrn relu maxpool2d conv2d lrn relu maxpool2d flatten linear', ...learnsDigits }],
    errors: [
      ['lrn without its size', {
        methods: ['lrn'], model: { kind: 'cnn', channels: [4] }, batchSize: 2,
        dataset: { x: new Float32Array(8 * 16).map((_, i) => (i % 7) / 7), labels: [0, 1, 0, 1, 0, 1, 0, 1], shape: [1, 4, 4] },
      }, /lrn: option size is required/],
      ['lrn in an mlp', { methods: [{ method: 'lrn', options: { size: 3 } }] }, /lrn needs image feature maps \[N, C, H, W\].*use the cnn model/],
    ],
  },
  rmsnorm: {
    models: [{ config: moons, id: 'rms', label: 'RMSNorm', layers: 'linear rmsnorm relu linear rmsnorm relu linear',
      ...learnsMoons, batchStats: 'same' }],
  },
  frn: {
    models: [
      { config: moons, options: { learnableEps: true }, id: 'frn', label: 'FRN + TLU', layers: 'linear frn relu linear frn relu linear',
        ...learnsMoons, batchStats: 'same' },
      { config: digits, id: 'frn', label: 'FRN + TLU',
        layers: 'conv2d frn relu maxpool2d conv2d frn relu maxpool2d flatten linear', ...learnsDigits },
    ],
    errors: [
      ['frn in an mlp without a learned eps', { methods: ['frn'] },
        /frn: input shape \[1,128\] has one value per sample and channel.*use learnableEps: true/],
    ],
    layers: [['the learned eps and tau have gradients; getParams and setParams take them', () => {
      using frn = nl.createLayer('frn', { channels: 2, learnableEps: true });
      expect(Object.keys(frn.getParams())).toEqual(['gamma', 'beta', 'tau', 'eps']);
      expectClose('initial eps', frn.getParams().eps!, [1e-2], 1e-9, 1e-6);
      frn.setParams({ eps: Float32Array.of(0.5), tau: Float32Array.of(-0.25, 0.1) });
      expectClose('eps', frn.getParams().eps!, [0.5]);
      frn.forward(testValues(8, 3), [4, 2], { training: true });
      expect(frn.grads().eps![0]).toBe(0);  // zeros before the first backward
      frn.backward(testValues(8, 4, 1, 0.5));
      const grads = frn.grads();
      expect(grads.eps![0]).not.toBe(0);
      expect(grads.tau!.length).toBe(2);
    }]],
  },
  l1batchnorm: {
    models: [{ config: moons, id: 'l1bn', label: 'L1 BatchNorm', layers: 'linear l1batchnorm relu linear l1batchnorm relu linear',
      ...learnsMoons, batchStats: 0.95 }],
    layers: [['running statistics move with training and drive inference', () => {
      using l1 = nl.createLayer('l1batchnorm', { channels: 2, momentum: 1, scaleSqrtPiOver2: false });
      // [2, 2, 2]: channel 0 holds 1, 5, 5, 3 (mean 3.5, mean |x - mean| 1.5), channel 1 holds
      // 3, -1, 1, -5 (mean -0.5, mean |x - mean| 2.5).
      l1.forward(Float32Array.of(1, 5, 3, -1, 5, 3, 1, -5), [2, 2, 2], { training: true });
      const state = l1.getState();
      expectClose('runningMean', state.runningMean, [3.5, -0.5]);
      expectClose('runningDev', state.runningDev, [1.5, 2.5]);
      // Inference with those: (x - runningMean) / (runningDev + 1e-5).
      expectClose('inference', l1.forward(Float32Array.of(4, 4), [1, 2]), [0.5 / 1.50001, 4.5 / 2.50001]);
    }]],
  },
  generalizedbatchnorm: {
    models: [{ config: moons, id: 'gbn', label: 'Generalized BN (mean/std)',
      layers: 'linear generalizedbatchnorm relu linear generalizedbatchnorm relu linear', ...learnsMoons, batchStats: 0.95 }],
  },
  switchablenorm: {
    models: [{ config: moons, id: 'sn', label: 'Switchable Norm', layers: 'linear switchablenorm relu linear switchablenorm relu linear',
      ...learnsMoons, batchStats: 0.95 }],
  },
  weightnorm: {
    models: [{ config: moons, id: 'wn', label: 'Weight Norm', layers: 'linear_weightnorm relu linear_weightnorm relu linear',
      ...learnsMoons, batchStats: 'same' }],
  },
  cosinenorm: {
    // Cosines in [-1, 1] learn the moons more slowly.
    models: [{ config: moons, id: 'cn', label: 'Cosine Norm', layers: 'linear_cosine relu linear_cosine relu linear',
      accuracy: { min: 0.85 }, maxLoss: 0.35, firstLossAbove: 0.5 }],
  },
};

test('every method of the table has cases, and every case a method of the table', () => {
  expect(table.filter((m) => !cases[m.name]?.models.length).map((m) => m.name)).toEqual([]);
  expect(Object.keys(cases).filter((name) => !table.some((m) => m.name === name))).toEqual([]);
});

describe.each(table.filter((m) => cases[m.name]))('$name', (info) => {
  const c = cases[info.name];

  describe('in models', () => {
    test.each(c.models.map((model) => [model.layers.split(' ')[0] === 'conv2d' ? 'a CNN' : 'an MLP', model] as const))(
      '%s learns, with its id, label and layers', async (_kind, model) => {
        const method = (info.aliases[0] ?? info.name) as MethodName;
        const result = await nl.compare({ ...model.config, methods: [model.options ? { method, options: model.options } : method] });
        expect(result.methods.map((m) => [m.id, m.label])).toEqual([[model.id, model.label]]);
        // The id results use is the first alias (or the name).
        expect(model.id).toBe(info.aliases[0] ?? info.name);
        const [m] = result.methods;
        expect(m.model).toBe(model.layers);
        expect(m.diverged, m.label).toBeNull();
        if ('min' in model.accuracy) expect(m.final!.testAccuracy, m.label).toBeGreaterThanOrEqual(model.accuracy.min);
        else expect(m.final!.testAccuracy, m.label).toBeGreaterThan(model.accuracy.above);
        if (model.maxLoss !== undefined) expect(m.final!.testLoss, m.label).toBeLessThan(model.maxLoss);
        if (model.firstLossAbove !== undefined) expect(m.train.loss[0], m.label).toBeGreaterThan(model.firstLossAbove);
        if (info.usesBatchStatistics) {
          expect(model.batchStats, 'a method with batch statistics states its accuracy with them').toBeTypeOf('number');
          expect(m.final!.testAccuracyBatchStats!, m.label).toBeGreaterThanOrEqual(model.batchStats as number);
        } else if (model.batchStats !== undefined) {
          // Without batch statistics, training mode evaluates as inference does.
          expect(model.batchStats).toBe('same');
          expect(m.final!.testAccuracyBatchStats).toBe(m.final!.testAccuracy);
        }
      });

    if (info.aliases.length) {
      test('the full name works as well as the alias, and gives the same run', async () => {
        const model = c.models[0];
        const run = (method: MethodName) => nl.compare({ ...model.config, steps: 20, evalInterval: 10,
          methods: [model.options ? { method, options: model.options } : method] });
        const short = await run(info.aliases[0] as MethodName);
        const long = await run(info.name);
        expect(JSON.stringify(long.methods)).toBe(JSON.stringify(short.methods));
      });
    }
  });

  // Batch statistics need two values per channel: batch size 1 in an MLP is refused.
  const errors: [string, CompareConfig, RegExp][] = [
    ...(info.usesBatchStatistics
      ? [[`${info.name} with batch size 1 in an mlp`, { methods: [(info.aliases[0] ?? info.name) as MethodName], batchSize: 1 },
        new RegExp(`config: ${info.name} needs batchSize >= 2 with an mlp`)] as [string, CompareConfig, RegExp]]
      : []),
    ...(c.errors ?? []),
  ];
  if (errors.length) {
    test.each(errors)('configuration error: %s', (_label, config, message) => {
      hostile('runner config');
      expect(() => nl.createRunner(config)).toThrow(message);
      expect(nl.memory().liveRunners).toBe(0);
    });
  }

  if (c.layers) test.each(c.layers)('layer: %s', (_title, fn) => fn());
});

test('an unknown alias: the message lists the methods and the aliases of the table', () => {
  hostile('runner config');
  const known = `known: ${table.map((m) => m.name).join(', ')}; aliases ${table.flatMap((m) => m.aliases).join(', ')}`;
  expect(() => nl.createRunner({ methods: ['rmsn' as never] })).toThrow(`unknown method 'rmsn' (${known})`);
  expect(() => nl.createRunner({ methods: ['rmsn' as never] }))
    .toThrow(/unknown method 'rmsn' \(known: none, batchnorm, .*rmsnorm.*; aliases bn, brn, ln, gn, in, rms, l1bn, gbn, sn, wn, cn\)/);
  expect(nl.memory().liveRunners).toBe(0);
});

describe('command line', () => {
  const work = mkdtempSync(join(tmpdir(), 'normlab-survey-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('--methods with the new methods, --lrn-size and --frn-learnable-eps', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { encoding: 'utf8', cwd: work });
    const mlp = run('compare', '--dataset', 'moons', '--noise', '0.05', '--hidden', '16,16', '--methods', 'rms,l1bn,frn',
      '--frn-learnable-eps', '--steps', '60', '--eval-interval', '30', '--momentum', '0.9', '--quiet', '--json', 'mlp.json');
    expect(mlp.status, mlp.stderr).toBe(0);
    const result = JSON.parse(readFileSync(join(work, 'mlp.json'), 'utf8'));
    expect(result.methods.map((m: { id: string }) => m.id)).toEqual(['rms', 'l1bn', 'frn']);
    expect(result.config.methods[2].options).toEqual({ learnableEps: true });
    expect(mlp.stdout).toMatch(/RMSNorm[\s\S]*L1 BatchNorm[\s\S]*FRN \+ TLU/);
    // LRN's size is required: without --lrn-size the command says so (exit code 2).
    const noSize = run('compare', '--dataset', 'digits', '--model', 'cnn', '--methods', 'lrn', '--steps', '2', '--quiet');
    expect(noSize.status).toBe(2);
    expect(noSize.stderr).toMatch(/lrn: option size is required/);
    const cnn = run('compare', '--dataset', 'digits', '--model', 'cnn', '--methods', 'lrn', '--lrn-size', '5', '--steps', '2',
      '--test-size', '64', '--quiet', '--json', 'cnn.json');
    expect(cnn.status, cnn.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(work, 'cnn.json'), 'utf8')).config.methods[0].options).toEqual({ size: 5 });
  });
});
