// AdaBN as a procedure of the public API (Li et al. 2016, arXiv 1603.04779): a layer's
// setPopulationStatistics against statistics computed here in double precision, and a runner's
// adaptBatchNorm against the runner's own domain-shift evaluation of the same target data.
import { beforeAll, describe, expect, test } from 'vitest';
import { load, type Normlab } from './helpers.js';
import type { CompareConfig, Runner } from '../../dist/index.js';

let nl: Normlab;
beforeAll(async () => {
  nl = await load();
});

function accuracy(runner: Runner, id: string, x: Float32Array, labels: Int32Array): number {
  const K = runner.dataInfo().classes;
  const probs = runner.predict(id, x);
  let correct = 0;
  labels.forEach((label, i) => {
    const row = Array.from(probs.subarray(i * K, (i + 1) * K));
    if (row.indexOf(Math.max(...row)) === label) correct++;
  });
  return correct / labels.length;
}

describe('layer: setPopulationStatistics', () => {
  test('batchnorm takes the mean and the unbiased variance of the target inputs per channel', () => {
    using layer = nl.createLayer('batchnorm', { channels: 3 });
    const [N, C, S] = [4, 3, 5];
    const x = Float32Array.from({ length: N * C * S }, (_, i) => Math.sin(i * 1.7) * 3 + (i % 3));
    expect(layer.setPopulationStatistics(x, [N, C, S])).toBe(true);
    const state = layer.getState();
    for (let c = 0; c < C; c++) {
      const v: number[] = [];
      for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) v.push(x[(n * C + c) * S + s]);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const unbiased = v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1);
      expect(state.runningMean[c]).toBeCloseTo(mean, 5);
      expect(state.runningVar[c]).toBeCloseTo(unbiased, 5);
    }
  });

  test('methods without population statistics report false and change nothing', () => {
    using ln = nl.createLayer('layernorm', { normalizedShape: [3] });
    expect(ln.setPopulationStatistics(new Float32Array(6).fill(1), [2, 3])).toBe(false);
    using bn = nl.createLayer('batchnorm', { channels: 3, trackRunningStats: false });
    expect(bn.setPopulationStatistics(new Float32Array(6).fill(1), [2, 3])).toBe(false);
  });

  test('bad input is an Error and leaves the state as it was', () => {
    using layer = nl.createLayer('batchnorm', { channels: 2 });
    const before = layer.getState();
    expect(() => layer.setPopulationStatistics(new Float32Array(5), [2, 2])).toThrow(/input has 5 values but shape \[2,2\] needs 4/);
    expect(() => layer.setPopulationStatistics(new Float32Array(6), [2, 3])).toThrow(/batchnorm/);
    expect(() => layer.setPopulationStatistics(Float32Array.of(1, NaN, 0, 2), [2, 2])).toThrow(/setPopulationStatistics needs finite inputs, got NaN/);
    expect(layer.getState()).toEqual(before);
  });
});

describe('runner: adaptBatchNorm', () => {
  const config: CompareConfig = {
    dataset: { name: 'moons', noise: 0.1, trainSize: 400, testSize: 300 },
    model: { kind: 'mlp', hidden: [16, 16] },
    methods: ['bn', 'l1bn', 'ln'],
    batchSize: 16,
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    steps: 150,
    evalInterval: 150,
    seed: 2,
  };

  test("adapting to scaled test inputs gives exactly the runner's own AdaBN accuracies", async () => {
    const shifted = await nl.compare({ ...config, domainShift: { kind: 'scale', amount: 3 } });
    using r = nl.createRunner(config);
    r.step(150);
    const test = r.samples('test', 100000);
    const target = test.x.map((v) => v * 3);
    for (const m of shifted.methods) {
      const before = accuracy(r, m.id, target, test.labels);
      expect(before, `${m.id} before`).toBeCloseTo(m.final!.target!.accuracy, 6);
      const adapted = r.adaptBatchNorm(m.id, target);
      expect(adapted, m.id).toBe(m.id === 'ln' ? 0 : 2);  // two hidden layers, LN has nothing to adapt
      const after = accuracy(r, m.id, target, test.labels);
      expect(after, `${m.id} after`).toBeCloseTo(m.final!.target!.accuracyAdapted, 6);
      if (m.id !== 'ln') expect(after, m.id).toBeGreaterThan(before);
    }
  });

  test('bad input is an Error and the runner keeps working', () => {
    using r = nl.createRunner(config);
    r.step(10);
    expect(() => r.adaptBatchNorm('bn', new Float32Array(3))).toThrow(/adaptBatchNorm needs a multiple of 2 values/);
    expect(() => r.adaptBatchNorm('xn', new Float32Array(4))).toThrow(/no method 'xn' \(methods: bn, l1bn, ln\)/);
    expect(() => r.adaptBatchNorm('bn', Float32Array.of(0, NaN))).toThrow(/must be finite numbers, got NaN/);
    expect(() => r.adaptBatchNorm('bn', [1, 2] as never)).toThrow(/takes a Float32Array/);
    expect(r.step(5).step).toBe(15);
  });
});
