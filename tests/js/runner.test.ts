// The comparison runner through the public API: it learns, it is deterministic, it validates its
// configuration, and it streams what the playground and the CLI show.
import { beforeAll, describe, expect, test } from 'vitest';
import { load, type Normlab } from './helpers.js';
import { hostile } from './hostile.js';
import type { CompareConfig } from '../../dist/index.js';

let nl: Normlab;
beforeAll(async () => {
  nl = await load();
});

const moons: CompareConfig = {
  dataset: { name: 'moons', noise: 0.1, trainSize: 400, testSize: 200 },
  model: { kind: 'mlp', hidden: [16, 16] },
  methods: ['none', 'bn', 'brn', 'ln', { method: 'gn', options: { groups: 4 } }],
  batchSize: 16,
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  steps: 300,
  evalInterval: 100,
  seed: 5,
};

describe('learning', () => {
  test('every method learns a separable 2-D set to ~100% (inference mode)', async () => {
    const result = await nl.compare({ ...moons, dataset: { ...moons.dataset, noise: 0.05 } });
    for (const m of result.methods) {
      expect(m.final!.testAccuracy, m.label).toBeGreaterThanOrEqual(0.98);
      // Loss falls: the last eval is far below chance level (ln 2).
      expect(m.final!.testLoss, m.label).toBeLessThan(0.1);
      expect(m.train.loss[0], m.label).toBeGreaterThan(0.5);
    }
  });

  test('adam and a cnn on digits learn too', async () => {
    const result = await nl.compare({
      dataset: { name: 'digits', testSize: 300 },
      model: { kind: 'cnn', channels: [8, 16] },
      methods: ['bn', 'gn'],
      batchSize: 32,
      optimizer: { kind: 'adam', lr: 0.01 },
      schedule: { kind: 'cosine' },
      steps: 150,
      seed: 2,
    });
    expect(result.methods[0].model).toBe('conv2d batchnorm relu maxpool2d conv2d batchnorm relu maxpool2d flatten linear');
    for (const m of result.methods) expect(m.final!.testAccuracy, m.label).toBeGreaterThan(0.9);
  });
});

describe('determinism', () => {
  test('the same configuration and seed give identical results; another seed does not', async () => {
    const a = await nl.compare(moons);
    const b = await nl.compare(moons);
    const c = await nl.compare({ ...moons, seed: 6 });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(c.methods[1].train.loss)).not.toBe(JSON.stringify(a.methods[1].train.loss));
  });

  test('every method starts from the same weights and sees the same batches', async () => {
    // With a learning rate too small to matter, the first step's loss is the initial model's loss
    // on the first batch: identical for methods that normalize the same way at initialization.
    const r = await nl.compare({ ...moons, methods: ['bn', 'brn', { method: 'bn', id: 'bn2' }], steps: 1, evalInterval: 1 });
    const [bn, brn, bn2] = r.methods;
    expect(bn.train.loss[0]).toBe(bn2.train.loss[0]);
    // Batch Renorm's warm-up is plain BatchNorm (rMax 1, dMax 0).
    expect(brn.train.loss[0]).toBe(bn.train.loss[0]);
  });

  test('stepping by hand gives the same result as compare()', async () => {
    const whole = await nl.compare(moons);
    using runner = nl.createRunner(moons);
    const events = [];
    while (!runner.done) events.push(runner.step(37));
    expect(JSON.stringify(runner.result())).toBe(JSON.stringify(whole));
    // The streamed records add up to the result's curves.
    const streamed = events.flatMap((e) => e.methods.bn.train.map(([loss]) => loss));
    expect(streamed).toEqual(whole.methods.find((m) => m.id === 'bn')!.train.loss);
    expect(events.flatMap((e) => e.methods.bn.eval).map((e) => e.step)).toEqual([100, 200, 300]);
  });
});

