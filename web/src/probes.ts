// The probes' charts (Santurkar et al. 2018, "How Does Batch Normalization Help Optimization?"):
// from each method's evaluation records, the loss along the gradient (Figure 4a: the band between
// the smallest and largest loss over the step sizes), gradient predictiveness (4b: the largest
// change of the gradient along it), effective beta-smoothness (4c) and internal covariate shift
// per layer (l2 distance and cosine of the gradient before and after the layers below update).
// Pure functions of the run traces, like series.ts.
import type { Band, LegendItem, Line, LineChartData } from './series.js';
import type { MethodTrace, RunTrace } from './store.js';

const LANDSCAPE_ALPHA = 0.22;

/** The methods' records that carry a landscape. */
function withLandscape(m: MethodTrace) {
  return m.evals.filter((e) => e.landscape && e.landscape.lossMin !== null && e.landscape.lossMax !== null);
}

/** Whether a run's records carry probes (the charts show only then). */
export function hasProbes(t: RunTrace): { landscape: boolean; ics: boolean } {
  return {
    landscape: t.methods.some((m) => m.evals.some((e) => e.landscape)),
    ics: t.methods.some((m) => m.evals.some((e) => e.ics && e.ics.length)),
  };
}

/** Figure 4a: per method the band [lossMin, lossMax] along the gradient, and the loss at w. */
export function landscapeChart(t: RunTrace): LineChartData {
  const lines: Line[] = [];
  const bands: Band[] = [];
  const legend: LegendItem[] = [];
  for (const m of t.methods) {
    const rec = withLandscape(m);
    if (!rec.length) continue;
    const xs = rec.map((e) => e.step);
    bands.push({ color: m.color, alpha: LANDSCAPE_ALPHA, xs, lo: rec.map((e) => e.landscape!.lossMin!), hi: rec.map((e) => e.landscape!.lossMax!) });
    lines.push({ label: m.label, color: m.color, width: 1.5, xs, ys: rec.map((e) => e.landscape!.loss) });
    legend.push({ label: m.label, color: m.color });
  }
  legend.push({ label: 'loss range over the step sizes', color: '#555555', fill: LANDSCAPE_ALPHA }, { label: 'loss at the current weights', color: '#555555' });
  return { lines, bands, legend, xMin: 0, xMax: t.steps };
}

/** One landscape value per evaluation and method: 4b (gradientDistanceMax) or 4c (betaSmoothness). */
export function landscapeLineChart(t: RunTrace, key: 'gradientDistanceMax' | 'betaSmoothness'): LineChartData {
  const lines: Line[] = [];
  for (const m of t.methods) {
    const rec = m.evals.filter((e) => typeof e.landscape?.[key] === 'number' && Number.isFinite(e.landscape[key]));
    if (!rec.length) continue;
    lines.push({ label: m.label, color: m.color, xs: rec.map((e) => e.step), ys: rec.map((e) => e.landscape![key] as number) });
  }
  return { lines, bands: [], legend: lines.map((l) => ({ label: l.label, color: l.color })), xMin: 0, xMax: t.steps };
}

/** The layers with ICS records (their 1-based numbers among the weight layers), and their kinds. */
export function icsLayers(t: RunTrace): { layer: number; kind: string }[] {
  const seen = new Map<number, string>();
  for (const m of t.methods) for (const e of m.evals) for (const r of e.ics ?? []) if (!seen.has(r.layer)) seen.set(r.layer, r.kind);
  return [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([layer, kind]) => ({ layer, kind }));
}

/** ICS of one layer over training, per method: the l2 distance or the cosine. */
export function icsChart(t: RunTrace, layer: number, key: 'l2' | 'cosine'): LineChartData {
  const lines: Line[] = [];
  for (const m of t.methods) {
    const pts = m.evals.flatMap((e) => {
      const r = e.ics?.find((x) => x.layer === layer);
      return r && typeof r[key] === 'number' ? [{ x: e.step, y: r[key] as number }] : [];
    });
    if (!pts.length) continue;
    lines.push({ label: m.label, color: m.color, xs: pts.map((p) => p.x), ys: pts.map((p) => p.y) });
  }
  return { lines, bands: [], legend: lines.map((l) => ({ label: l.label, color: l.color })), xMin: 0, xMax: t.steps };
}

/** The probes' cost per evaluation per method (ms), from the run's timing, or null before it ends. */
export function probeCost(t: RunTrace): { label: string; ms: number }[] | null {
  const timing = t.timing as Record<string, { probeMs?: number; evaluations?: number }> | undefined;
  if (!timing) return null;
  return t.methods.flatMap((m) => {
    const x = timing[m.id];
    return x && x.probeMs !== undefined && x.evaluations ? [{ label: m.label, ms: x.probeMs / x.evaluations }] : [];
  });
}
