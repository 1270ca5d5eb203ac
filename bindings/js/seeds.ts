// A comparison over several seeds: one full comparison per seed (a paired design: for a given seed
// every method starts from the same weights and sees the same batches), summarized per method
// with Student t intervals, and per method against a baseline with paired differences. Also the
// arms a comparison splits into (one per method) for a pool of workers, and their merge, which
// gives exactly the result of the whole comparison: an arm's weights, batches and evaluations
// depend only on the seed and the configuration, never on the other methods of the run.
import type { CompareConfig, CompareResult, MethodEntry, ResolvedConfig } from './runner.js';
import { pairedTest, stat, type Paired, type Stat } from './stats.js';

/** The final metrics the summary gives intervals for. */
export const SUMMARY_METRICS = ['testAccuracy', 'testAccuracyBatchStats', 'testLoss', 'trainLoss'] as const;
export type SummaryMetric = (typeof SUMMARY_METRICS)[number];

/** Per step: the mean over the seeds with a value there, and its 95% t interval (null below 2 seeds). */
export interface Band {
  mean: number[];
  lo: (number | null)[];
  hi: (number | null)[];
}

/** A method's curves across the seeds. */
export interface SeedCurves {
  id: string;
  /** At each evaluation step. */
  eval: { step: number[]; testAccuracy: Band; testAccuracyBatchStats: Band; testLoss: Band };
  /** At each training step (index = step - 1), on each step's batch. */
  train: { loss: Band; accuracy: Band };
}

export interface SeedsSummary {
  /** The method the differences are against (`--baseline`, default the first). */
  baseline: string;
  methods: ({ id: string; label: string } & Record<SummaryMetric, Stat>)[];
  /**
   * Each other method against the baseline, paired by seed: the mean of (a - b) over the seeds
   * with both values, its 95% interval and the paired t-test's two-sided p.
   */
  differences: ({ a: string; b: string; metric: SummaryMetric } & Paired)[];
  curves: SeedCurves[];
}

/** The result of a comparison over several seeds (`config.seeds`, CLI `--seeds`). */
export interface SeedsResult {
  /** The resolved configuration of the first seed's run, with `seeds` in place of `seed`. */
  config: Omit<ResolvedConfig, 'seed'> & { seeds: number[] };
  seeds: number[];
  /** runs[k]: exactly the result of the comparison with `seed: seeds[k]`. */
  runs: CompareResult[];
  summary: SeedsSummary;
}

const MAX_SEED = 2 ** 31 - 1;
/** At most this many seeds in one comparison. */
export const MAX_SEEDS = 1000;

/** Checks a `seeds` list: distinct integers in [0, 2^31 - 1]. */
export function checkSeeds(seeds: unknown, where = 'seeds'): number[] {
  if (!Array.isArray(seeds) || seeds.length === 0) throw new Error(`${where} must be a non-empty array of integers, e.g. [1, 2, 3]`);
  if (seeds.length > MAX_SEEDS) throw new Error(`${where}: ${seeds.length} seeds; at most ${MAX_SEEDS}`);
  const seen = new Set<number>();
  for (const s of seeds) {
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > MAX_SEED) {
      throw new Error(`${where}: ${JSON.stringify(s)} is not a seed (an integer from 0 to ${MAX_SEED})`);
    }
    if (seen.has(s)) throw new Error(`${where}: seed ${s} is listed twice`);
    seen.add(s);
  }
  return [...seeds];
}

