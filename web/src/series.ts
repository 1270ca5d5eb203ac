// Chart data shaping, free of the DOM: from run traces to the lines, bands and panels the charts
// draw. Every function here is pure (unit-tested in tests/js/web-series.test.ts).
import { stat, type CompareResult, type Stat } from 'normlab';
import { OKABE_ITO } from './palette.js';
import type { MethodTrace, RunTrace } from './store.js';

export interface Line {
  label: string;
  color: string;
  /** Canvas dash pattern; solid when absent. */
  dash?: number[];
  xs: number[];
  ys: number[];
  /** Dots at the points (few points, e.g. a sweep). */
  markers?: boolean;
  /** Line width in CSS pixels (default 2). */
  width?: number;
}

export interface Band {
  color: string;
  /** Fill opacity. */
  alpha: number;
  xs: number[];
  lo: number[];
  hi: number[];
}

export interface LegendItem {
  label: string;
  color: string;
  dash?: number[];
  /** Drawn as a filled swatch (a band) instead of a line. */
  fill?: number;
}

export interface LineChartData {
  lines: Line[];
  bands: Band[];
  legend: LegendItem[];
  /** Right end of the x axis (e.g. the configured steps, so curves grow across the chart). */
  xMax?: number;
  xMin?: number;
}

export interface Panel {
  title: string;
  data: LineChartData;
}

export const DASH_BATCH_STATS = [6, 4];
const DASH_LIMIT = [3, 3];

/** Steps in the training curves' moving average: about 2% of the run, at least 1, at most 500. */
export function smoothingWindow(steps: number): number {
  return Math.max(1, Math.min(500, Math.round(steps / 50)));
}

/** Trailing moving average over `window` values; non-finite values are skipped. */
export function movingAverage(values: ArrayLike<number>, window: number): number[] {
  const out = new Array<number>(values.length);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      sum += v;
      count++;
    }
    if (i >= window) {
      const old = values[i - window];
      if (Number.isFinite(old)) {
        sum -= old;
        count--;
      }
    }
    out[i] = count > 0 ? sum / count : Number.NaN;
  }
  return out;
}

/** At most `maxPoints` of the points, evenly spaced, always with the last one. */
export function thin(xs: number[], ys: number[], maxPoints: number): { xs: number[]; ys: number[] } {
  const n = xs.length;
  if (n <= maxPoints) return { xs, ys };
  const stride = Math.ceil(n / maxPoints);
  const ox: number[] = [];
  const oy: number[] = [];
  for (let i = 0; i < n; i += stride) {
    ox.push(xs[i]);
    oy.push(ys[i]);
  }
  if (ox[ox.length - 1] !== xs[n - 1]) {
    ox.push(xs[n - 1]);
    oy.push(ys[n - 1]);
  }
  return { xs: ox, ys: oy };
}

function methodLegend(methods: MethodTrace[]): LegendItem[] {
  return methods.map((m) => ({ label: m.label, color: m.color }));
}

/** Training loss or accuracy per step (training mode, each step's batch), smoothed and thinned. */
export function trainChart(trace: RunTrace, which: 'loss' | 'accuracy', maxPoints = 400): LineChartData {
  const window = smoothingWindow(trace.steps);
  const lines = trace.methods.map((m): Line => {
    const values = which === 'loss' ? m.loss : m.accuracy;
    const smooth = movingAverage(values, window);
    const steps = smooth.map((_, i) => i + 1);
    const scaled = which === 'accuracy' ? smooth.map((v) => 100 * v) : smooth;
    return { label: m.label, color: m.color, ...thin(steps, scaled, maxPoints) };
  });
  return { lines, bands: [], legend: methodLegend(trace.methods), xMin: 0, xMax: trace.steps };
}

/**
 * Test accuracy per evaluation: inference mode (running statistics, solid) and, for every method
 * that trains with batch statistics (the method table's usesBatchStatistics), with batch
 * statistics (dashed), so the train/inference gap shows as the distance between the two.
 */
