// Comparison results as CSV: what `normlab compare --csv` writes and the playground downloads, so
// the two files agree byte for byte.
import type { CompareResult } from './runner.js';

/**
 * The curves of one or more comparisons (a sweep, or several seeds, gives several) as CSV, one line
 * per training step and per evaluation of every method, under the header
 * `seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats` (`kind` is
 * `train` or `eval`; the batch-statistics columns are empty on training lines and where a value is null).
 */
export function resultsCsv(results: readonly CompareResult[]): string {
  const lines = ['seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats'];
  for (const r of results) {
    const run = `${r.config.seed},${r.config.batchSize}`;
    for (const m of r.methods) {
      m.train.loss.forEach((loss, i) => lines.push(`${run},${m.id},train,${i + 1},${loss},${m.train.accuracy[i]},,`));
      for (const e of m.eval) {
        lines.push(`${run},${m.id},eval,${e.step},${e.testLoss},${e.testAccuracy},${e.testLossBatchStats ?? ''},${e.testAccuracyBatchStats ?? ''}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}
