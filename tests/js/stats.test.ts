// Statistics over seeds (bindings/js/stats.ts, seeds.ts): Student's t against its closed forms
// (1 and 2 degrees of freedom) and against numerical integration of its density, intervals and
// paired tests worked by hand, and a comparison over seeds whose runs are exactly the single-seed runs.
import { beforeAll, describe, expect, test } from 'vitest';
import { load, type Normlab } from './helpers.js';
import { hostile } from './hostile.js';
import {
  pairedTest, parseSeeds, stat, studentTCdf, studentTQuantile, summarizeSeeds, type CompareResult,
} from '../../dist/index.js';

/** P(T <= t) by Simpson's rule on the density (an oracle independent of the incomplete beta). */
function cdfByIntegration(t: number, df: number): number {
  const lnc = lgammaSlow((df + 1) / 2) - lgammaSlow(df / 2) - 0.5 * Math.log(df * Math.PI);
  const pdf = (x: number) => Math.exp(lnc - ((df + 1) / 2) * Math.log(1 + (x * x) / df));
  const n = 200000;
  const a = 0;
  const h = (Math.abs(t) - a) / n;
  let s = pdf(a) + pdf(Math.abs(t));
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * pdf(a + i * h);
  const half = (s * h) / 3;
  return t >= 0 ? 0.5 + half : 0.5 - half;
}

/** ln Γ for half-integers and integers by its recurrence (exact up to rounding). */
function lgammaSlow(x: number): number {
  let v = 0;
  while (x > 1 + 1e-9) {
    x -= 1;
    v += Math.log(x);
  }
  return v + (Math.abs(x - 0.5) < 1e-12 ? 0.5 * Math.log(Math.PI) : 0);  // Γ(1/2) = √π, Γ(1) = 1
}

describe("Student's t", () => {
  test('1 and 2 degrees of freedom: the closed forms', () => {
    for (const t of [-30, -3, -1, -0.2, 0, 0.5, 2, 12.7]) {
      expect(studentTCdf(t, 1)).toBeCloseTo(0.5 + Math.atan(t) / Math.PI, 13);
      expect(studentTCdf(t, 2)).toBeCloseTo(0.5 + t / (2 * Math.sqrt(2 + t * t)), 13);
    }
    for (const p of [0.6, 0.9, 0.975, 0.995]) {
      expect(studentTQuantile(p, 1)).toBeCloseTo(Math.tan(Math.PI * (p - 0.5)), 9);
      expect(studentTQuantile(p, 2)).toBeCloseTo((2 * p - 1) * Math.sqrt(2 / (4 * p * (1 - p))), 9);
    }
  });

  test('3 to 30 degrees of freedom: the density integrated numerically', () => {
    for (const df of [3, 4, 5, 9, 30]) {
      for (const t of [-2.5, 0.7, 2.0580, 4]) expect(studentTCdf(t, df)).toBeCloseTo(cdfByIntegration(t, df), 9);
    }
  });

  test('the 97.5% quantiles of the printed tables', () => {
    const table: [number, number][] = [[3, 3.182446], [4, 2.776445], [9, 2.262157], [29, 2.045230]];
    for (const [df, t] of table) expect(studentTQuantile(0.975, df)).toBeCloseTo(t, 5);
  });
});