export function testAccuracyChart(trace: RunTrace): LineChartData {
  const lines: Line[] = [];
  for (const m of trace.methods) {
    const color = m.color;
    lines.push({ label: m.label, color, xs: m.evals.map((e) => e.step), ys: m.evals.map((e) => 100 * e.testAccuracy) });
    const withStats = m.evals.filter((e) => e.testAccuracyBatchStats !== null);
    if (withStats.length && m.usesBatchStatistics) {
      lines.push({
        label: `${m.label} (batch statistics)`, color, dash: DASH_BATCH_STATS,
        xs: withStats.map((e) => e.step), ys: withStats.map((e) => 100 * (e.testAccuracyBatchStats as number)),
      });
    }
  }
  const legend: LegendItem[] = [
    ...methodLegend(trace.methods),
    { label: 'inference mode', color: '#555555' },
    { label: 'batch statistics', color: '#555555', dash: DASH_BATCH_STATS },
  ];
  return { lines, bands: [], legend, xMin: 0, xMax: trace.steps };
}

/** Hidden layers with activation records. */
export function layerCount(trace: RunTrace): number {
  return Math.max(0, ...trace.methods.map((m) => m.evals[0]?.activations.length ?? 0));
}

/**
 * Percentile bands (p2-p98, p16-p84, median) of the pre-normalization activations of one hidden
 * layer over training, one panel per method (the Batch Normalization paper's Figure 1).
 */
export function activationPanels(trace: RunTrace, layer: number): Panel[] {
  return trace.methods.map((m) => {
    const color = m.color;
    const rec = m.evals.filter((e) => e.activations[layer]?.length === 5);
    const xs = rec.map((e) => e.step);
    const p = (k: number) => rec.map((e) => e.activations[layer][k]);
    return {
      title: m.label,
      data: {
        lines: [{ label: 'median', color, xs, ys: p(2) }],
        bands: [
          { color, alpha: 0.16, xs, lo: p(0), hi: p(4) },
          { color, alpha: 0.34, xs, lo: p(1), hi: p(3) },
        ],
        legend: [],
        xMin: 0,
        xMax: trace.steps,
      },
    };
  });
}

export const ACTIVATION_LEGEND: LegendItem[] = [
  { label: '2nd-98th percentile', color: '#555555', fill: 0.16 },
  { label: '16th-84th percentile', color: '#555555', fill: 0.34 },
  { label: 'median', color: '#555555' },
];

/**
 * Batch Renorm's corrections of one layer against their limits: r or d over the channels
 * (band: min to max, line: mean) and the current limits (dashed), per Batch Renorm method.
 */
export function renormChart(trace: RunTrace, which: 'r' | 'd', layer: number): LineChartData {
  const lines: Line[] = [];
  const bands: Band[] = [];
  const legend: LegendItem[] = [];
  // The methods whose evaluations carry r and d (Batch Renorm's records).
  const brn = trace.methods.filter((m) => m.evals.some((e) => e.renorm));
  for (const m of brn) {
    const color = m.color;
    const rec = m.evals.filter((e) => e.renorm?.[layer]);
    const xs = rec.map((e) => e.step);
    const c = rec.map((e) => e.renorm![layer]);
    const v = (k: 0 | 1 | 2) => c.map((x) => x[which][k]);
    bands.push({ color, alpha: 0.25, xs, lo: v(0), hi: v(2) });
    lines.push({ label: `${m.label}: mean ${which}`, color, xs, ys: v(1) });
    const limit = c.map((x) => (which === 'r' ? x.rMax : x.dMax));
    lines.push({ label: `${which}max`, color: '#444444', dash: DASH_LIMIT, width: 1.5, xs, ys: limit });
    lines.push({
      label: which === 'r' ? '1/rmax' : '-dmax', color: '#444444', dash: DASH_LIMIT, width: 1.5, xs,
      ys: limit.map((l) => (which === 'r' ? 1 / l : -l)),
    });
    legend.push({ label: `${m.label}: mean`, color }, { label: 'min-max over channels', color, fill: 0.25 });
  }
  legend.push({ label: which === 'r' ? 'limits 1/rMax, rMax' : 'limits -dMax, dMax', color: '#444444', dash: DASH_LIMIT });
  return { lines, bands, legend, xMin: 0, xMax: trace.steps };
}

