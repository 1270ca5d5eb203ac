// nl.model: a model of the user's own. It must be the comparison runner's model: trained on the
// runner's training set with the runner's seed, batch size and optimizer, it equals the runner's
// arm bit for bit (losses and predictions). Then what fit, evaluate, predict, the weights and fold
// promise, every bad input's Error, and no leaks.
import { beforeAll, describe, expect, it } from 'vitest';
import { load, type Normlab } from './helpers.js';
import type { CompareConfig, Model } from '../../dist/index.js';
import { hostile } from './hostile.js';

let nl: Normlab;
let digits: Uint8Array;
// The digits training and test sets as the runner splits them (seed 1, 500 test samples).
let train: { x: Float32Array; labels: Int32Array; count: number };
let test: { x: Float32Array; labels: Int32Array; count: number };

// The runner's 7-significant-digit rounding of its records (run/arm.h r7), for comparing losses.
function r7(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const scale = 10 ** (6 - Math.floor(Math.log10(Math.abs(v))));
  return Math.round(v * scale) / scale;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

beforeAll(async () => {
  nl = await load();
  digits = await nl.loadDataset('digits');
  using runner = nl.createRunner({ dataset: { name: 'digits' }, methods: ['none'], steps: 1 }, digits);
  train = runner.samples('train', 100000);
  test = runner.samples('test', 100000);
});

describe('nl.model equals the runner arm', () => {
  // Same seed: same initial weights (the init stream) and, for the first fit, the same batch order
  // (the order stream); same data: the runner's own training set, read back with samples(). One
  // epoch of floor(n / batchSize) steps is the runner's sampler's first epoch, so the two see the
  // same batches in the same order; every step must then give the same loss, and the trained
  // models the same predictions, bit for bit.
  const cases = [
    { method: 'batchnorm', layers: 'linear:32,norm,relu,linear:32,norm,relu', optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0.9 } },
    { method: 'groupnorm', layers: 'conv:8,norm,relu,pool:2,res[conv:8,norm,relu],gap', optimizer: { kind: 'adam' as const, lr: 0.01 } },
  ];
  for (const c of cases) {
    it(`${c.method}: ${c.layers}`, async () => {
      const batchSize = 16, seed = 7;
      const steps = Math.floor(train.count / batchSize);
      const config = {
        dataset: { name: 'digits' }, model: { layers: c.layers }, methods: [c.method], batchSize,
        optimizer: c.optimizer, steps, evalInterval: steps, seed,
      } as unknown as CompareConfig;
      using runner = nl.createRunner(config, digits);
      // The runner's own split (it depends on the seed) and test samples.
      const own = runner.samples('train', 100000), held = runner.samples('test', 100000);
      expect(own.count).toBe(train.count);
      runner.step(steps);
      const arm = runner.result().methods[0];
      using model = nl.model({ input: [1, 8, 8], layers: c.layers, classes: 10, norm: c.method as 'batchnorm', optimizer: c.optimizer, seed });
      const losses = await model.fit(own.x, own.labels, { epochs: 1, batchSize });
      expect(losses).toHaveLength(steps);
      expect(arm.train.loss).toHaveLength(steps);
      // The runner records each loss as a float rounded to 7 digits: the same rounding of ours.
      expect(losses.map((l) => r7(Math.fround(l)))).toEqual(arm.train.loss);
      expect(bits(model.predict(held.x))).toEqual(bits(runner.predict(arm.id, held.x)));
      expect(model.steps).toBe(steps);
    });
  }
});

