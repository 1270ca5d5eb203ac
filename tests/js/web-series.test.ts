// The playground's chart data shaping (web/src/series.ts), run traces (store.ts) and result
// files (results.ts), on a small real comparison run in Node.
import { beforeAll, describe, expect, test } from 'vitest';
import { load, type CompareConfig, type CompareResult, type ResolvedConfig } from 'normlab';
import {
  activationPanels, dataRange, layerCount, movingAverage, niceTicks, renormChart, seedSweepChart, seedTestAccuracyChart,
  seedTrainChart, smoothingWindow, sweepChart, testAccuracyChart, thin, trainChart,
} from '../../web/src/series.js';
import { resultsCsv, resultsJson, summaryTable, sweepRows, pct } from '../../web/src/results.js';
import { RunTrace } from '../../web/src/store.js';
import { Methods } from '../../web/src/methods.js';
import { OKABE_ITO } from '../../web/src/palette.js';
import { mapPixels } from '../../web/src/heatmap.js';

const config: CompareConfig = {
  dataset: { name: 'moons', noise: 0.1, trainSize: 200, testSize: 100 },
  model: { kind: 'mlp', hidden: [8, 8] },
  methods: ['none', 'bn', 'brn', { method: 'gn', options: { groups: 2 } }],
  batchSize: 8,
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  steps: 120,
  evalInterval: 20,
  seed: 3,
};

/** A trace fed chunk by chunk, as the page feeds it from the worker, and the runner's result. */
let streamed: RunTrace;
let result: CompareResult;
/** The method table's methods, as the page builds them. */
let methods: Methods;
beforeAll(async () => {
  const nl = await load();
  methods = new Methods(nl.describeMethods());
  using runner = nl.createRunner(config);
  streamed = new RunTrace(runner.config, runner.dataInfo().classes, methods);
  while (!runner.done) streamed.apply(runner.step(17));
  result = runner.result();
});

describe('run traces', () => {
  test('chunks add up to the runner\'s full result', () => {
    expect(streamed.stepsDone).toBe(120);
    for (const m of result.methods) {
      const t = streamed.method(m.id)!;
      expect(t.loss).toEqual(m.train.loss);
      expect(t.accuracy).toEqual(m.train.accuracy);
      expect(t.evals).toEqual(m.eval);
    }
    const finished = new RunTrace(result.config, 2, methods);
    finished.finish(result, {});
    expect(finished.methods.map((m) => m.evals.length)).toEqual(result.methods.map((m) => m.eval.length));
  });

  test('a result passed on without its per-step arrays (to the charts worker) keeps the streamed ones', () => {
    const light = { ...result, methods: result.methods.map((m) => ({ ...m, train: undefined, eval: undefined })) };
    const t = new RunTrace(streamed.config, 2, methods);
    for (const m of streamed.methods) Object.assign(t.method(m.id)!, { loss: [...m.loss], accuracy: [...m.accuracy], evals: [...m.evals] });
    t.finish(light as unknown as CompareResult, {});
    expect(t.result).toBe(light);
    expect(t.methods[1].loss).toEqual(result.methods[1].train.loss);
    expect(t.methods[1].evals).toEqual(result.methods[1].eval);
  });
});