/** "1-4" or "1,2,7" or "1-3,10" as a list of seeds. */
export function parseSeeds(text: string, where = '--seeds'): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new Error(`${where}: '${part.trim()}' is not a seed or a range (e.g. 1,2,3 or 1-10)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new Error(`${where}: the range ${from}-${to} runs backwards`);
    if (to - from + out.length >= MAX_SEEDS) throw new Error(`${where}: more than ${MAX_SEEDS} seeds`);
    for (let s = from; s <= to; s++) out.push(s);
  }
  return checkSeeds(out, where);
}

/**
 * The seeds of a comparison over seeds (checked), or undefined for a single seed. `baseline`
 * needs seeds; `seed` and `seeds` do not go together.
 */
export function seedsOf(config: CompareConfig): number[] | undefined {
  if (config === null || typeof config !== 'object') return undefined;
  if (config.seeds === undefined) {
    if (config.baseline !== undefined) throw new Error('baseline is for a comparison over seeds (config.seeds)');
    return undefined;
  }
  if (config.seed !== undefined) throw new Error('give seed or seeds, not both');
  if (config.baseline !== undefined && typeof config.baseline !== 'string') {
    throw new Error(`baseline must be a method id (a string), got ${JSON.stringify(config.baseline)}`);
  }
  return checkSeeds(config.seeds);
}

/** The configuration of one seed of a comparison over seeds. */
export function seedConfig(config: CompareConfig, seed: number): CompareConfig {
  const { seeds: _seeds, baseline: _baseline, ...rest } = config;
  return { ...rest, seed };
}

/** The configuration of one arm: one resolved method entry (id and label kept) of a comparison. */
export function armConfig(config: CompareConfig, entry: Required<MethodEntry>): CompareConfig {
  return { ...config, methods: [{ method: entry.method, options: entry.options, label: entry.label, id: entry.id }] };
}

/** The whole comparison's result from its arms' (in the order of its methods). */
export function mergeArms(arms: readonly CompareResult[]): CompareResult {
  if (arms.length === 0) throw new Error('mergeArms: no arms');
  const first = arms[0];
  return {
    ...first,
    config: { ...first.config, methods: arms.map((a) => a.config.methods[0]) },
    methods: arms.map((a) => a.methods[0]),
  };
}

function band(series: readonly (readonly (number | null | undefined)[])[]): Band {
  const length = Math.max(0, ...series.map((s) => s.length));
  const out: Band = { mean: [], lo: [], hi: [] };
  for (let i = 0; i < length; i++) {
    const values = series.flatMap((s) => (typeof s[i] === 'number' && Number.isFinite(s[i]) ? [s[i] as number] : []));
    const s = stat(values);
    out.mean.push(s.mean);
    out.lo.push(s.ci95 ? s.ci95[0] : null);
    out.hi.push(s.ci95 ? s.ci95[1] : null);
  }
  return out;
}

/** The value of a final metric of a run's method (null when it has none). */
function finalValue(run: CompareResult, id: string, metric: SummaryMetric): number | null {
  const f = run.methods.find((m) => m.id === id)?.final;
  const v = f ? f[metric] : null;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** The summary of runs over seeds (runs[k] of seeds[k]) against `baseline` (a method id). */
export function summarizeSeeds(runs: readonly CompareResult[], baseline?: string): SeedsSummary {
  const methods = runs[0].methods.map((m) => ({ id: m.id, label: m.label }));
  const base = baseline ?? methods[0].id;
  if (!methods.some((m) => m.id === base)) {
    throw new Error(`baseline: no method '${base}' in the comparison (methods: ${methods.map((m) => m.id).join(', ')})`);
  }
  const values = (id: string, metric: SummaryMetric) => runs.map((r) => finalValue(r, id, metric));
  const present = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
  const summary: SeedsSummary = {
    baseline: base,
    methods: methods.map((m) => ({
      ...m,
      ...Object.fromEntries(SUMMARY_METRICS.map((k) => [k, stat(present(values(m.id, k)))])) as Record<SummaryMetric, Stat>,
    })),
    differences: [],
    curves: [],
  };
  for (const m of methods) {
    if (m.id === base) continue;
    for (const metric of SUMMARY_METRICS) {
      const a = values(m.id, metric);
      const b = values(base, metric);
      // Paired: only the seeds where both have a value.
      const both = a.flatMap((v, i) => (v !== null && b[i] !== null ? [i] : []));
      if (both.length === 0) continue;
      summary.differences.push({ a: m.id, b: base, metric, ...pairedTest(both.map((i) => a[i]!), both.map((i) => b[i]!)) });
    }
  }
  for (const m of methods) {
    const per = runs.map((r) => r.methods.find((x) => x.id === m.id)!);
    const evals = per.map((x) => x.eval);
    const steps = evals.reduce((a, e) => (e.length > a.length ? e : a), evals[0]).map((e) => e.step);
    const at = (key: 'testAccuracy' | 'testAccuracyBatchStats' | 'testLoss') => band(evals.map((e) => e.map((r) => r[key])));
    summary.curves.push({
      id: m.id,
      eval: { step: steps, testAccuracy: at('testAccuracy'), testAccuracyBatchStats: at('testAccuracyBatchStats'), testLoss: at('testLoss') },
      train: { loss: band(per.map((x) => x.train.loss)), accuracy: band(per.map((x) => x.train.accuracy)) },
    });
  }
  return summary;
}

/** The result over seeds from each seed's run. */
export function seedsResult(seeds: readonly number[], runs: readonly CompareResult[], baseline?: string): SeedsResult {
  const { seed: _seed, ...config } = runs[0].config;
  return { config: { ...config, seeds: [...seeds] }, seeds: [...seeds], runs: [...runs], summary: summarizeSeeds(runs, baseline) };
}

