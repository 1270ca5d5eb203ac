// What the page knows about a comparison: one RunTrace per run (a sweep has several), built from
// the worker's ProgressEvents and replaced by the runner's full result when the run ends.
import type { CompareResult, EvalRecord, MethodTiming, ProgressEvent, ResolvedConfig } from 'normlab';
import type { Extent } from './config.js';
import type { Methods } from './methods.js';
import { methodColor } from './palette.js';

export interface MethodTrace {
  id: string;
  /** The layer name (`batchnorm`, ...) or `none`. */
  method: string;
  label: string;
  /** The method's colour in every chart. */
  color: string;
  /** Trained with batch statistics (from the method table): its test accuracy with batch statistics is drawn. */
  usesBatchStatistics: boolean;
  /** Per training step (index = step - 1). */
  loss: number[];
  accuracy: number[];
  evals: EvalRecord[];
  diverged: { step: number; reason: string } | null;
}

export interface GridMap {
  step: number;
  n: number;
  /** The part of the plane the grid covers. */
  extent: Extent;
  classes: number;
  probs: Record<string, Float32Array>;
}

export class RunTrace {
  readonly config: ResolvedConfig;
  readonly classes: number;
  /** Your data's class names (undefined for the built-in sets, whose classes are numbered). */
  readonly classNames: string[] | undefined;
  readonly methods: MethodTrace[];
  stepsDone = 0;
  /** The runner's result once the run is done (the numbers of the final table and the exports). */
  result: CompareResult | null = null;
  timing: Record<string, MethodTiming> | null = null;
  grid: GridMap | null = null;

  /** `methods`: the method table's list, for each method's colour and batch statistics. */
  constructor(config: ResolvedConfig, classes: number, methods: Methods, classNames?: string[]) {
    this.config = config;
    this.classes = classes;
    this.classNames = classNames;
    this.methods = config.methods.map((m, i) => {
      const info = methods.get(m.method);
      return {
        id: m.id, method: m.method, label: m.label, color: info?.color ?? methodColor(i),
        usesBatchStatistics: info?.usesBatchStatistics ?? false, loss: [], accuracy: [], evals: [], diverged: null,
      };
    });
  }

  get steps(): number {
    return this.config.steps;
  }

  method(id: string): MethodTrace | undefined {
    return this.methods.find((m) => m.id === id);
  }

  /** Adds a chunk of records. */
  apply(event: ProgressEvent): void {
    this.stepsDone = event.step;
    for (const m of this.methods) {
      const part = event.methods[m.id];
      if (!part) continue;
      part.train.forEach(([loss, accuracy], i) => {
        m.loss[part.firstStep + i] = loss;
        m.accuracy[part.firstStep + i] = accuracy;
      });
      m.evals.push(...part.eval);
      if (part.diverged) m.diverged = part.diverged;
    }
  }

  /** Takes the runner's full result (identical numbers; the final records). */
  finish(result: CompareResult, timing: Record<string, MethodTiming>): void {
    this.result = result;
    this.timing = timing;
    this.stepsDone = result.stepsDone;
    for (const r of result.methods) {
      const m = this.method(r.id);
      if (!m) continue;
      // A result passed on without its per-step arrays keeps the streamed ones (identical).
      if (r.train) {
        m.loss = r.train.loss;
        m.accuracy = r.train.accuracy;
      }
      if (r.eval) m.evals = r.eval;
      m.diverged = r.diverged;
    }
  }
}

/**
 * Several seeds: the page numbers its jobs `run * seeds + s` (run: a batch size of a sweep, s: the
 * seed's index), and both the page and the charts worker keep one sparse trace array so.
 */
export function lastRun(traces: readonly (RunTrace | undefined)[], seeds: number): number {
  let last = 0;
  traces.forEach((t, j) => {
    if (t) last = Math.max(last, Math.floor(j / seeds));
  });
  return last;
}

/** A run's traces over its seeds (those that have started), the first seed first. */
export function seedGroup(traces: readonly (RunTrace | undefined)[], seeds: number, run: number): RunTrace[] {
  return traces.slice(run * seeds, (run + 1) * seeds).filter((t): t is RunTrace => Boolean(t));
}