describe('shaping', () => {
  test('moving average: trailing window, non-finite values skipped', () => {
    expect(movingAverage([1, 2, 3, 4], 2)).toEqual([1, 1.5, 2.5, 3.5]);
    expect(movingAverage([1, Number.NaN, 3], 3)).toEqual([1, 1, 2]);
    expect(movingAverage([Number.NaN], 3)[0]).toBeNaN();
    expect(movingAverage([], 5)).toEqual([]);
    expect(smoothingWindow(6485)).toBe(130);
    expect(smoothingWindow(10)).toBe(1);
    expect(smoothingWindow(1e7)).toBe(500);
  });

  test('thin keeps at most maxPoints, evenly, with the last point', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
    const t = thin(xs, xs.map((x) => 2 * x), 100);
    expect(t.xs.length).toBeLessThanOrEqual(101);
    expect(t.xs[0]).toBe(1);
    expect(t.xs.at(-1)).toBe(1000);
    expect(t.ys.at(-1)).toBe(2000);
    expect(thin([1, 2], [3, 4], 10)).toEqual({ xs: [1, 2], ys: [3, 4] });
  });

  test('nice ticks are round and cover the range', () => {
    expect(niceTicks(0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0, 6485, 4)).toEqual([0, 2000, 4000, 6000]);
    expect(niceTicks(-0.5, 0.5, 4)).toEqual([-0.5, -0.25, 0, 0.25, 0.5]);
    expect(niceTicks(1, 1)).toEqual([1]);
    expect(niceTicks(Number.NaN, 1)).toEqual([]);
  });

  test('training curves: one line per method, percent for accuracy, x up to the configured steps', () => {
    const loss = trainChart(streamed, 'loss');
    expect(loss.lines.map((l) => l.label)).toEqual(['No normalization', 'BatchNorm', 'Batch Renorm', 'GroupNorm (2 groups)']);
    expect(loss.legend).toHaveLength(4);
    expect(loss.xMax).toBe(120);
    expect(loss.lines[0].xs.at(-1)).toBe(120);
    const acc = trainChart(streamed, 'accuracy');
    for (const l of acc.lines) for (const y of l.ys) expect(y).toBeGreaterThanOrEqual(0), expect(y).toBeLessThanOrEqual(100);
    expect(trainChart(streamed, 'loss', 10).lines[0].xs.length).toBeLessThanOrEqual(11);
  });

  test('colours: Okabe-Ito, one per method', () => {
    const colors = trainChart(streamed, 'loss').lines.map((l) => l.color);
    expect(new Set(colors).size).toBe(colors.length);
    for (const c of colors) expect(Object.values(OKABE_ITO)).toContain(c);
    expect(colors[1]).toBe(OKABE_ITO.vermillion);  // BatchNorm
    expect(colors).toEqual(['none', 'bn', 'brn', 'gn'].map((k) => methods.get(k)!.color));
  });

  test('test accuracy: inference lines for all, dashed batch-statistics lines for BN and Batch Renorm (not none, not GN)', () => {
    const chart = testAccuracyChart(streamed);
    const solid = chart.lines.filter((l) => !l.dash);
    const dashed = chart.lines.filter((l) => l.dash);
    expect(solid).toHaveLength(4);
    expect(dashed.map((l) => l.label)).toEqual(['BatchNorm (batch statistics)', 'Batch Renorm (batch statistics)']);
    const bn = streamed.method('bn')!;
    expect(solid[1].xs).toEqual(bn.evals.map((e) => e.step));
    expect(solid[1].ys).toEqual(bn.evals.map((e) => 100 * e.testAccuracy));
    expect(dashed[0].ys).toEqual(bn.evals.map((e) => 100 * e.testAccuracyBatchStats!));
  });

  test('test accuracy: a dashed batch-statistics line for every method that trains with batch statistics (the table says which)', async () => {
    const nl = await load();
    using runner = nl.createRunner({ ...config, methods: ['ln', 'l1bn', 'gbn', 'sn', 'bn'], steps: 40 });
    const t = new RunTrace(runner.config, runner.dataInfo().classes, methods);
    while (!runner.done) t.apply(runner.step(20));
    const chart = testAccuracyChart(t);
    const dashed = chart.lines.filter((l) => l.dash);
    expect(dashed.map((l) => l.label)).toEqual(['l1bn', 'gbn', 'sn', 'bn'].map((id) => `${t.method(id)!.label} (batch statistics)`));
    expect(dashed[0].label).toBe('L1 BatchNorm (batch statistics)');
    for (const [i, id] of ['l1bn', 'gbn', 'sn', 'bn'].entries()) {
      const m = t.method(id)!;
      expect(dashed[i].color).toBe(m.color);
      expect(dashed[i].xs).toEqual(m.evals.map((e) => e.step));
      expect(dashed[i].ys).toEqual(m.evals.map((e) => 100 * e.testAccuracyBatchStats!));
      expect(dashed[i].ys.every(Number.isFinite)).toBe(true);
    }
    expect(new Set(chart.lines.map((l) => l.color)).size).toBe(5);
  });

  test('activation bands: one panel per method, bands nested p2 <= p16 <= p50 <= p84 <= p98', () => {
    expect(layerCount(streamed)).toBe(2);
    for (const layer of [0, 1]) {
      const panels = activationPanels(streamed, layer);
      expect(panels.map((p) => p.title)).toHaveLength(4);
      for (const p of panels) {
        const [outer, inner] = p.data.bands;
        const median = p.data.lines[0];
        expect(outer.xs).toEqual([20, 40, 60, 80, 100, 120]);
        outer.xs.forEach((_, i) => {
          expect(outer.lo[i]).toBeLessThanOrEqual(inner.lo[i]);
          expect(inner.lo[i]).toBeLessThanOrEqual(median.ys[i]);
          expect(median.ys[i]).toBeLessThanOrEqual(inner.hi[i]);
          expect(inner.hi[i]).toBeLessThanOrEqual(outer.hi[i]);
        });
      }
    }
    expect(activationPanels(streamed, 5)[0].data.lines[0].xs).toEqual([]);
  });

  test('Batch Renorm r and d stay within their limits, which relax over the schedule', () => {
    const r = renormChart(streamed, 'r', 0);
    const mean = r.lines.find((l) => l.label.includes('mean r'))!;
    const upper = r.lines.find((l) => l.label === 'rmax')!;
    const lower = r.lines.find((l) => l.label === '1/rmax')!;
    expect(mean.xs.length).toBe(6);
    mean.ys.forEach((v, i) => {
      expect(v).toBeLessThanOrEqual(upper.ys[i] + 1e-6);
      expect(v).toBeGreaterThanOrEqual(lower.ys[i] - 1e-6);
    });
    expect(upper.ys[0]).toBeLessThanOrEqual(upper.ys.at(-1)!);
    expect(upper.ys.at(-1)).toBe(3);
    const d = renormChart(streamed, 'd', 1);
    const band = d.bands[0];
    const dmax = d.lines.find((l) => l.label === 'dmax')!;
    band.hi.forEach((v, i) => expect(Math.abs(v)).toBeLessThanOrEqual(dmax.ys[i] + 1e-6));
  });

  test('data range ignores non-finite values', () => {
    expect(dataRange({ lines: [{ label: '', color: '', xs: [1, 2, 3], ys: [Number.NaN, 2, Infinity] }], bands: [], legend: [] })).toEqual([2, 2]);
    expect(dataRange({ lines: [], bands: [], legend: [] })).toBeNull();
  });

  test('sweep chart: accuracy against batch size per method, points sorted by batch size', () => {
    const make = (b: number, accs: number[]) => {
      const c = { ...result.config, batchSize: b } as ResolvedConfig;
      const t = new RunTrace(c, 2, methods);
      t.finish({ ...result, config: c, methods: result.methods.map((m, i) => ({ ...m, final: { ...m.final!, testAccuracy: accs[i] } })) }, {});
      return t;
    };
    const traces = [make(8, [0.5, 0.6, 0.7, 0.8]), make(2, [0.1, 0.2, 0.3, 0.4])];
    const chart = sweepChart(traces);
    expect(chart.lines[1].xs).toEqual([2, 8]);
    expect(chart.lines[1].ys).toEqual([20, 60]);
    expect([chart.xMin, chart.xMax]).toEqual([2, 8]);
    expect(sweepChart([]).lines).toEqual([]);
    const { columns, rows } = sweepRows(traces);
    expect(columns).toEqual(['batch size', 'No normalization', 'BatchNorm', 'Batch Renorm', 'GroupNorm (2 groups)']);
    expect(rows[0].cells.map((c) => c.text)).toEqual(['8', '50.0%', '60.0%', '70.0%', '80.0%']);
  });
});