/** Final test accuracy against batch size, one line per method (the Group Norm paper's Figure 1). */
export function sweepChart(traces: RunTrace[]): LineChartData {
  const done = traces.filter((t) => t.result);
  if (done.length === 0) return { lines: [], bands: [], legend: [] };
  const first = traces[0];
  const lines: Line[] = first.methods.map((m) => {
    const pts = done
      .map((t) => ({ b: t.config.batchSize, f: t.result!.methods.find((r) => r.id === m.id)?.final }))
      .filter((p) => p.f)
      .sort((a, b) => a.b - b.b);
    return {
      label: m.label, color: m.color, markers: true,
      xs: pts.map((p) => p.b), ys: pts.map((p) => 100 * p.f!.testAccuracy),
    };
  });
  const sizes = traces.map((t) => t.config.batchSize);
  return {
    lines, bands: [], legend: methodLegend(first.methods),
    xMin: Math.min(...sizes), xMax: Math.max(...sizes),
  };
}

// ---- several seeds: the mean over the seeds with a shaded 95% band (Student t over the seeds) ----

const SEED_BAND_ALPHA = 0.18;

function seedLegend(group: RunTrace[]): LegendItem {
  return { label: `95% interval over ${group.length} seeds`, color: '#555555', fill: SEED_BAND_ALPHA };
}

/** The band of stats at xs, where they have an interval (two seeds or more). */
function bandOf(color: string, xs: number[], stats: Stat[]): Band {
  const keep = stats.map((s, i) => (s.ci95 ? i : -1)).filter((i) => i >= 0);
  return { color, alpha: SEED_BAND_ALPHA, xs: keep.map((i) => xs[i]), lo: keep.map((i) => stats[i].ci95![0]), hi: keep.map((i) => stats[i].ci95![1]) };
}

/** The seed traces' records of one method, with the evaluation steps of the one that has most. */
function methodAcross(group: RunTrace[], id: string) {
  const per = group.map((t) => t.methods.find((x) => x.id === id)).filter((m): m is MethodTrace => m !== undefined);
  const steps = per.reduce((a, m) => (m.evals.length > a.length ? m.evals : a), per[0]?.evals ?? []).map((e) => e.step);
  return { per, steps };
}

/**
 * Test accuracy over several seeds (`group`: one run's traces, one per seed): per method the mean
 * in inference mode with its 95% band, and the batch-statistics mean dashed. One trace: testAccuracyChart.
 */
export function seedTestAccuracyChart(group: RunTrace[]): LineChartData {
  if (group.length === 1) return testAccuracyChart(group[0]);
  const first = group[0];
  const lines: Line[] = [];
  const bands: Band[] = [];
  for (const m of first.methods) {
    const { per, steps } = methodAcross(group, m.id);
    const at = (key: 'testAccuracy' | 'testAccuracyBatchStats') => steps.map((step, i) => stat(per.flatMap((p) => {
      const e = p.evals[i];
      const v = e && e.step === step ? e[key] : null;
      return typeof v === 'number' ? [100 * v] : [];
    })));
    const inference = at('testAccuracy');
    lines.push({ label: m.label, color: m.color, xs: steps, ys: inference.map((s) => s.mean) });
    bands.push(bandOf(m.color, steps, inference));
    if (m.usesBatchStatistics) {
      const stats = at('testAccuracyBatchStats');
      const keep = stats.map((s, i) => (s.n ? i : -1)).filter((i) => i >= 0);
      if (keep.length) {
        lines.push({ label: `${m.label} (batch statistics)`, color: m.color, dash: DASH_BATCH_STATS, xs: keep.map((i) => steps[i]), ys: keep.map((i) => stats[i].mean) });
      }
    }
  }
  const legend: LegendItem[] = [
    ...methodLegend(first.methods),
    { label: 'inference mode (mean)', color: '#555555' },
    { label: 'batch statistics (mean)', color: '#555555', dash: DASH_BATCH_STATS },
    seedLegend(group),
  ];
  return { lines, bands, legend, xMin: 0, xMax: first.steps };
}

