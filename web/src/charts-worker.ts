// The charts worker: draws every chart on an OffscreenCanvas the page handed over, from the same
// run records the page keeps, so drawing, painting and uploading the charts never occupies the
// page's main thread. While training it redraws the charts on screen whose data changed, at most
// every REDRAW_MS; once training stops, every shown chart.
import { BandsChart } from './bands.js';
import { Heatmap } from './heatmap.js';
import { LineChart, type Chart } from './linechart.js';
import { Methods } from './methods.js';
import type { ChartId, FromCharts, MapPoints, ToCharts, WorkerStatus } from './protocol.js';
import {
  ACTIVATION_LEGEND, activationPanels, layerCount, renormChart, seedSweepChart, seedTestAccuracyChart, seedTrainChart,
} from './series.js';
import { icsChart, landscapeChart, landscapeLineChart } from './probes.js';
import { RunTrace, lastRun as lastRunOf, seedGroup } from './store.js';

const REDRAW_MS = 200;
const WAITING = 'Waiting for the first steps…';
const IDLE = 'Press Run, or pick a preset, to train';

const post = (message: FromCharts, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(message, transfer);

/** The method table's methods (their colours), from the page before any run. */
let methods = new Methods([]);
let traces: RunTrace[] = [];
/** The decision maps' training points of each run (null: not a 2-D set). */
let points: (MapPoints | null)[] = [];
let viewRun = -1;
/** Seeds per run: job `run * seedCount + s` is the run's seed s (see the page's start). */
let seedCount = 1;
let status: WorkerStatus | 'error' = 'idle';
let generation = 0;
const layer = { activations: 0, renorm: 0, ics: 1 };

interface View {
  chart: Chart | null;
  make: (canvas: OffscreenCanvas) => Chart;
  key: (t: RunTrace) => string;
  draw: (t: RunTrace) => number;
  clear: () => number;
  width: number;
  dpr: number;
  shown: boolean;
  onScreen: boolean;
  drawn: string;
  height: number;
}

const placeholder = () => (status === 'idle' ? IDLE : WAITING);
const evalCount = (t: RunTrace) => t.methods.reduce((n, m) => n + m.evals.length, 0);
const runKey = (t: RunTrace) => `${generation}:${traces.indexOf(t)}:${t.result ? 'done' : ''}:${t.stepsDone}`;
const evalKey = (t: RunTrace) => `${generation}:${traces.indexOf(t)}:${t.result ? 'done' : ''}:${evalCount(t)}`;
const as = <T>(c: Chart | null) => c as T;

function view(make: View['make'], key: View['key'], draw: (c: Chart, t: RunTrace) => number, clear: (c: Chart) => number): View {
  const v: View = {
    chart: null, make, key, width: 0, dpr: 1, shown: false, onScreen: false, drawn: '', height: 0,
    draw: (t) => draw(v.chart!, t),
    clear: () => clear(v.chart!),
  };
  return v;
}

const views: Record<ChartId, View> = {
  sweep: view(
    (c) => new LineChart(c, { xLabel: 'batch size (examples per step, log scale)', yLabel: 'test accuracy (%)', yFloor: 0, yCeil: 100, xLog2: true, yUnit: '%' }),
    () => `${generation}:${traces.filter((t) => t.result).length}:${traces.filter(Boolean).length}`,
    (c) => as<LineChart>(c).update(seedSweepChart(Array.from({ length: lastRun() + 1 }, (_, r) => group(r)))),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  maps: view(
    (c) => new Heatmap(c),
    (t) => `${evalKey(t)}:${t.grid?.step ?? -1}`,
    (c, t) => {
      const g = t.grid;
      if (!g) return as<Heatmap>(c).reset(WAITING);
      return as<Heatmap>(c).update(t.methods.filter((m) => g.probs[m.id]).map((m) => {
        const last = m.evals[m.evals.length - 1];
        return {
          title: m.label, probs: g.probs[m.id], n: g.n, classes: g.classes,
          subtitle: last ? `test accuracy ${(100 * last.testAccuracy).toFixed(1)}%` : undefined,
        };
      }), g.extent, points[traces.indexOf(t)] ?? null, t.classNames);
    },
    (c) => as<Heatmap>(c).reset(placeholder()),
  ),
  test: view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'test accuracy (%)', yFloor: 0, yCeil: 100, yUnit: '%' }),
    evalKey,
    (c) => as<LineChart>(c).update(seedTestAccuracyChart(viewGroup())),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  loss: view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'cross-entropy loss (nats)', yMin: 0 }),
    runKey,
    (c) => as<LineChart>(c).update(seedTrainChart(viewGroup(), 'loss')),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  'train-accuracy': view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'batch accuracy (%)', yFloor: 0, yCeil: 100, yUnit: '%' }),
    runKey,
    (c) => as<LineChart>(c).update(seedTrainChart(viewGroup(), 'accuracy')),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  activations: view(
    (c) => new BandsChart(c, { xLabel: 'training step', yLabel: 'activation', minPanelWidth: 220 }),
    (t) => `${evalKey(t)}:${layer.activations}`,
    (c, t) => as<BandsChart>(c).update(layerCount(t) ? activationPanels(t, Math.min(layer.activations, layerCount(t) - 1)) : [], ACTIVATION_LEGEND),
    (c) => as<BandsChart>(c).reset(status === 'idle' ? IDLE : 'Waiting for the first evaluation…'),
  ),
  'renorm-r': view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'r (ratio)' }),
    (t) => `${evalKey(t)}:${layer.renorm}`,
    (c, t) => as<LineChart>(c).update(renormChart(t, 'r', layer.renorm)),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  landscape: view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'loss along the gradient', yMin: 0 }),
    evalKey,
    (c, t) => as<LineChart>(c).update(landscapeChart(t)),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  predictiveness: view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'max ‖∇L(w) − ∇L(w − ηg)‖', yMin: 0 }),
    evalKey,
    (c, t) => as<LineChart>(c).update(landscapeLineChart(t, 'gradientDistanceMax')),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  smoothness: view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'effective β-smoothness', yMin: 0 }),
    evalKey,
    (c, t) => as<LineChart>(c).update(landscapeLineChart(t, 'betaSmoothness')),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  'ics-l2': view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'ICS: ‖G − G′‖', yMin: 0 }),
    (t) => `${evalKey(t)}:${layer.ics}`,
    (c, t) => as<LineChart>(c).update(icsChart(t, layer.ics, 'l2')),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  'ics-cosine': view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'ICS: cos(G, G′)', yMax: 1 }),
    (t) => `${evalKey(t)}:${layer.ics}`,
    (c, t) => as<LineChart>(c).update(icsChart(t, layer.ics, 'cosine')),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
  'renorm-d': view(
    (c) => new LineChart(c, { xLabel: 'training step', yLabel: 'd (in running std units)' }),
    (t) => `${evalKey(t)}:${layer.renorm}`,
    (c, t) => as<LineChart>(c).update(renormChart(t, 'd', layer.renorm)),
    (c) => as<LineChart>(c).reset(placeholder()),
  ),
};