describe('results', () => {
  test('the table shows the final records in the CLI\'s format, the unrounded numbers as values', () => {
    const t = new RunTrace(result.config, 2, methods);
    t.finish(result, {});
    const { columns, rows } = summaryTable(t);
    expect(columns[1]).toBe('test accuracy (inference)');
    rows.forEach((row, i) => {
      const f = result.methods[i].final!;
      expect(row.cells[0].text).toBe(result.methods[i].label);
      expect(row.cells[1]).toEqual({ text: pct(f.testAccuracy), value: f.testAccuracy });
      expect(row.cells[4].value).toBe(f.testLoss);
      expect(row.cells[5].value).toBe(f.trainLoss);
    });
    expect(pct(0.542)).toBe('54.2%');
    expect(pct(null)).toBe('–');
    // While running: the latest evaluation, no train loss yet.
    const live = summaryTable(streamed).rows[0].cells;
    expect(live[5].text).toBe('–');
  });

  test('JSON and CSV have the CLI\'s formats', () => {
    expect(resultsJson([result])).toBe(`${JSON.stringify(result, null, 1)}\n`);
    expect(JSON.parse(resultsJson([result, result]))).toEqual({ runs: [result, result] });
    const lines = resultsCsv([result]).trimEnd().split('\n');
    expect(lines[0]).toBe('seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats');
    const perMethod = 120 + result.methods[0].eval.length;
    expect(lines.length).toBe(1 + 4 * perMethod);
    expect(lines[1]).toBe(`${result.config.seed},8,none,train,1,${result.methods[0].train.loss[0]},${result.methods[0].train.accuracy[0]},,`);
  });

  test('decision-map pixels: class colour by confidence, white when undecided, grey for NaN', () => {
    const px = mapPixels(new Float32Array([1, 0, 0.5, 0.5, 0, 1, Number.NaN, Number.NaN]), 2, 2);
    expect(px.length).toBe(16);
    expect([...px.slice(4, 8)]).toEqual([255, 255, 255, 255]);
    expect([...px.slice(12, 16)]).toEqual([200, 200, 200, 255]);
    expect(px[0]).toBeGreaterThan(px[2]);  // orange: red > blue
    expect(px[10]).toBeGreaterThan(px[8]);  // blue: blue > red
  });
});

