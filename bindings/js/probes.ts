// The probes' records (CompareConfig.probes) summarized per method: means over the evaluations, for
// the CLI's table, the landscape preset's check and the README's numbers.
import type { CompareResult } from './runner.js';

/** One method's probes, averaged over the evaluations of one run or of several (seeds). */
export interface ProbeSummary {
  id: string;
  label: string;
  /** Evaluations with a landscape record. */
  evaluations: number;
  /** Evaluations left out of the landscape means because a value was not finite (a step that blew up). */
  nonFinite: number;
  /** The mean of lossMax - lossMin: how much the loss varies along the gradient. */
  lossRange: number | null;
  /** The mean of gradientDistanceMax. */
  gradientDistance: number | null;
  /** The mean of betaSmoothness. */
  betaSmoothness: number | null;
  /** Per layer, the mean l2 and cosine over the evaluations (null cosines left out). */
  ics: { layer: number; kind: string; l2: number; cosine: number | null }[];
}

const mean = (values: readonly number[]): number | null =>
  values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;

/**
 * Per method (by id, in the order of the first run), the means over every evaluation of the runs
 * given (one run, or one per seed) of the landscape's loss range, gradient distance and
 * beta-smoothness, and of each layer's ICS. A run without probes gives nulls and no ICS rows.
 */
export function probeSummary(runs: CompareResult | readonly CompareResult[]): ProbeSummary[] {
  const all: readonly CompareResult[] = Array.isArray(runs) ? runs : [runs as CompareResult];
  if (all.length === 0) return [];
  return all[0].methods.map(({ id, label }) => {
    const ranges: number[] = [], distances: number[] = [], betas: number[] = [];
    const layers = new Map<number, { kind: string; l2: number[]; cosine: number[] }>();
    let evaluations = 0, nonFinite = 0;
    for (const run of all) {
      for (const e of run.methods.find((m) => m.id === id)?.eval ?? []) {
        const L = e.landscape;
        if (L) {
          evaluations += 1;
          if (L.lossMin === null || L.lossMax === null || L.gradientDistanceMax === null || L.betaSmoothness === null) {
            nonFinite += 1;
          } else {
            ranges.push(L.lossMax - L.lossMin);
            distances.push(L.gradientDistanceMax);
            betas.push(L.betaSmoothness);
          }
        }
        for (const row of e.ics ?? []) {
          const entry = layers.get(row.layer) ?? { kind: row.kind, l2: [], cosine: [] };
          entry.l2.push(row.l2);
          if (row.cosine !== null) entry.cosine.push(row.cosine);
          layers.set(row.layer, entry);
        }
      }
    }
    return {
      id,
      label,
      evaluations,
      nonFinite,
      lossRange: mean(ranges),
      gradientDistance: mean(distances),
      betaSmoothness: mean(betas),
      ics: [...layers.entries()].sort(([a], [b]) => a - b)
        .map(([layer, v]) => ({ layer, kind: v.kind, l2: mean(v.l2)!, cosine: mean(v.cosine) })),
    };
  });
}