describe('what it records', () => {
  test('eval records, Batch Renorm limits following the schedule, activation percentiles', async () => {
    // 192 test examples: the batch-statistics pass (full batches of 16) covers each exactly once.
    const r = await nl.compare({ ...moons, dataset: { ...moons.dataset, testSize: 192 }, steps: 200, evalInterval: 10,
      renormSchedule: { warmup: 0.25, rampEnd: 0.75 } });
    const brn = r.methods.find((m) => m.id === 'brn')!;
    // An eval after step s reports the limits of the last training step (0-based index s - 1, at
    // progress t = (s-1)/200): plain BatchNorm before t = 0.25, rMax 3 and dMax 5 from t = 0.75.
    const progress = (s: number) => Math.min(1, Math.max(0, ((s - 1) / 200 - 0.25) / 0.5));
    for (const e of brn.eval) {
      expect(e.renorm![0].rMax, `rMax at ${e.step}`).toBeCloseTo(1 + 2 * progress(e.step), 5);
      expect(e.renorm![0].dMax, `dMax at ${e.step}`).toBeCloseTo(5 * progress(e.step), 5);
    }
    expect(brn.eval.find((e) => e.step === 40)!.renorm![0]).toMatchObject({ rMax: 1, dMax: 0 });
    expect(brn.eval.find((e) => e.step === 160)!.renorm![0]).toMatchObject({ rMax: 3, dMax: 5 });
    for (const e of brn.eval) {
      const [rLo, rMean, rHi] = e.renorm![0].r;
      expect(rLo).toBeGreaterThanOrEqual(1 / e.renorm![0].rMax - 1e-6);
      expect(rHi).toBeLessThanOrEqual(e.renorm![0].rMax + 1e-6);
      expect(rLo <= rMean && rMean <= rHi).toBe(true);
    }
    for (const m of r.methods) {
      const e = m.eval.at(-1)!;
      expect(e.activations).toHaveLength(2); // two hidden layers
      for (const p of e.activations) {
        expect(p).toHaveLength(5);
        for (let i = 1; i < 5; i++) expect(p[i]).toBeGreaterThanOrEqual(p[i - 1]);
      }
      if (m.id === 'none' || m.id === 'ln' || m.id === 'gn') {
        // Without batch statistics, both evaluations are the same computation.
        expect(e.testAccuracyBatchStats).toBe(e.testAccuracy);
      }
    }
  });

  test('probes: the landscape and ICS at every evaluation, and the training exactly as without them', async () => {
    const base = { ...moons, steps: 120, evalInterval: 40 };
    const plain = await nl.compare(base);
    const runner = nl.createRunner({ ...base, probes: { landscape: true, ics: true } });
    while (!runner.done) runner.step(25);
    const probed = runner.result();
    const timing = runner.timing();
    runner.dispose();
    expect(probed.config.probes).toEqual({ landscape: true, ics: true, etas: [0.025, 0.05, 0.1, 0.2, 0.4] });
    expect(plain.config.probes).toBeUndefined();
    // The result less the probes' fields is the plain run's, bit for bit.
    const { probes: _probes, ...config } = probed.config;
    const stripped = { ...probed, config, methods: probed.methods.map((m) => ({ ...m, eval: m.eval.map(({ landscape: _l, ics: _i, ...e }) => e) })) };
    expect(JSON.stringify(stripped)).toBe(JSON.stringify(plain));
    for (const m of probed.methods) {
      expect(m.eval).toHaveLength(3);
      for (const e of m.eval) {
        const L = e.landscape!;
        expect(L.losses).toHaveLength(5);
        const losses = L.losses as number[], distances = L.gradientDistances as number[];
        expect(L.lossMin).toBe(Math.min(...losses));
        expect(L.lossMax).toBe(Math.max(...losses));
        expect(L.gradientDistanceMax).toBe(Math.max(...distances));
        // beta-smoothness is the largest gradient change per distance moved (within the 7 digits kept).
        const ratios = distances.map((d, i) => d / (L.etas[i] * L.gradientNorm));
        expect(L.betaSmoothness! / Math.max(...ratios)).toBeCloseTo(1, 5);
        // mlp 2-16-16-2: the second and third Linear have layers below them.
        expect(e.ics!.map((r) => r.layer), m.id).toEqual([2, 3]);
        for (const r of e.ics!) {
          expect(r.l2).toBeGreaterThan(0);
          expect(Math.abs(r.cosine!)).toBeLessThanOrEqual(1);
        }
      }
      expect(timing[m.id].evaluations).toBe(3);
      expect(timing[m.id].probeMs).toBeGreaterThan(0);
      expect(timing[m.id].probeMs).toBeLessThan(timing[m.id].evalMs);
    }
  });

  test('AdaBN reports target accuracy and leaves the trained model as it was', async () => {
    const base = { ...moons, methods: ['bn'], steps: 60, evalInterval: 60 } as CompareConfig;
    const plain = await nl.compare(base);
    const shifted = await nl.compare({ ...base, domainShift: { kind: 'scale', amount: 3 } });
    expect(shifted.methods[0].final!.testAccuracy).toBe(plain.methods[0].final!.testAccuracy);
    expect(shifted.methods[0].final!.target!.accuracyAdapted).toBeGreaterThanOrEqual(0);
    expect(plain.methods[0].final!.target).toBeNull();
    // The model is restored after adapting: its predictions afterwards are the unadapted model's.
    using a = nl.createRunner(base);
    using b = nl.createRunner({ ...base, domainShift: { kind: 'scale', amount: 3 } });
    a.step(60);
    b.step(60);
    const grid = Float32Array.from({ length: 200 }, (_, i) => (i % 20) / 10 - 1);
    expect(b.predict('bn', grid)).toEqual(a.predict('bn', grid));
  });

  test('predict and samples speak the data set\'s own units when the run preprocesses its inputs', () => {
    const argmaxAccuracy = (probs: Float32Array, labels: Int32Array, K: number) => {
      let correct = 0;
      labels.forEach((label, i) => {
        const row = Array.from(probs.subarray(i * K, (i + 1) * K));
        if (row.indexOf(Math.max(...row)) === label) correct++;
      });
      return correct / labels.length;
    };
    using plain = nl.createRunner({ ...moons, methods: ['ln'], steps: 80, evalInterval: 80 });
    const raw = plain.samples('test', 100000);
    expect(raw.count).toBe(moons.dataset!.testSize ?? 500);
    for (const kind of ['standardize', 'zca'] as const) {
      using r = nl.createRunner({ ...moons, methods: ['ln'], steps: 80, evalInterval: 80, preprocess: kind });
      r.step(80);
      const test = r.samples('test', 100000);
      // The same points as without preprocessing (the transform undone), up to float rounding.
      test.x.forEach((v, i) => expect(Math.abs(v - raw.x[i]), `${kind} x[${i}]`).toBeLessThan(1e-5));
      expect(test.labels).toEqual(raw.labels);
      // Predicting from those raw points reproduces the runner's own test accuracy: predict applies
      // the fitted transform.
      const accuracy = argmaxAccuracy(r.predict('ln', test.x), test.labels, 2);
      expect(accuracy, kind).toBeCloseTo(r.result().methods[0].final!.testAccuracy, 6);
      expect(accuracy, kind).toBeGreaterThan(0.75);
    }
    expect(() => plain.samples('validation' as never)).toThrow(/samples\(\) takes 'train' or 'test'/);
    expect(() => plain.samples('train', 0)).toThrow(/samples\(\) needs a positive integer count, got 0/);
    expect(plain.samples('train', 7).x.length).toBe(14);
  });

  test('a diverging method is marked and the others keep training', async () => {
    const r = await nl.compare({ ...moons, methods: ['none', 'ln'], optimizer: { kind: 'sgd', lr: 1e6 }, steps: 50, evalInterval: 10 });
    const none = r.methods[0];
    expect(none.diverged).not.toBeNull();
    expect(none.diverged!.reason).toMatch(/training loss is (NaN|infinite)/);
    expect(none.train.loss.length).toBe(none.diverged!.step);
    expect(r.methods[1].train.loss.length).toBeGreaterThan(none.train.loss.length);
  });
});

