// LRN, RMSNorm, FRN + TLU and L1-norm BatchNorm inside models: a comparison with them learns (MLP on
// a separable 2-D set: rmsnorm, l1batchnorm, frn with a learned eps; CNN on digits: lrn, frn), with
// their short ids, labels and aliases; and the configuration errors specific to them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectClose, load, root, testValues, type Normlab } from './helpers.js';
import { hostile } from './hostile.js';
import type { CompareConfig } from '../../dist/index.js';

let nl: Normlab;
beforeAll(async () => {
  nl = await load();
});

const moons: CompareConfig = {
  dataset: { name: 'moons', noise: 0.05, trainSize: 400, testSize: 200 },
  model: { kind: 'mlp', hidden: [16, 16] },
  methods: ['rms', 'l1bn', { method: 'frn', options: { learnableEps: true } }],
  batchSize: 16,
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  steps: 300,
  evalInterval: 100,
  seed: 5,
};

describe('in models', () => {
  test('an MLP with rmsnorm, l1batchnorm or frn (learned eps) learns a separable 2-D set', async () => {
    const result = await nl.compare(moons);
    expect(result.methods.map((m) => [m.id, m.label])).toEqual([
      ['rms', 'RMSNorm'], ['l1bn', 'L1 BatchNorm'], ['frn', 'FRN + TLU']]);
    expect(result.methods.map((m) => m.model)).toEqual([
      'linear rmsnorm relu linear rmsnorm relu linear',
      'linear l1batchnorm relu linear l1batchnorm relu linear',
      'linear frn relu linear frn relu linear']);
    for (const m of result.methods) {
      expect(m.diverged, m.label).toBeNull();
      expect(m.final!.testAccuracy, m.label).toBeGreaterThanOrEqual(0.98);
      expect(m.final!.testLoss, m.label).toBeLessThan(0.1);
      expect(m.train.loss[0], m.label).toBeGreaterThan(0.5);
    }
    // Only L1BN uses batch statistics: the other two evaluate identically either way.
    const [rms, l1bn, frn] = result.methods;
    expect(rms.final!.testAccuracyBatchStats).toBe(rms.final!.testAccuracy);
    expect(frn.final!.testAccuracyBatchStats).toBe(frn.final!.testAccuracy);
    expect(l1bn.final!.testAccuracyBatchStats!).toBeGreaterThanOrEqual(0.95);
  });

  test('a CNN with lrn or frn learns the digits', async () => {
    const result = await nl.compare({
      dataset: { name: 'digits', testSize: 300 },
      model: { kind: 'cnn', channels: [8, 16] },
      methods: [{ method: 'lrn', options: { size: 5 } }, 'frn'],
      batchSize: 32,
      optimizer: { kind: 'adam', lr: 0.01 },
      schedule: { kind: 'cosine' },
      steps: 150,
      seed: 2,
    });
    expect(result.methods.map((m) => m.id)).toEqual(['lrn', 'frn']);
    expect(result.methods[0].model).toBe('conv2d lrn relu maxpool2d conv2d lrn relu maxpool2d flatten linear');
    for (const m of result.methods) expect(m.final!.testAccuracy, m.label).toBeGreaterThan(0.85);
  });

  test('the full method names work as well as the aliases, and give the same run', async () => {
    const short = await nl.compare({ ...moons, methods: ['rms', 'l1bn'], steps: 20, evalInterval: 10 });
    const long = await nl.compare({ ...moons, methods: ['rmsnorm', 'l1batchnorm'], steps: 20, evalInterval: 10 });
    expect(JSON.stringify(long.methods)).toBe(JSON.stringify(short.methods));
  });
});

describe('configuration errors', () => {
  const cases: [string, CompareConfig, RegExp][] = [
    ['frn in an mlp without a learned eps', { methods: ['frn'] },
      /frn: input shape \[1,128\] has one value per sample and channel.*use learnableEps: true/],
    ['lrn without its size', { methods: ['lrn'] }, /lrn: option size is required/],
    ['lrn in an mlp', { methods: [{ method: 'lrn', options: { size: 3 } }] }, /lrn: input shape \[1,128\] must have at least 3 dims/],
    ['l1batchnorm with batch size 1 in an mlp', { methods: ['l1bn'], batchSize: 1 },
      /config: l1batchnorm needs batchSize >= 2 with an mlp/],
    ['unknown alias', { methods: ['rmsn' as never] }, /unknown method 'rmsn' \(known: none, batchnorm, .*rmsnorm.*; aliases bn, brn, ln, gn, in, rms, l1bn, gbn, sn, wn, cn\)/],
  ];
  test.each(cases)('%s', (_label, config, message) => {
    hostile('runner config');
    expect(() => nl.createRunner(config)).toThrow(message);
    expect(nl.memory().liveRunners).toBe(0);
  });
});

describe('layers through the API', () => {
  test('frn: the learned eps and tau have gradients; getParams and setParams take them', () => {
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
  });

  test('l1batchnorm: running statistics move with training and drive inference', () => {
    using l1 = nl.createLayer('l1batchnorm', { channels: 2, momentum: 1, scaleSqrtPiOver2: false });
    // [2, 2, 2]: channel 0 holds 1, 5, 5, 3 (mean 3.5, mean |x - mean| 1.5), channel 1 holds
    // 3, -1, 1, -5 (mean -0.5, mean |x - mean| 2.5).
    l1.forward(Float32Array.of(1, 5, 3, -1, 5, 3, 1, -5), [2, 2, 2], { training: true });
    const state = l1.getState();
    expectClose('runningMean', state.runningMean, [3.5, -0.5]);
    expectClose('runningDev', state.runningDev, [1.5, 2.5]);
    // Inference with those: (x - runningMean) / (runningDev + 1e-5).
    expectClose('inference', l1.forward(Float32Array.of(4, 4), [1, 2]), [0.5 / 1.50001, 4.5 / 2.50001]);
  });
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
