// Weight Normalization and Cosine Normalization through the public API of the built package:
// createLayer('weightnorm' | 'cosinenorm') as a Linear or a Conv2d against the PyTorch fixtures of
// tests/fixtures/layers.json (torch.nn.utils.weight_norm; F.cosine_similarity through autograd),
// options and their defaults, every bad input as an Error naming the field, no leaks, and the
// comparison runner's wn and cn methods.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectClose, f32, load, root, type Normlab } from './helpers.js';

interface LayerCase {
  layer: string;
  name: string;
  config: { in: number; out: number; bias: boolean; mode?: string; kernel?: number; stride?: number; padding?: number };
  inputShape: number[];
  outputShape: number[];
  x: number[];
  params: Record<string, number[]>;
  dy: number[];
  y: number[];
  dx: number[];
  grads: Record<string, number[]>;
}

const cases = (JSON.parse(readFileSync(join(root, 'tests', 'fixtures', 'layers.json'), 'utf8')).cases as LayerCase[])
  .filter((c) => c.config?.mode !== undefined);

let nl: Normlab;
beforeAll(async () => {
  nl = await load();
});

afterAll(() => {
  expect(nl.memory().liveLayers).toBe(0);
});

function optionsFor(c: LayerCase): Record<string, unknown> {
  const cfg = c.config;
  const shape = c.layer === 'conv2d'
    ? { inChannels: cfg.in, outChannels: cfg.out, kernelSize: cfg.kernel, stride: cfg.stride, padding: cfg.padding }
    : { inFeatures: cfg.in, outFeatures: cfg.out };
  const centered = cfg.mode === 'centered_cosine' ? { centered: true } : {};
  return { ...shape, ...centered, bias: cfg.bias };
}

test('the fixture file has every mode on both layers', () => {
  const kinds = new Set(cases.map((c) => `${c.layer}_${c.config.mode}`));
  expect([...kinds].sort()).toEqual([
    'conv2d_centered_cosine', 'conv2d_cosine', 'conv2d_weightnorm',
    'linear_centered_cosine', 'linear_cosine', 'linear_weightnorm',
  ]);
});

describe('PyTorch fixtures', () => {
  for (const c of cases) {
    test(c.name, () => {
      const method = c.config.mode === 'weightnorm' ? 'weightnorm' : 'cosinenorm';
      using layer = nl.createLayer(method, optionsFor(c) as never);
      expect(layer.kind).toBe(c.layer);
      expect(Object.keys(layer.getParams()).sort()).toEqual(Object.keys(c.params).sort());
      layer.setParams(Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, f32(v)])));
      expect(layer.outputShape(c.inputShape)).toEqual(c.outputShape);
      const y = layer.forward(f32(c.x), c.inputShape, { training: true });
      expectClose('y', y, c.y);
      expectClose('dx', layer.backward(f32(c.dy)), c.dx);
      const grads = layer.grads() as Record<string, Float32Array>;
      for (const [name, want] of Object.entries(c.grads)) expectClose(`d${name}`, grads[name], want);
      // No running state: inference computes the same.
      expect(layer.forward(f32(c.x), c.inputShape)).toEqual(y);
    });
  }
});

