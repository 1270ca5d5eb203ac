// The final results as table rows and as files: JSON and CSV in exactly the CLI's formats
// (`normlab compare --json/--csv`), so a download from the playground and the CLI's file agree.
import { seedsResult, type CompareResult, type SeedsResult, type Stat } from 'normlab';
import type { RunTrace } from './store.js';

export interface Cell {
  text: string;
  /** The unrounded number, for the cell's data-value (tests compare it with the CLI's JSON). */
  value?: number | null;
}

export interface Row {
  id: string;
  cells: Cell[];
}

/** The CLI's percent format: one decimal. */
export function pct(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)}%`;
}

function num(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}

function points(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const text = Math.abs(100 * v).toFixed(1);
  return text === '0.0' ? '0.0 pts' : `${v > 0 ? '+' : '−'}${text} pts`;
}

/**
 * The results table of a run: one row per method with the final records once the run is done,
 * else the latest evaluation (train loss only when done: it is the average over the last 10% of
 * the steps). With a domain shift, the shifted test accuracy before and after AdaBN too.
 */
export function summaryTable(trace: RunTrace): { columns: string[]; rows: Row[] } {
  const shifted = trace.config.domainShift != null;
  const columns = [
    'method',
    'test accuracy (inference)',
    'test accuracy (batch statistics)',
    'gap',
    'test loss',
    'train loss (last 10%)',
    ...(shifted ? ['shifted test accuracy', 'after AdaBN'] : []),
    'note',
  ];
  const rows = trace.methods.map((m) => {
    const r = trace.result?.methods.find((x) => x.id === m.id);
    const last = m.evals[m.evals.length - 1];
    const f = r?.final ?? null;
    const acc = f ? f.testAccuracy : last?.testAccuracy ?? null;
    const accStats = f ? f.testAccuracyBatchStats : last?.testAccuracyBatchStats ?? null;
    const loss = f ? f.testLoss : last?.testLoss ?? null;
    const gap = acc !== null && accStats !== null ? accStats - acc : null;
    const diverged = r?.diverged ?? m.diverged;
    const target = f?.target ?? null;
    return {
      id: m.id,
      cells: [
        { text: m.label },
        { text: pct(acc), value: acc },
        { text: pct(accStats), value: accStats },
        { text: points(gap), value: gap },
        { text: num(loss), value: loss },
        { text: num(f?.trainLoss), value: f?.trainLoss ?? null },
        ...(shifted
          ? [
            { text: pct(target?.accuracy), value: target?.accuracy ?? null },
            { text: pct(target?.accuracyAdapted), value: target?.accuracyAdapted ?? null },
          ]
          : []),
        { text: diverged ? `diverged at step ${diverged.step}` : '' },
      ],
    };
  });
  return { columns, rows };
}

/** A sweep: one row per batch size, test accuracy (inference mode) per method. */
export function sweepRows(traces: RunTrace[]): { columns: string[]; rows: Row[] } {
  const methods = traces[0]?.methods ?? [];
  const columns = ['batch size', ...methods.map((m) => m.label)];
  const rows = traces.map((t) => ({
    id: String(t.config.batchSize),
    cells: [
      { text: String(t.config.batchSize), value: t.config.batchSize },
      ...methods.map((m) => {
        const f = t.result?.methods.find((r) => r.id === m.id)?.final;
        return f ? { text: pct(f.testAccuracy), value: f.testAccuracy } : { text: t.result ? '–' : '…', value: null };
      }),
    ],
  }));
  return { columns, rows };
}

/** "82.4% ± 3.1" (the mean and the half-width of its 95% interval), or the mean alone for one value. */
export function pctPm(s: Stat): string {
  if (s.n === 0) return '–';
  return s.ci95 ? `${(100 * s.mean).toFixed(1)}% ± ${(50 * (s.ci95[1] - s.ci95[0])).toFixed(1)}` : pct(s.mean);
}

function numPm(s: Stat): string {
  if (s.n === 0) return '–';
  return s.ci95 ? `${s.mean.toFixed(3)} ± ${((s.ci95[1] - s.ci95[0]) / 2).toFixed(3)}` : num(s.mean);
}

/**
 * The results table of one setting over several seeds (every seed's run finished): per method the
 * means with their 95% intervals, and the paired difference against the first method, as the
 * CLI's table with --seeds.
 */
export function seedSummaryTable(result: SeedsResult): { columns: string[]; rows: Row[] } {
  const s = result.summary;
  const base = s.methods.find((m) => m.id === s.baseline)!;
  const columns = ['method', 'test accuracy (inference)', 'test accuracy (batch statistics)', 'test loss', 'train loss (last 10%)',
    `vs ${base.label} (paired, 95% interval)`];
  const rows = s.methods.map((m) => {
    const d = s.differences.find((x) => x.a === m.id && x.metric === 'testAccuracy');
    const diff = m.id === s.baseline ? { text: 'baseline' } : !d ? { text: '–' } : {
      text: `${points(d.meanDifference)}${d.ci95 ? ` [${(100 * d.ci95[0]).toFixed(1)}, ${(100 * d.ci95[1]).toFixed(1)}] p = ${d.p!.toPrecision(2)}` : ''}`,
      value: d.meanDifference,
    };
    return {
      id: m.id,
      cells: [
        { text: m.label },
        { text: pctPm(m.testAccuracy), value: m.testAccuracy.n ? m.testAccuracy.mean : null },
        { text: pctPm(m.testAccuracyBatchStats), value: m.testAccuracyBatchStats.n ? m.testAccuracyBatchStats.mean : null },
        { text: numPm(m.testLoss), value: m.testLoss.n ? m.testLoss.mean : null },
        { text: numPm(m.trainLoss), value: m.trainLoss.n ? m.trainLoss.mean : null },
        diff,
      ],
    };
  });
  return { columns, rows };
}

/** A sweep over several seeds: one row per batch size, the mean test accuracy ± its interval per method. */
export function seedSweepRows(results: (SeedsResult | null)[], batchSizes: number[]): { columns: string[]; rows: Row[] } {
  const methods = results.find((r) => r)?.summary.methods ?? [];
  const columns = ['batch size', ...methods.map((m) => m.label)];
  const rows = batchSizes.map((b, k) => ({
    id: String(b),
    cells: [
      { text: String(b), value: b },
      ...methods.map((_, i) => {
        const st = results[k]?.summary.methods[i].testAccuracy;
        return st ? { text: pctPm(st), value: st.n ? st.mean : null } : { text: '…', value: null };
      }),
    ],
  }));
  return { columns, rows };
}

/** Each setting's runs over its seeds as the CLI's --seeds result (baseline: the first method). */
export function seedsResults(groups: CompareResult[][], seeds: number[]): SeedsResult[] {
  return groups.map((runs) => seedsResult(seeds, runs));
}

/**
 * The CLI's --json: the result itself for one run, `{ runs }` for a sweep; over several seeds each
 * run is a SeedsResult (`{ config, seeds, runs, summary }`), as `normlab compare --seeds`.
 */
export function resultsJson(results: (CompareResult | SeedsResult)[]): string {
  return `${JSON.stringify(results.length === 1 ? results[0] : { runs: results }, null, 1)}\n`;
}

/** The CLI's --csv: every training step and every evaluation of every method (the package's writer). */
export { resultsCsv } from 'normlab';
