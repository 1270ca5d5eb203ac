// The final results as table rows and as files: JSON and CSV in exactly the CLI's formats
// (`normlab compare --json/--csv`), so a download from the playground and the CLI's file agree.
import type { CompareResult } from 'normlab';
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

/** The CLI's --json: the result itself for one run, `{ runs }` for a sweep. */
export function resultsJson(results: CompareResult[]): string {
  return `${JSON.stringify(results.length === 1 ? results[0] : { runs: results }, null, 1)}\n`;
}

/** The CLI's --csv: every training step and every evaluation of every method (the package's writer). */
export { resultsCsv } from 'normlab';