describe('createLayer', () => {
  test('weightnorm: a Linear with PyTorch names, defaults filled in, starting as the plain layer', () => {
    using wn = nl.createLayer('weightnorm', { inFeatures: 3, outFeatures: 2 });
    expect(wn.method).toBe('weightnorm');
    expect(wn.kind).toBe('linear');
    expect(wn.options).toEqual({ inFeatures: 3, outFeatures: 2, bias: true, seed: 0 });
    const p = wn.getParams();
    expect(Object.keys(p)).toEqual(['weight_g', 'weight_v', 'bias']);
    // g = ||v|| per row; y = x v^T + b (the plain layer), checked by hand.
    for (let o = 0; o < 2; o++) {
      const row = p.weight_v.slice(3 * o, 3 * o + 3);
      expect(p.weight_g[o]).toBeCloseTo(Math.hypot(...row), 6);
      for (const v of row) expect(Math.abs(v)).toBeLessThan(1 / Math.sqrt(3));
    }
    const x = f32([1, -2, 0.5]);
    const y = wn.forward(x, [1, 3]);
    for (let o = 0; o < 2; o++) {
      let want = p.bias![o];
      for (let i = 0; i < 3; i++) want += x[i] * p.weight_v[3 * o + i];
      expect(y[o]).toBeCloseTo(want, 6);
    }
    // Doubling g doubles w: y - b doubles.
    wn.setParams({ weight_g: p.weight_g.map((g) => 2 * g) });
    const y2 = wn.forward(x, [1, 3]);
    for (let o = 0; o < 2; o++) expect(y2[o] - p.bias![o]).toBeCloseTo(2 * (y[o] - p.bias![o]), 5);
  });

  test('seeds: equal seeds give equal weights, other seeds others', () => {
    const weights = nl.scope(() => [0, 0, 5].map((seed) =>
      nl.createLayer('cosinenorm', { inChannels: 2, outChannels: 3, kernelSize: 3, seed }).getParams().weight));
    expect(weights[0]).toEqual(weights[1]);
    expect(weights[0]).not.toEqual(weights[2]);
    expect(weights[0].length).toBe(3 * 2 * 3 * 3);
  });

  test('cosinenorm: outputs are cosines (by hand), centred ones Pearson correlations', () => {
    using cn = nl.createLayer('cosinenorm', { inFeatures: 4, outFeatures: 1 });
    expect(cn.options).toEqual({ inFeatures: 4, outFeatures: 1, bias: false, seed: 0, centered: false });
    expect(Object.keys(cn.getParams())).toEqual(['weight']);
    cn.setParams({ weight: f32([1, 2, 3, 4]) });
    const x = f32([0, 1, 0, -3]);
    expect(cn.forward(x, [1, 4])[0]).toBeCloseTo(-10 / (Math.sqrt(30) * Math.sqrt(10)), 6);
    using cc = nl.createLayer('cosinenorm', { inFeatures: 4, outFeatures: 1, centered: true, bias: true });
    cc.setParams({ weight: f32([1, 2, 3, 4]), bias: f32([0.5]) });
    // x - mean = (0.5, 1.5, 0.5, -2.5), w - mean = (-1.5, -0.5, 0.5, 1.5)
    const r = (-0.75 - 0.75 + 0.25 - 3.75) / (Math.sqrt(9) * Math.sqrt(5));
    expect(cc.forward(x, [1, 4])[0]).toBeCloseTo(r + 0.5, 6);
  });

  test('conv2d: output shape with stride and padding', () => {
    using wc = nl.createLayer('weightnorm', { inChannels: 3, outChannels: 4, kernelSize: 3, stride: 2, padding: 1, bias: false });
    expect(wc.kind).toBe('conv2d');
    expect(wc.options).toEqual({ inChannels: 3, outChannels: 4, kernelSize: 3, stride: 2, padding: 1, bias: false, seed: 0 });
    expect(wc.outputShape([2, 3, 7, 6])).toEqual([2, 4, 4, 3]);
    expect(wc.forward(new Float32Array(2 * 3 * 7 * 6).fill(0.5), [2, 3, 7, 6]).length).toBe(2 * 4 * 4 * 3);
  });

  test('nl.methods lists them', () => {
    expect(nl.methods).toContain('weightnorm');
    expect(nl.methods).toContain('cosinenorm');
  });
});