/** The latest run (sweep point) that has started, and a run's traces over its seeds (store.ts). */
const lastRun = () => lastRunOf(traces, seedCount);
const group = (run: number) => seedGroup(traces, seedCount, run);

const viewGroup = () => group(viewRun >= 0 ? viewRun : lastRun());

/** The run on view: its first seed's trace (the maps and per-run records are of it). */
function current(): RunTrace | undefined {
  return viewGroup()[0];
}

function keyOf(v: View): string {
  const g = viewGroup();
  return `${v.width}x${v.dpr}|${g.length ? g.map(v.key).join('/') : `${generation}:empty:${status === 'idle'}`}`;
}

let timer: ReturnType<typeof setTimeout> | null = null;
let lastDraw = 0;
function schedule(): void {
  if (timer !== null) return;
  const wait = status === 'running' ? Math.max(0, lastDraw + REDRAW_MS - performance.now()) : 0;
  timer = setTimeout(() => {
    timer = null;
    lastDraw = performance.now();
    redraw();
  }, wait);
}

function redraw(): void {
  const t = current();
  const everything = status !== 'running' && status !== 'loading';
  let stale = 0;
  for (const [id, v] of Object.entries(views) as [ChartId, View][]) {
    if (!v.chart || !v.shown || v.width === 0) continue;
    const key = keyOf(v);
    if (key === v.drawn) continue;
    if (!v.onScreen && !everything) {
      stale++;
      continue;
    }
    v.drawn = key;
    const height = t ? v.draw(t) : v.clear();
    if (height !== v.height) {
      v.height = height;
      post({ type: 'height', id, height });
    }
  }
  post({ type: 'stale', count: stale });
}

async function png(id: ChartId, title: string, request: number): Promise<void> {
  const v = views[id];
  const canvas = v.chart ? (v.chart as unknown as { canvas: OffscreenCanvas }).canvas : null;
  if (!canvas || canvas.width === 0) {
    post({ type: 'png', request, blob: null });
    return;
  }
  const band = Math.round(30 * v.dpr);
  const out = new OffscreenCanvas(canvas.width, canvas.height + band);
  const ctx = out.getContext('2d')!;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = '#222222';
  ctx.font = `600 ${Math.round(15 * v.dpr)}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
  ctx.textBaseline = 'middle';
  ctx.fillText(title, Math.round(8 * v.dpr), band / 2);
  ctx.drawImage(canvas, 0, band);
  post({ type: 'png', request, blob: await out.convertToBlob({ type: 'image/png' }) });
}

self.onmessage = (e: MessageEvent<ToCharts>) => {
  const msg = e.data;
  switch (msg.type) {
    case 'methods':
      methods = new Methods(msg.table);
      return;
    case 'canvas': {
      const v = views[msg.id];
      v.chart = v.make(msg.canvas);
      v.drawn = '';
      break;
    }
    case 'size': {
      const v = views[msg.id];
      v.width = msg.width;
      v.dpr = msg.dpr;
      v.chart?.resize(msg.width, msg.dpr);
      break;
    }
    case 'visible':
      views[msg.id].shown = msg.shown;
      views[msg.id].onScreen = msg.onScreen;
      break;
    case 'layer':
      layer[msg.which] = msg.layer;
      break;
    case 'view':
      viewRun = msg.run;
      break;
    case 'plan':
      seedCount = msg.seeds;
      break;
    case 'reset':
      generation += 1;
      traces = [];
      points = [];
      viewRun = -1;
      break;
    case 'status':
      status = msg.status;
      break;
    case 'train': {
      const m = msg.message;
      if (m.type === 'run-start') {
        traces[m.run] = new RunTrace(m.config, m.classes, methods, m.classNames);
        points[m.run] = m.points ?? null;
      } else if (m.type === 'progress') {
        traces[m.run]?.apply(m.event);
      } else if (m.type === 'grid') {
        const t = traces[m.run];
        if (t) t.grid = { step: m.step, n: m.n, extent: m.extent, classes: m.classes, probs: m.probs };
      } else if (m.type === 'run-done') {
        traces[m.run]?.finish(m.result, m.timing);
      }
      break;
    }
    case 'png':
      void png(msg.id, msg.title, msg.request);
      return;
  }
  schedule();
};