describe('intervals and paired tests, worked by hand', () => {
  test('[0.5, 0.6, 0.7]: mean 0.6, std 0.1, 95% interval 0.6 ± 4.302653 · 0.1 / √3', () => {
    const s = stat([0.5, 0.6, 0.7]);
    const half = (4.302653 * 0.1) / Math.sqrt(3);  // 0.2484138
    expect(s.mean).toBeCloseTo(0.6, 12);
    expect(s.std).toBeCloseTo(0.1, 6);
    expect(s.ci95![0]).toBeCloseTo(0.6 - half, 6);
    expect(s.ci95![1]).toBeCloseTo(0.6 + half, 6);
    expect(s.n).toBe(3);
  });

  test('one value: a mean, no spread', () => {
    expect(stat([0.42])).toEqual({ mean: 0.42, std: null, ci95: null, n: 1 });
  });

  test('paired: differences [0.5, -0.5, 1, 1, 1]: mean 0.6, sd √0.425, t = 2.0580, df 4', () => {
    const r = pairedTest([1, 2, 3, 4, 5], [0.5, 2.5, 2, 3, 4]);
    const sd = Math.sqrt(0.425);
    const t = 0.6 / (sd / Math.sqrt(5));
    expect(t).toBeCloseTo(2.05798, 4);
    expect(r.meanDifference).toBeCloseTo(0.6, 12);
    const half = (2.776445 * sd) / Math.sqrt(5);
    expect(r.ci95![0]).toBeCloseTo(0.6 - half, 5);
    expect(r.ci95![1]).toBeCloseTo(0.6 + half, 5);
    expect(r.p).toBeCloseTo(2 * (1 - cdfByIntegration(t, 4)), 6);
    expect(r.p!).toBeGreaterThan(0.05);  // the interval contains 0
    expect(r.ci95![0]).toBeLessThan(0);
  });

  test('pairing removes what the seeds share: a constant offset is certain', () => {
    const r = pairedTest([0.91, 0.55, 0.73], [0.81, 0.45, 0.63]);
    expect(r.meanDifference).toBeCloseTo(0.1, 12);
    expect(r.ci95![0]).toBeCloseTo(0.1, 6);
    expect(r.p!).toBeLessThan(1e-12);  // the differences agree to rounding
  });
});

describe('seeds', () => {
  test('--seeds: lists and ranges; bad ones say what is wrong', () => {
    expect(parseSeeds('1-4')).toEqual([1, 2, 3, 4]);
    expect(parseSeeds('1,2,7')).toEqual([1, 2, 7]);
    expect(parseSeeds('0-2,10')).toEqual([0, 1, 2, 10]);
    for (const [text, message] of [['3-1', /runs backwards/], ['1,1', /seed 1 is listed twice/], ['a', /'a' is not a seed/],
      ['1-5000', /more than 1000 seeds/], ['', /'' is not a seed/], ['2147483648', /not a seed/]] as const) {
      hostile('runner config');
      expect(() => parseSeeds(text), text).toThrow(message);
    }
  });

  /** A run with the given final test accuracies (and losses) per method. */
  function run(seed: number, finals: Record<string, [number, number] | null>): CompareResult {
    const methods = Object.entries(finals).map(([id, f]) => ({
      id, method: id, label: id.toUpperCase(),
      train: { loss: [1, 0.5], accuracy: [0.5, f ? f[0] : 0.5] },
      eval: f ? [{ step: 2, testAccuracy: f[0], testLoss: f[1], testAccuracyBatchStats: null, testLossBatchStats: null, activations: [] }] : [],
      final: f ? { step: 2, testAccuracy: f[0], testAccuracyBatchStats: null, testLoss: f[1], testLossBatchStats: null, target: null, trainLoss: 0.5, trainAccuracy: f[0] } : null,
    }));
    return { config: { seed }, data: { train: 2, test: 2, classes: 2 }, stepsDone: 2, done: true, methods } as unknown as CompareResult;
  }

  test('the summary: intervals per method, differences paired against the baseline, seeds without a value left out', () => {
    const runs = [
      run(1, { bn: [0.5, 1.0], gn: [0.8, 0.6] }),
      run(2, { bn: [0.6, 0.9], gn: [0.8, 0.5] }),
      run(3, { bn: [0.7, 0.8], gn: [0.9, 0.4] }),
      run(4, { bn: [0.9, 0.7], gn: null }),   // gn diverged before its first evaluation
    ];
    const s = summarizeSeeds(runs);
    expect(s.baseline).toBe('bn');
    const bn = s.methods[0];
    expect(bn.testAccuracy.mean).toBeCloseTo(0.675, 12);
    expect(bn.testAccuracy.n).toBe(4);
    const sd = Math.sqrt(((0.175 ** 2) + (0.075 ** 2) + (0.025 ** 2) + (0.225 ** 2)) / 3);
    expect(bn.testAccuracy.std).toBeCloseTo(sd, 6);
    expect(bn.testAccuracy.ci95![1]).toBeCloseTo(0.675 + (3.182446 * sd) / 2, 5);
    expect(bn.testAccuracyBatchStats).toEqual({ mean: NaN, std: null, ci95: null, n: 0 });
    expect(s.methods[1].testAccuracy.n).toBe(3);
    // gn - bn on seeds 1-3: [0.3, 0.2, 0.2]: mean 0.2333333, sd 0.0577350.
    const d = s.differences.find((x) => x.a === 'gn' && x.metric === 'testAccuracy')!;
    expect(d.b).toBe('bn');
    expect(d.n).toBe(3);
    expect(d.meanDifference).toBeCloseTo(0.2333333, 6);
    expect(d.ci95![0]).toBeCloseTo(0.2333333 - (4.302653 * 0.0577350) / Math.sqrt(3), 5);
    expect(d.p!).toBeLessThan(0.05);
    // The curves: the mean over the seeds that have each step.
    const curve = s.curves.find((c) => c.id === 'gn')!;
    expect(curve.eval.step).toEqual([2]);
    expect(curve.eval.testAccuracy.mean[0]).toBeCloseTo(2.5 / 3, 6);
    expect(curve.train.loss).toEqual({ mean: [1, 0.5], lo: [1, 0.5], hi: [1, 0.5] });
    expect(() => summarizeSeeds(runs, 'ln')).toThrow("baseline: no method 'ln' in the comparison (methods: bn, gn)");
  });
});