describe('configuration errors', () => {
  const cases: [string, CompareConfig, RegExp][] = [
    ['no methods', { methods: [] }, /config: methods must be a non-empty array/],
    ['a run larger than the WebAssembly heap', { methods: ['bn', 'brn', 'ln', 'gn'], model: { kind: 'mlp', hidden: [4096, 4096, 4096, 4096] }, optimizer: { kind: 'adam', lr: 0.001 } },
      /config: this run needs about \d+ MiB \(data \d+, parameters \d+, activations \d+ MiB for 4 methods\), more than the \d+ MiB of memory available/],
    ['unknown method', { methods: ['bn', 'xn' as never] }, /unknown method 'xn' \(known: none, batchnorm/],
    ['unknown key', { methods: ['bn'], batchsize: 4 } as never, /config: unknown option 'batchsize' \(known: dataset, model, methods, batchSize/],
    ['unknown dataset', { methods: ['bn'], dataset: { name: 'cifar' as never } }, /unknown/],
    ['batch size 1 with batchnorm in an mlp', { methods: ['bn'], batchSize: 1 }, /batchnorm needs batchSize >= 2 with an mlp/],
    ['batching', { methods: ['bn'], batching: 'noniid' as never }, /batching must be "iid" or "noniid:K"/],
    ['lr NaN', { methods: ['bn'], optimizer: { lr: NaN } }, /optimizer: lr must be a finite number > 0, got NaN/],
    ['momentum with adam', { methods: ['bn'], optimizer: { kind: 'adam', momentum: 0.9 } }, /momentum and nesterov are sgd options/],
    ['steps 0', { methods: ['bn'], steps: 0 }, /config: steps must be in \[1, 10000000\], got 0/],
    ['bad layer option', { methods: [{ method: 'gn', options: { groups: 7 } }] }, /groupnorm: groups \(7\) must divide channels \(128\)/],
    ['instancenorm in an mlp', { methods: ['in'] }, /^instancenorm needs image feature maps \[N, C, H, W\] \(it normalizes over spatial positions\), but the mlp gives it flat features: use the cnn model \(--model cnn\)/],
    ['an unknown data set', { methods: ['bn'], dataset: { name: 'mnsit' as never } }, /^dataset: unknown data set 'mnsit' \(known: circle, xor, gauss, spiral, moons, blobs, digits, mnist\)$/],
    ['a non-i.i.d. batch of 3 from 2 classes', { methods: ['bn'], batchSize: 3, batching: 'noniid:2' },
      /^batch size 3 is not divisible by the 2 classes of a non-i.i.d. batch \(noniid:2\): use a multiple of 2$/],
    ['3 classes per batch of 2', { methods: ['bn'], batching: 'noniid:3' }, /^batching noniid:3: 3 classes per batch, but moons has 2 classes$/],
    ['unknown domain shift', { methods: ['bn'], domainShift: { kind: 'rotate' as never } }, /domainShift: unknown kind 'rotate' \(known: invert, shift, scale, noise\)/],
    ['invert amount', { methods: ['bn'], domainShift: { kind: 'invert', amount: 2 } }, /domainShift: invert's amount must be in \[0, 1\], got 2/],
    ['batch larger than the data', { methods: ['ln'], dataset: { name: 'moons', trainSize: 10 }, batchSize: 32 }, /batchSize 32 is larger than the training set \(10\)/],
    ['unknown probe', { methods: ['bn'], probes: { landscape: true, hessian: true } as never }, /probes: unknown option 'hessian' \(known: landscape, ics, etas\)/],
    ['probes not an object', { methods: ['bn'], probes: 'landscape' as never }, /probes/],
    ['probe flag not a boolean', { methods: ['bn'], probes: { ics: 1 as never } }, /probes: .*ics/],
    ['negative step size', { methods: ['bn'], probes: { landscape: true, etas: [0.1, -0.1] } }, /probes: every step size in etas must be a finite number > 0, got -0.1/],
    ['infinite step size', { methods: ['bn'], probes: { landscape: true, etas: [Infinity] } }, /probes: every step size in etas must be a finite number > 0, got "Infinity"/],
    ['no step sizes', { methods: ['bn'], probes: { landscape: true, etas: [] } }, /probes: etas must be a list of 1 to 16 step sizes/],
    ['step sizes without the landscape', { methods: ['bn'], probes: { ics: true, etas: [0.1] } }, /probes: etas are the landscape probe's step sizes; set landscape: true with them/],
  ];
  test.each(cases)('%s', (_label, config, message) => {
    hostile('runner config');
    expect(() => nl.createRunner(config)).toThrow(message);
    expect(nl.memory().liveRunners).toBe(0);
  });

  test('digits without its data file', () => {
    hostile('runner config');
    expect(() => nl.createRunner({ methods: ['bn'], dataset: { name: 'digits' } })).toThrow(/the digits data set needs its data file's bytes/);
  });

  test('use after dispose', () => {
    const r = nl.createRunner(moons);
    r.dispose();
    r.dispose();
    expect(() => r.step()).toThrow('runner: step() called after dispose()');
  });

  test('a comparison of 4 methods on MNIST stays under 64 MB of WebAssembly heap', async () => {
    // A fresh module instance, so the heap's high-water mark is this comparison's alone.
    const fresh = await load({ wasmUrl: new URL('../../dist/normlab_wasm.wasm', import.meta.url) });
    const data = await fresh.loadDataset('mnist');
    using r = fresh.createRunner({ dataset: { name: 'mnist' }, methods: ['bn', 'brn', 'ln', 'gn'], batchSize: 32,
      steps: 100, evalInterval: 50, optimizer: { lr: 0.05, momentum: 0.9 } }, data);
    r.step(100);
    const result = r.result();
    expect(result.data).toEqual({ train: 9500, test: 500, classes: 10 });
    for (const m of result.methods) expect(m.final!.testAccuracy, m.label).toBeGreaterThan(0.8);
    expect(fresh.memory().heapBytes).toBeLessThan(64 * 2 ** 20);
  });

  test('1,000 runners created and disposed leave the heap flat', () => {
    const small = { ...moons, dataset: { ...moons.dataset, trainSize: 64, testSize: 32 }, steps: 2 };
    const churn = (n: number) => {
      for (let i = 0; i < n; i++) {
        using r = nl.createRunner(small);
        r.step(2);
      }
    };
    churn(20);
    const before = nl.memory();
    churn(1000);
    const after = nl.memory();
    expect(after.liveRunners).toBe(0);
    expect(after.usedBytes).toBe(before.usedBytes);
  });
});