describe('fit', () => {
  const models = [
    // From a loss of about 2.3 (chance: 10 classes): the MLP reaches about 0.07 (97%), the small
    // global-average-pooled CNN about 0.56 (86%) in 5 epochs.
    { norm: 'batchnorm' as const, layers: 'linear:64,norm,relu', loss: 0.2, accuracy: 0.93 },
    { norm: { method: 'groupnorm' as const, options: { groups: 4 } }, layers: 'conv:8,norm,relu,pool:2,conv:16,norm,relu,gap', loss: 0.8, accuracy: 0.8 },
  ];
  for (const m of models) {
    it(`reduces the loss on digits: ${JSON.stringify(m.norm)} ${m.layers}`, async () => {
      using model = nl.model({ input: [1, 8, 8], layers: m.layers, classes: 10, norm: m.norm, optimizer: { kind: 'adam', lr: 0.01 }, seed: 3 });
      const before = model.evaluate(test.x, test.labels);
      expect(before.loss).toBeGreaterThan(2.0);
      const steps: number[] = [];
      const losses = await model.fit(train.x, train.labels, { epochs: 5, batchSize: 32, onStep: (s) => steps.push(s) });
      expect(losses).toHaveLength(5 * Math.floor(train.count / 32));
      expect(steps).toEqual(losses.map((_, i) => i));
      const after = model.evaluate(test.x, test.labels);
      expect(after.loss).toBeLessThan(m.loss);
      expect(after.accuracy).toBeGreaterThan(m.accuracy);
      const tail = losses.slice(-20).reduce((a, b) => a + b, 0) / 20;
      expect(tail).toBeLessThan(losses.slice(0, 5).reduce((a, b) => a + b, 0) / 5 / 3);
    });
  }

  it('abort stops between steps; the steps taken stay', async () => {
    using model = nl.model({ input: [64], layers: 'linear:16,norm,relu', classes: 10, norm: 'bn', seed: 1 });
    const controller = new AbortController();
    const fit = model.fit(train.x, train.labels, {
      epochs: 3, batchSize: 8, signal: controller.signal,
      onStep: (step) => { if (step === 4) controller.abort(); },
    });
    await expect(fit).rejects.toThrow(/abort/i);
    expect(model.steps).toBe(5);
    // The model is usable, and a new fit starts (the aborted one is over).
    const losses = await model.fit(train.x, train.labels, { epochs: 1, batchSize: 64 });
    expect(losses).toHaveLength(Math.floor(train.count / 64));
    hostile('model API');
    const aborted = new AbortController();
    aborted.abort();
    expect(() => model.fit(train.x, train.labels, { epochs: 1, batchSize: 8, signal: aborted.signal })).toThrow(/abort/i);
  });

  it('a second fit continues the seed\'s batch order; equal seeds give equal models', async () => {
    const make = () => nl.model({ input: [64], layers: 'linear:16,norm,relu', classes: 10, norm: 'ln', seed: 5 });
    using a = make();
    using b = make();
    const a1 = await a.fit(train.x, train.labels, { epochs: 1, batchSize: 32 });
    const a2 = await a.fit(train.x, train.labels, { epochs: 1, batchSize: 32 });
    const b1 = await b.fit(train.x, train.labels, { epochs: 1, batchSize: 32 });
    const b2 = await b.fit(train.x, train.labels, { epochs: 1, batchSize: 32 });
    expect(a1).toEqual(b1);
    expect(a2).toEqual(b2);
    expect(a2).not.toEqual(a1);
  });
});

describe('evaluate and predict', () => {
  it('probabilities sum to 1; accuracy and loss are what they say', async () => {
    using model = nl.model({ input: [1, 8, 8], layers: 'linear:32,norm,relu', classes: 10, norm: 'bn', seed: 2 });
    await model.fit(train.x, train.labels, { epochs: 1, batchSize: 32 });
    const p = model.predict(test.x);
    expect(p).toHaveLength(test.count * 10);
    let correct = 0, loss = 0;
    for (let n = 0; n < test.count; ++n) {
      const row = Array.from(p.subarray(n * 10, n * 10 + 10));
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
      expect(row.every((v) => v >= 0 && v <= 1)).toBe(true);
      if (row.indexOf(Math.max(...row)) === test.labels[n]) ++correct;
      loss -= Math.log(row[test.labels[n]]);
    }
    const e = model.evaluate(test.x, test.labels);
    expect(e.accuracy).toBe(correct / test.count);
    expect(e.loss).toBeCloseTo(loss / test.count, 4);
    // Inference mode: a sample's prediction does not depend on the others in its batch.
    expect(bits(model.predict(test.x.subarray(64, 128)))).toEqual(bits(p.subarray(10, 20)));
  });
});