describe('a comparison over seeds', () => {
  let nl: Normlab;
  beforeAll(async () => {
    nl = await load();
  });
  const config = {
    dataset: { name: 'moons' as const, trainSize: 200, testSize: 100 }, model: { hidden: [8] }, methods: ['bn' as const, 'ln' as const],
    batchSize: 8, steps: 60, evalInterval: 30,
  };

  test('runs[k] is exactly the run of seeds[k]; the summary is over them', async () => {
    const r = await nl.compare({ ...config, seeds: [3, 1], baseline: 'ln' });
    expect(r.seeds).toEqual([3, 1]);
    expect(r.config.seeds).toEqual([3, 1]);
    expect('seed' in r.config).toBe(false);
    expect(JSON.stringify(r.runs[0])).toBe(JSON.stringify(await nl.compare({ ...config, seed: 3 })));
    expect(JSON.stringify(r.runs[1])).toBe(JSON.stringify(await nl.compare({ ...config, seed: 1 })));
    expect(r.summary.baseline).toBe('ln');
    const a = r.runs.map((x) => x.methods[0].final!.testAccuracy);
    expect(r.summary.methods[0].testAccuracy.mean).toBeCloseTo((a[0] + a[1]) / 2, 6);
    expect(r.summary.differences.filter((d) => d.metric === 'testAccuracy').map((d) => [d.a, d.b])).toEqual([['bn', 'ln']]);
  });

  test('seed with seeds, a baseline without seeds, or a runner with seeds: an Error that says so', async () => {
    hostile('runner config');
    await expect(nl.compare({ ...config, seed: 1, seeds: [1, 2] })).rejects.toThrow('give seed or seeds, not both');
    hostile('runner config');
    await expect(nl.compare({ ...config, baseline: 'bn' })).rejects.toThrow('baseline is for a comparison over seeds');
    hostile('runner config');
    expect(() => nl.createRunner({ ...config, seeds: [1] })).toThrow(/a runner runs one seed/);
    hostile('runner config');
    await expect(nl.compare({ ...config, seeds: [] })).rejects.toThrow('seeds must be a non-empty array');
  });
});
