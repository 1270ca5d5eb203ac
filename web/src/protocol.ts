// Messages between the page and the training worker. Every message from the worker carries the
// generation of the `start` it belongs to, so the page drops what a reset or a new start outdated;
// the method table comes first, once the worker has loaded the WebAssembly module (generation 0).
import type { CompareConfig, CompareResult, MethodInfo, MethodTiming, ProgressEvent, ResolvedConfig } from 'normlab';
import type { Extent } from './config.js';

export interface GridSpec extends Extent {
  /** Points per side. */
  n: number;
}

/** Points on the decision maps: `x` holds (x1, x2) pairs. */
export interface MapPoints {
  x: Float32Array;
  labels: Int32Array;
}

export type ToWorker =
  /**
   * Runs `runs` one after another; each one's messages carry its number in `ids` (the page's job
   * number: run * seeds + seed index), and those with `maps` set post decision maps on `grid`.
   */
  | { type: 'start'; gen: number; runs: CompareConfig[]; ids: number[]; maps: boolean[]; grid: GridSpec | null; paused?: boolean }
  | { type: 'pause' }
  | { type: 'resume' }
  /** One chunk of `steps` steps while paused. */
  | { type: 'step'; steps: number }
  | { type: 'reset' };

export type WorkerStatus = 'idle' | 'loading' | 'running' | 'paused' | 'done';

export type FromWorker =
  /** The method table (`describeMethods()`), posted once the module is loaded. */
  | { type: 'methods'; gen: number; table: MethodInfo[] }
  | { type: 'status'; gen: number; status: WorkerStatus }
  | {
    type: 'run-start'; gen: number; run: number; runs: number; config: ResolvedConfig; classes: number;
    /** Your data's classes by name (class k is classNames[k]). */
    classNames?: string[];
    /** 2-D sets: training points drawn on the decision maps ((x, y) pairs and labels). */
    points?: MapPoints;
  }
  | { type: 'progress'; gen: number; run: number; event: ProgressEvent }
  /** Class probabilities on the grid (n x n points over `extent`) per method id (n * n * classes, row-major from the top-left). */
  | { type: 'grid'; gen: number; run: number; step: number; n: number; extent: Extent; classes: number; probs: Record<string, Float32Array> }
  | { type: 'run-done'; gen: number; run: number; result: CompareResult; timing: Record<string, MethodTiming> }
  | { type: 'error'; gen: number; message: string };

/** The charts on the page (each an OffscreenCanvas drawn by the charts worker). */
export const CHART_IDS = ['sweep', 'maps', 'test', 'loss', 'train-accuracy', 'activations', 'renorm-r', 'renorm-d', 'landscape', 'predictiveness', 'smoothness', 'ics-l2', 'ics-cosine'] as const;
export type ChartId = (typeof CHART_IDS)[number];

export type ToCharts =
  /** The method table (the methods' colours), sent before any run. */
  | { type: 'methods'; table: MethodInfo[] }
  | { type: 'canvas'; id: ChartId; canvas: OffscreenCanvas }
  | { type: 'size'; id: ChartId; width: number; dpr: number }
  /** Whether the chart is shown and on screen (while training only those are redrawn). */
  | { type: 'visible'; id: ChartId; shown: boolean; onScreen: boolean }
  | { type: 'layer'; which: 'activations' | 'renorm' | 'ics'; layer: number }
  /** Which run's curves to show (-1: the latest). */
  | { type: 'view'; run: number }
  | { type: 'reset' }
  /** A start's seeds per run: job `run * seeds + s` is the run's seed s; the line charts show each run over its seeds. */
  | { type: 'plan'; seeds: number }
  | { type: 'status'; status: WorkerStatus | 'error' }
  /** A message of the training worker (run-done without the per-step arrays the charts already have). */
  | { type: 'train'; message: FromWorker }
  | { type: 'png'; id: ChartId; title: string; request: number };

export type FromCharts =
  | { type: 'height'; id: ChartId; height: number }
  /** Shown charts not yet showing the latest data. */
  | { type: 'stale'; count: number }
  | { type: 'png'; request: number; blob: Blob | null };