describe('several seeds', () => {
  /** A finished trace whose method i has the test accuracies accs[i] at steps 20 and 40 and losses `loss` per step. */
  function seedTrace(seed: number, accs: [number, number][], loss: number[]): RunTrace {
    const c = { ...result.config, seed } as ResolvedConfig;
    const t = new RunTrace(c, 2, methods);
    t.finish({
      ...result, config: c, methods: result.methods.map((m, i) => ({
        ...m,
        train: { loss, accuracy: loss.map(() => 0.5) },
        eval: [20, 40].map((step, k) => ({ ...m.eval[0], step, testAccuracy: accs[i][k], testAccuracyBatchStats: null })),
        final: { ...m.final!, testAccuracy: accs[i][1] },
      })),
    }, {});
    return t;
  }
  const four = (a: number, b: number): [number, number][] => [[a, b], [a, b], [a, b], [a, b]];
  // Built in the tests: the run they copy finishes in beforeAll.
  let group: RunTrace[];
  beforeAll(() => {
    group = [seedTrace(1, four(0.5, 0.6), [1, 1]), seedTrace(2, four(0.6, 0.7), [2, 2]), seedTrace(3, four(0.7, 0.8), [3, 3])];
  });

  test('test accuracy: the mean over the seeds at each evaluation, and its 95% band (hand-worked)', () => {
    const chart = seedTestAccuracyChart(group);
    expect(chart.lines[0].xs).toEqual([20, 40]);
    expect(chart.lines[0].ys[0]).toBeCloseTo(60, 4);
    expect(chart.lines[0].ys[1]).toBeCloseTo(70, 4);
    // [50, 60, 70]: sd 10, half-width 4.302653 · 10 / √3 = 24.84138.
    expect(chart.bands[0].lo[0]).toBeCloseTo(60 - 24.84138, 3);
    expect(chart.bands[0].hi[1]).toBeCloseTo(70 + 24.84138, 3);
    expect(chart.legend.at(-1)).toEqual({ label: '95% interval over 3 seeds', color: '#555555', fill: 0.18 });
    // One seed: the single-run chart, no band.
    expect(seedTestAccuracyChart([group[0]])).toEqual(testAccuracyChart(group[0]));
  });

  test('training curves: each seed smoothed, then the mean and its band', () => {
    const chart = seedTrainChart(group, 'loss');
    expect(chart.lines[0].ys).toEqual([2, 2]);
    expect(chart.bands[0].lo[0]).toBeCloseTo(2 - 2.484138, 5);
  });

  test('a sweep: the mean final accuracy per batch size with its interval', () => {
    const b8 = group.map((t) => {
      const c = { ...t.config, batchSize: 8 } as ResolvedConfig;
      const u = new RunTrace(c, 2, methods);
      u.finish({ ...t.result!, config: c }, {});
      return u;
    });
    const chart = seedSweepChart([group.map((t) => {
      const c = { ...t.config, batchSize: 2 } as ResolvedConfig;
      const u = new RunTrace(c, 2, methods);
      u.finish({ ...t.result!, config: c }, {});
      return u;
    }), b8]);
    expect(chart.lines[0].xs).toEqual([2, 8]);
    expect(chart.lines[0].ys[0]).toBeCloseTo(70, 4);
    expect(chart.bands[0].hi[0]).toBeCloseTo(70 + 24.84138, 3);
  });
});