describe('weights', () => {
  it('getWeights / setWeights: a second model given the first\'s weights predicts identically', async () => {
    using a = nl.model({ input: [1, 8, 8], layers: 'conv:4,norm,relu,res[conv:4,norm],pool:2,linear:16,norm,relu', classes: 10, norm: 'bn', seed: 1 });
    await a.fit(train.x, train.labels, { epochs: 1, batchSize: 32 });
    const w = a.getWeights();
    expect(Object.keys(w)).toContain('1.runningMean');
    expect(Object.keys(w)).toContain('3.0.weight');
    expect(Object.keys(w)).toContain('3.1.runningVar');
    expect(w['1.runningMean'].some((v) => v !== 0)).toBe(true);
    using b = nl.model({ input: [1, 8, 8], layers: 'conv:4,norm,relu,res[conv:4,norm],pool:2,linear:16,norm,relu', classes: 10, norm: 'bn', seed: 99 });
    expect(bits(b.predict(test.x))).not.toEqual(bits(a.predict(test.x)));
    b.setWeights(w);
    expect(bits(b.predict(test.x))).toEqual(bits(a.predict(test.x)));
    // Copies: changing what getWeights gave changes nothing.
    w['0.weight'].fill(0);
    expect(bits(b.predict(test.x))).toEqual(bits(a.predict(test.x)));
  });

  it('setWeights is all or nothing', () => {
    using m = nl.model({ input: [64], layers: 'linear:8,norm,relu', classes: 3, norm: 'bn', seed: 1 });
    const before = m.predict(test.x.subarray(0, 640));
    const good = m.getWeights();
    // A valid change of 0.weight rides along with every refused one: a partial update would show.
    const base = { ...good, '0.weight': new Float32Array(512) };
    const bad: [Record<string, Float32Array>, RegExp][] = [
      [{ ...base, 'nope.weight': new Float32Array(1) }, /unknown weight 'nope.weight' \(this model's weights: 0\.weight, 0\.bias/],
      [{ ...good, '0.weight': new Float32Array(3) }, /'0\.weight' has 3 values, the model's has 512/],
      [Object.fromEntries(Object.entries(base).filter(([k]) => k !== '1.beta')), /missing 1\.beta/],
      [{ ...base, '1.gamma': new Float32Array(8).fill(NaN) }, /'1\.gamma'\[0\] is NaN/],
      [{ ...base, '1.runningVar': new Float32Array(8).fill(-1) }, /setWeights: .*runningVar/],
      [{ ...base, '0.bias': [1, 2] as unknown as Float32Array }, /'0\.bias' must be a Float32Array/],
    ];
    for (const [weights, message] of bad) {
      expect(() => m.setWeights(weights)).toThrow(message);
      hostile('model API');
      expect(bits(m.predict(test.x.subarray(0, 640)))).toEqual(bits(before));
    }
    expect(() => m.setWeights(null as unknown as Record<string, Float32Array>)).toThrow(/object of named Float32Arrays/);
    hostile('model API');
  });
});

describe('fold', () => {
  it('a folded copy predicts within 1e-5, for inference only', async () => {
    using model = nl.model({ input: [1, 8, 8], layers: 'conv:8,norm,relu,pool:2,linear:32,norm,relu', classes: 10, norm: 'bn', seed: 4 });
    await model.fit(train.x, train.labels, { epochs: 2, batchSize: 32 });
    const { model: folded, report } = model.fold();
    using _f = folded;
    expect(folded.folded).toBe(true);
    expect(report.folded.map((f) => f.into)).toEqual(['conv2d', 'linear']);
    expect(report.kept).toEqual([]);
    expect(folded.summary).not.toMatch(/batchnorm/);
    const p = model.predict(test.x), q = folded.predict(test.x);
    let worst = 0;
    for (let i = 0; i < p.length; ++i) worst = Math.max(worst, Math.abs(p[i] - q[i]));
    expect(worst).toBeLessThan(1e-5);
    expect(() => folded.fit(train.x, train.labels, { epochs: 1, batchSize: 8 })).toThrow(/folded, for inference only/);
    hostile('model API');
    // The original still trains.
    await model.fit(train.x, train.labels, { epochs: 1, batchSize: 64 });
  });
});

describe('bad input throws a clear Error', () => {
  const opts = { input: [64], layers: 'linear:8,norm,relu', classes: 10, norm: 'bn' } as const;
  const bad: [string, unknown, RegExp][] = [
    ['null', null, /model: options must be an object/],
    ['no input', { layers: 'linear:8', classes: 10 }, /input is required/],
    ['input [0]', { ...opts, input: [0] }, /input dimensions must be whole numbers in \[1, 65536\]/],
    ['input rank 2', { ...opts, input: [8, 8] }, /input must be one sample's shape, \[F\] or \[C, H, W\]/],
    ['no layers', { input: [64], classes: 10 }, /layers is required/],
    ['bad compact form', { ...opts, layers: 'linear:8,nrom' }, /nrom/],
    ['conv on features', { ...opts, layers: 'conv:8' }, /conv/],
    ['no classes', { input: [64], layers: 'linear:8' }, /classes is required/],
    ['one class', { ...opts, classes: 1 }, /classes must be in \[2, 4096\]/],
    ['unknown method', { ...opts, norm: 'nope' }, /nope/],
    ['bad method options', { ...opts, norm: { method: 'gn', options: { groups: 3 } } }, /group/],
    ['bad optimizer', { ...opts, optimizer: { lr: -1 } }, /lr/],
    ['negative seed', { ...opts, seed: -1 }, /seed must be an integer/],
    ['unknown option', { ...opts, epochs: 3 }, /epochs/],
  ];
  for (const [what, options, message] of bad) {
    it(`nl.model: ${what}`, () => {
      const live = nl.memory().liveModels;
      expect(() => nl.model(options as never)).toThrow(message);
      expect(nl.memory().liveModels).toBe(live);
      hostile('model API');
    });
  }

  it('fit, evaluate, predict', () => {
    using m = nl.model(opts);
    const x = train.x.subarray(0, 64 * 10), labels = train.labels.subarray(0, 10);
    const nan = x.slice();
    nan[64 * 3 + 5] = NaN;
    const cases: [() => unknown, RegExp][] = [
      [() => m.fit([1, 2] as unknown as Float32Array, labels, { epochs: 1, batchSize: 2 }), /fit: x must be a Float32Array/],
      [() => m.fit(x.subarray(1), labels, { epochs: 1, batchSize: 2 }), /fit: x has 639 values, not a whole number of samples of input \[64\]/],
      [() => m.fit(nan, labels, { epochs: 1, batchSize: 2 }), /fit: x\[197\] \(sample 3, value 5\) is NaN/],
      [() => m.fit(x, labels.subarray(1), { epochs: 1, batchSize: 2 }), /fit: 9 labels for 10 samples/],
      [() => m.fit(x, [...labels.subarray(0, 9), 10], { epochs: 1, batchSize: 2 }), /fit: labels\[9\] is 10, outside the 10 classes \[0, 9\]/],
      [() => m.fit(x, [...labels.subarray(0, 9), 1.5], { epochs: 1, batchSize: 2 }), /fit: labels\[9\] is 1.5, not a class index/],
      [() => m.fit(x, 'abc' as unknown as number[], { epochs: 1, batchSize: 2 }), /fit: labels must be an array/],
      [() => m.fit(x, labels, { epochs: 1, batchSize: 0 }), /fit: batchSize must be a positive integer, got 0/],
      [() => m.fit(x, labels, { epochs: 1, batchSize: 11 }), /fit: batchSize must be an integer in \[1, 10\]/],
      [() => m.fit(x, labels, { epochs: 1, batchSize: 1 }), /needs batchSize >= 2/],
      [() => m.fit(x, labels, { epochs: 0, batchSize: 2 }), /fit: epochs must be a positive integer/],
      [() => m.fit(x, labels, { epochs: 1 } as never), /fit: batchSize must be a positive integer, got undefined/],
      [() => m.fit(x, labels, { epochs: 1, batchSize: 2, batch: 3 } as never), /fit: unknown option 'batch'/],
      [() => m.fit(x, labels, { epochs: 1, batchSize: 2, onStep: 3 } as never), /fit: onStep must be a function/],
      [() => m.fit(x, labels, { epochs: 1, batchSize: 2, signal: {} } as never), /fit: signal must be an AbortSignal/],
      [() => m.fit(x, labels, undefined as never), /fit: options must be an object/],
      [() => m.evaluate(x.subarray(3), labels), /evaluate: x has 637 values/],
      [() => m.evaluate(x, labels.subarray(2)), /evaluate: 8 labels for 10 samples/],
      [() => m.evaluate(x, [-1, ...labels.subarray(1)]), /evaluate: labels\[0\] is -1, outside/],
      [() => m.predict(new Float32Array(0)), /predict: x is empty/],
      [() => m.predict(new Float32Array(65)), /predict: x has 65 values/],
      [() => m.predict(nan), /predict: x\[197\] \(sample 3, value 5\) is NaN/],
    ];
    const before = m.predict(x);
    for (const [call, message] of cases) {
      expect(call).toThrow(message);
      hostile('model API');
    }
    // Nothing changed, and no fit was left under way.
    expect(m.steps).toBe(0);
    expect(bits(m.predict(x))).toEqual(bits(before));
  });

  it('a second fit while one runs; calls after dispose', async () => {
    const m = nl.model(opts);
    const fit = m.fit(train.x, train.labels, { epochs: 1, batchSize: 16 });
    expect(() => m.fit(train.x, train.labels, { epochs: 1, batchSize: 16 })).toThrow(/already fitting/);
    hostile('model API');
    await fit;
    m.dispose();
    m.dispose();
    for (const call of [() => m.predict(train.x), () => m.getWeights(), () => m.fold(), () => m.steps,
      () => m.evaluate(train.x, train.labels), () => m.fit(train.x, train.labels, { epochs: 1, batchSize: 8 })]) {
      expect(call).toThrow(/model: \w+\(\) called after dispose\(\)/);
      hostile('model API');
    }
  });

  it('dispose during a fit stops it', async () => {
    const m = nl.model(opts);
    const fit = m.fit(train.x, train.labels, { epochs: 20, batchSize: 8, onStep: (s) => { if (s === 2) m.dispose(); } });
    await expect(fit).rejects.toThrow(/model: fit\(\) called after dispose\(\)/);
    hostile('model API');
  });
});

describe('memory', () => {
  it('every model and folded copy is counted and freed', async () => {
    const start = nl.memory().liveModels;
    const models: Model[] = [];
    for (let i = 0; i < 3; ++i) models.push(nl.model({ input: [64], layers: 'linear:8,norm,relu', classes: 10, norm: 'bn', seed: i }));
    await models[0].fit(train.x, train.labels, { epochs: 1, batchSize: 32 });
    models.push(models[0].fold().model);
    expect(nl.memory().liveModels).toBe(start + 4);
    for (const m of models) m.dispose();
    expect(nl.memory().liveModels).toBe(start);
    expect(start).toBe(0);
  });
});