describe('errors name the field', () => {
  type Case = [label: string, run: () => unknown, message: RegExp];
  const bad: Case[] = [
    ['features missing', () => nl.createLayer('weightnorm', { inFeatures: 3 } as never), /weightnorm: option outFeatures is required/],
    ['features 0', () => nl.createLayer('cosinenorm', { inFeatures: 0, outFeatures: 2 }), /cosinenorm: inFeatures must be a positive integer, got 0/],
    ['features fractional', () => nl.createLayer('weightnorm', { inFeatures: 2.5, outFeatures: 2 }), /weightnorm: option inFeatures must be an integer, got 2.5/],
    ['mixing Linear and Conv2d', () => nl.createLayer('weightnorm', { inFeatures: 3, outFeatures: 2, kernelSize: 3 } as never),
      /weightnorm: inFeatures is a Linear option, but kernelSize makes a Conv2d, which takes inChannels and outChannels/],
    ['channels without kernelSize', () => nl.createLayer('cosinenorm', { inChannels: 3, outChannels: 2 } as never),
      /cosinenorm: inChannels is a Conv2d option: give kernelSize too/],
    ['unknown option', () => nl.createLayer('weightnorm', { inFeatures: 3, outFeatures: 2, centered: true } as never),
      /weightnorm: unknown option 'centered' \(known: inFeatures, outFeatures, bias, seed\)/],
    ['centered not a boolean', () => nl.createLayer('cosinenorm', { inFeatures: 3, outFeatures: 2, centered: 1 as never }),
      /cosinenorm: option centered must be true or false, got 1/],
    ['stride 0', () => nl.createLayer('weightnorm', { inChannels: 1, outChannels: 1, kernelSize: 3, stride: 0 }),
      /weightnorm: stride must be a positive integer, got 0/],
    ['negative seed', () => nl.createLayer('weightnorm', { inFeatures: 1, outFeatures: 1, seed: -1 }),
      /weightnorm: seed must be an integer >= 0, got -1/],
    ['NaN size', () => nl.createLayer('weightnorm', { inFeatures: NaN, outFeatures: 1 }), /weightnorm: option inFeatures must be an integer, got "NaN"/],
  ];
  for (const [label, run, message] of bad) {
    test(label, () => {
      const before = nl.memory().liveLayers;
      expect(run).toThrow(message);
      expect(nl.memory().liveLayers).toBe(before);
    });
  }

  test('shapes, lengths, parameters, use after dispose', () => {
    const lin = nl.createLayer('cosinenorm', { inFeatures: 3, outFeatures: 2, bias: true });
    const conv = nl.createLayer('weightnorm', { inChannels: 2, outChannels: 1, kernelSize: 3 });
    expect(() => lin.forward(new Float32Array(8), [2, 4])).toThrow(/linear: input shape \[2,4\] has 4 features, layer takes 3/);
    expect(() => lin.forward(new Float32Array(5), [2, 3])).toThrow(/cosinenorm: input has 5 values but shape \[2,3\] needs 6/);
    expect(() => lin.forward([1, 2, 3] as never, [1, 3])).toThrow(/cosinenorm: input must be a Float32Array, got Array/);
    expect(() => lin.outputShape([2, 3, 1])).toThrow(/linear: input shape \[2,3,1\] must have 2 dims \[N,features\]/);
    expect(() => conv.forward(new Float32Array(2 * 2 * 2 * 2), [2, 2, 2, 2])).toThrow(/conv2d: kernel 3 is larger than the padded input 2x2/);
    expect(() => conv.forward(new Float32Array(18), [1, 2, 3, 3.5])).toThrow(/weightnorm: input/);
    expect(() => lin.backward(new Float32Array(4))).toThrow(/cosinenorm: backward needs a training-mode forward first/);
    lin.forward(new Float32Array(6).fill(1), [2, 3], { training: true });
    expect(() => lin.backward(new Float32Array(5))).toThrow(/cosinenorm: dy has 5 values but the last training forward's output \[2,2\] has 4/);
    expect(() => lin.forward(new Float32Array(6), [2, 3], { training: 1 as never })).toThrow(/cosinenorm: options.training must be true or false/);
    // setParams: all or nothing.
    const before = lin.getParams();
    expect(() => lin.setParams({ bias: f32([1, 2]), weight: f32([1, NaN, 0, 0, 0, 0]) })).toThrow(/cosinenorm: weight\[1\] is not finite/);
    expect(lin.getParams()).toEqual(before);
    expect(() => lin.setParams({ weight: f32([1, 2]) })).toThrow(/cosinenorm: weight needs 6 values, got 2/);
    expect(() => lin.setParams({ weight_g: f32([1, 2]) } as never)).toThrow(/cosinenorm: no parameter 'weight_g' \(known: weight, bias\)/);
    expect(() => conv.setParams({ weight_v: [1] as never })).toThrow(/weightnorm: weight_v must be a Float32Array, got Array/);
    lin.dispose();
    lin.dispose(); // idempotent
    expect(lin.disposed).toBe(true);
    expect(() => lin.forward(new Float32Array(3), [1, 3])).toThrow(/cosinenorm: forward\(\) called after dispose\(\)/);
    expect(() => lin.getParams()).toThrow(/cosinenorm: getParams\(\) called after dispose\(\)/);
    conv.dispose();
  });
});

describe('memory', () => {
  test('no leaks: create, train, dispose many times; scope disposes what it does not return', () => {
    const churn = (n: number) => {
      for (let i = 0; i < n; i++) {
        using l = nl.createLayer(i % 2 ? 'weightnorm' : 'cosinenorm', { inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1 });
        const y = l.forward(new Float32Array(2 * 2 * 5 * 5).fill(0.25), [2, 2, 5, 5], { training: true });
        l.backward(y);
        try {
          l.forward(new Float32Array(3), [1, 3]);
        } catch {
          // errors leave nothing behind either
        }
      }
    };
    churn(50);
    const before = nl.memory();
    churn(1000);
    const after = nl.memory();
    expect(after.liveLayers).toBe(before.liveLayers);
    expect(after.usedBytes).toBe(before.usedBytes);

    const kept = nl.scope(() => {
      nl.createLayer('weightnorm', { inFeatures: 2, outFeatures: 2 });
      nl.createLayer('batchnorm', { channels: 2 });
      return nl.createLayer('cosinenorm', { inFeatures: 2, outFeatures: 2 });
    });
    expect(nl.memory().liveLayers).toBe(before.liveLayers + 1);
    kept.dispose();
    expect(nl.memory().liveLayers).toBe(before.liveLayers);
  });
});

describe('runner', () => {
  test('wn and cn train on moons, with their labels, ids and models', async () => {
    const result = await nl.compare({
      dataset: { name: 'moons', trainSize: 400, testSize: 200 },
      model: { hidden: [32, 32] },
      methods: ['bn', 'wn', 'cn', { method: 'cosinenorm', options: { centered: true } }],
      optimizer: { kind: 'adam', lr: 0.01 },
      steps: 300,
      seed: 3,
    });
    expect(result.methods.map((m) => m.id)).toEqual(['bn', 'wn', 'cn', 'cn-2']);
    expect(result.methods.map((m) => m.label)).toEqual(['BatchNorm', 'Weight Norm', 'Cosine Norm', 'Cosine Norm (centred)']);
    expect(result.methods[1].model).toBe('linear_weightnorm relu linear_weightnorm relu linear');
    expect(result.methods[3].model).toBe('linear_centered_cosine relu linear_centered_cosine relu linear');
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    for (const m of result.methods.slice(0, 3)) {
      expect(m.diverged, m.label).toBeNull();
      const loss = m.train.loss;
      expect(mean(loss.slice(-20)), m.label).toBeLessThan(0.8 * mean(loss.slice(0, 20)));
      expect(m.final!.testAccuracy, m.label).toBeGreaterThan(0.8);
    }
    // Weight norm starts from the plain layers' weights: its first loss is that of a plain MLP
    // ('none', same seed, same first batch).
    const none = await nl.compare({ dataset: { name: 'moons', trainSize: 400, testSize: 200 }, model: { hidden: [32, 32] },
      methods: ['none'], optimizer: { kind: 'adam', lr: 0.01 }, steps: 1, seed: 3 });
    expect(result.methods[1].train.loss[0]).toBeCloseTo(none.methods[0].train.loss[0], 5);
  });

  test('bad options are errors naming the field', () => {
    expect(() => nl.createRunner({ methods: [{ method: 'wn', options: { centered: true } }], steps: 1 }))
      .toThrow(/weightnorm: unknown option 'centered' \(weightnorm takes no options\)/);
    expect(() => nl.createRunner({ methods: [{ method: 'cn', options: { centred: true } }], steps: 1 }))
      .toThrow(/cosinenorm: unknown option 'centred' \(known: centered\)/);
    expect(nl.memory().liveRunners).toBe(0);
  });
});