/** Training loss or accuracy over several seeds: each seed smoothed, then the mean with its 95% band. */
export function seedTrainChart(group: RunTrace[], which: 'loss' | 'accuracy', maxPoints = 400): LineChartData {
  if (group.length === 1) return trainChart(group[0], which, maxPoints);
  const first = group[0];
  const window = smoothingWindow(first.steps);
  const lines: Line[] = [];
  const bands: Band[] = [];
  for (const m of first.methods) {
    const { per } = methodAcross(group, m.id);
    const smooth = per.map((p) => movingAverage(which === 'loss' ? p.loss : p.accuracy, window));
    const n = Math.max(0, ...smooth.map((s) => s.length));
    const stride = Math.max(1, Math.ceil(n / maxPoints));
    const idx: number[] = [];
    for (let i = 0; i < n; i += stride) idx.push(i);
    if (n > 0 && idx[idx.length - 1] !== n - 1) idx.push(n - 1);
    const scale = which === 'accuracy' ? 100 : 1;
    const stats = idx.map((i) => stat(smooth.flatMap((s) => (Number.isFinite(s[i]) ? [scale * s[i]] : []))));
    const xs = idx.map((i) => i + 1);
    lines.push({ label: m.label, color: m.color, xs, ys: stats.map((s) => s.mean) });
    bands.push(bandOf(m.color, xs, stats));
  }
  return { lines, bands, legend: [...methodLegend(first.methods), seedLegend(group)], xMin: 0, xMax: first.steps };
}

/**
 * A sweep over several seeds (`groups`: per batch size, its seed traces): per method the mean final
 * test accuracy with its 95% interval as a band (the error bar of each point), markers at the means.
 */
export function seedSweepChart(groups: RunTrace[][]): LineChartData {
  if (groups.every((g) => g.length <= 1)) return sweepChart(groups.map((g) => g[0]).filter(Boolean));
  const done = groups.filter((g) => g.length && g.every((t) => t.result));
  const first = groups.find((g) => g.length)?.[0];
  if (!first || done.length === 0) return { lines: [], bands: [], legend: [] };
  const lines: Line[] = [];
  const bands: Band[] = [];
  for (const m of first.methods) {
    const pts = done.map((g) => ({
      b: g[0].config.batchSize,
      s: stat(g.flatMap((t) => {
        const f = t.result!.methods.find((r) => r.id === m.id)?.final;
        return f ? [100 * f.testAccuracy] : [];
      })),
    })).filter((p) => p.s.n > 0).sort((a, b) => a.b - b.b);
    lines.push({ label: m.label, color: m.color, markers: true, xs: pts.map((p) => p.b), ys: pts.map((p) => p.s.mean) });
    bands.push(bandOf(m.color, pts.map((p) => p.b), pts.map((p) => p.s)));
  }
  const sizes = groups.filter((g) => g.length).map((g) => g[0].config.batchSize);
  return { lines, bands, legend: [...methodLegend(first.methods), seedLegend(done[0])], xMin: Math.min(...sizes), xMax: Math.max(...sizes) };
}

/** Colour used for limits and reference lines. */
export const REFERENCE_COLOR = OKABE_ITO.black;

/** Tick values for [min, max]: about `count` round numbers (1, 2, 5 x 10^k steps). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max <= min) return [min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return ticks;
}

/** The y range of lines and bands (finite values only), or null when there is nothing. */
export function dataRange(data: LineChartData): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  const see = (v: number) => {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  };
  for (const l of data.lines) l.ys.forEach(see);
  for (const b of data.bands) {
    b.lo.forEach(see);
    b.hi.forEach(see);
  }
  return lo <= hi ? [lo, hi] : null;
}

/** The results the exports and tables use: finished runs only. */
export function finishedResults(traces: RunTrace[]): CompareResult[] {
  return traces.filter((t) => t.result).map((t) => t.result!);
}
