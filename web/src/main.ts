// The playground's glue: settings (URL hash <-> controls), presets, the training worker, the
// charts worker (which draws every chart on an OffscreenCanvas) and the tables. The main thread
// only keeps the records, forwards them and updates a few texts, so it stays free while training.
// The methods, their options and colours come from the method table, which the training worker
// posts once it has loaded the WebAssembly module: the settings are built when it arrives.
import { compactLayers, type MethodInfo, type Preset } from 'normlab';
import { configsFromState, extentFor, extentOfPoints, isPointSet, jobsFromState, stateFromPreset } from './config.js';
import { Controls } from './controls.js';
import { download, fileName } from './export.js';
import { Methods } from './methods.js';
import { CHART_IDS, type ChartId, type FromCharts, type FromWorker, type GridSpec, type ToCharts, type ToWorker, type WorkerStatus } from './protocol.js';
import { resultsCsv, resultsJson, seedsResults, seedSummaryTable, seedSweepRows, summaryTable, sweepRows, type Row } from './results.js';
import { finishedResults, layerCount, renormChart, seedSweepChart, seedTestAccuracyChart, seedTrainChart, smoothingWindow } from './series.js';
import { PAGE_PRESETS, Settings, USER_DATA, type State } from './state.js';
import { hasProbes, icsLayers, probeCost } from './probes.js';
import { RunTrace, lastRun as lastRunOf, seedGroup } from './store.js';
import { UserDataPanel } from './userdata.js';

const GRID_N = 48;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

// ---------------------------------------------------------------------------------------------
// The workers, started first: the training worker loads the WebAssembly module meanwhile

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'normlab-trainer' });
/**
 * The training workers: the first one, and as many more as a run with several seeds or batch
 * sizes uses (each its own WebAssembly instance). Those given jobs by the last start are active.
 */
const trainers: Worker[] = [worker];
let active: number[] = [];
const trainerStatus: (WorkerStatus | 'error')[] = ['idle'];
/** Sends a pause, resume, step or reset to every active worker. */
const send = (message: ToWorker) => {
  for (const i of active) trainers[i].postMessage(message);
};

/** The method table, which the training worker posts as soon as it has loaded the module. */
const methodTable = new Promise<MethodInfo[]>((resolve, reject) => {
  worker.onmessage = (e: MessageEvent<FromWorker>) => {
    if (e.data.type === 'methods') resolve(e.data.table);
    else if (e.data.type === 'error') reject(new Error(e.data.message));
  };
  worker.onerror = (e) => reject(new Error(e.message || 'the training worker failed to start'));
});

let status: WorkerStatus | 'error' = 'idle';
let gen = 0;
/** One trace per job: job `run * seedCount + s` is run `run` (a batch size of a sweep) with seed `s`. */
let traces: RunTrace[] = [];
let runsPlanned = 0;
let seedCount = 1;
let seedsPlanned: number[] = [];
/** The training steps of each job (for the progress bar before its run starts). */
let jobSteps: number[] = [];
let batchSizes: number[] = [];
let viewRun = -1;  // -1: follow the current run
let stepAfterStart = false;
let startedAt = 0;
let elapsedMs = 0;
let error = '';
let changedSinceRun = false;
/** The run on view has decision maps (a 2-D set, or your data with two features). */
let runHasMaps = false;
// Rendering (see markDirty): a render is pending; when the last one was.
let dirty = false;
let lastRender = 0;

// ---------------------------------------------------------------------------------------------
// Charts: canvases handed to the charts worker, which draws them (see charts-worker.ts)

const charts = new Worker(new URL('./charts-worker.ts', import.meta.url), { type: 'module', name: 'normlab-charts' });
const toCharts = (message: ToCharts, transfer: Transferable[] = []) => charts.postMessage(message, transfer);
let staleCharts = 0;
let pngRequests = 0;
const pngWaiting = new Map<number, (blob: Blob | null) => void>();

interface Card {
  id: ChartId;
  section: HTMLElement;
  canvas: HTMLCanvasElement;
  desc: HTMLElement;
  onScreen: boolean;
}
const cards = new Map<ChartId, Card>();

const DESCRIPTIONS: Record<ChartId, [string, string]> = {
  sweep: ['Test accuracy against batch size',
    'Final test accuracy (inference mode) of each method after the same number of epochs at each batch size, learning rate scaled with the batch size, as in the Group Normalization paper\'s Figure 1.'],
  maps: ['Decision maps',
    'Each method\'s prediction over the plane in inference mode: the colour of the most likely class, stronger where the model is surer. Dots: training examples in their class colour.'],
  test: ['Test accuracy: inference mode vs batch statistics',
    'Solid: inference mode (running statistics), as the model is used after training. Dashed: test batches drawn like the training batches and normalized with their own statistics. The distance between them is the train/inference gap.'],
  loss: ['Training loss', 'Cross-entropy on each step\'s batch in training mode, as a moving average.'],
  'train-accuracy': ['Training accuracy', 'Accuracy on each step\'s batch in training mode, as a moving average.'],
  activations: ['Pre-normalization activations',
    'Percentiles of one unit\'s input to the normalization layer (channel 0, 256 test examples) over training, as in the Batch Normalization paper\'s Figure 1. Each panel has its own scale.'],
  'renorm-r': ['Batch Renorm: r against its limits',
    'r = σ_batch / σ_running per channel (band: min to max over channels, line: mean). It is clipped to [1/rMax, rMax]; the limits start at 1 (plain BatchNorm) and relax during training.'],
  landscape: ['Loss landscape along the gradient',
    'At each evaluation, on a fixed training batch in training mode: the loss at w − ηg for several step sizes η around the learning rate (g: the gradient at the current weights w). Band: the smallest to the largest loss over the step sizes; line: the loss at w. A narrower band is a smoother landscape (Santurkar et al. 2018, Figure 4a).'],
  predictiveness: ['Gradient predictiveness',
    'The largest change of the gradient along the gradient direction, max over η of ‖∇L(w) − ∇L(w − ηg)‖: lower means the gradient at w predicts the gradient a step away (Figure 4b).'],
  smoothness: ['Effective β-smoothness',
    'The largest ‖∇L(w) − ∇L(w − ηg)‖ / ‖ηg‖ over the step sizes: the Lipschitz constant of the gradient along the path a step takes. Lower is smoother (Figure 4c).'],
  'ics-l2': ['Internal covariate shift: distance',
    'For one layer, ‖G − G′‖: G its gradient, G′ the same after every layer below it took its update step, on the probe batch (Santurkar et al., Definition 2.1; Figures 5 and 6). The BatchNorm paper\'s claim is that BatchNorm reduces this.'],
  'ics-cosine': ['Internal covariate shift: angle',
    'The cosine between G and G′ for the same layer: 1 means the update of the layers below did not turn this layer\'s gradient.'],
  'renorm-d': ['Batch Renorm: d against its limits',
    'd = (μ_batch − μ_running) / σ_running per channel, clipped to [−dMax, dMax]; the limits start at 0 and relax during training. Same hidden layer as the r chart.'],
};
const LINE_HEIGHT = 260;

function layerSelect(which: 'activations' | 'renorm' | 'ics'): HTMLSelectElement {
  const select = document.createElement('select');
  select.id = `layer-${which}`;
  select.setAttribute('aria-label', 'Hidden layer');
  select.addEventListener('change', () => toCharts({ type: 'layer', which, layer: Number(select.value) || 0 }));
  return select;
}
const actLayer = layerSelect('activations');
const icsLayer = layerSelect('ics');
const renormLayer = layerSelect('renorm');

const onScreen = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const c = [...cards.values()].find((x) => x.section === e.target);
    if (c) {
      c.onScreen = e.isIntersecting;
      sendVisibility(c);
    }
  }
}, { rootMargin: '300px 0px' });

const sizes = new ResizeObserver((entries) => {
  for (const e of entries) {
    const c = [...cards.values()].find((x) => x.canvas === e.target);
    if (c) toCharts({ type: 'size', id: c.id, width: Math.round(e.contentRect.width), dpr: window.devicePixelRatio || 1 });
  }
});

function sendVisibility(c: Card): void {
  toCharts({ type: 'visible', id: c.id, shown: !c.section.hidden, onScreen: c.onScreen && !c.section.hidden });
}

for (const id of CHART_IDS) {
  const [title, description] = DESCRIPTIONS[id];
  const section = document.createElement('section');
  section.className = 'card chart';
  section.id = `chart-${id}`;
  const head = document.createElement('div');
  head.className = 'card-head';
  const h = document.createElement('h3');
  h.textContent = title;
  h.id = `chart-${id}-title`;
  section.setAttribute('aria-labelledby', h.id);
  const tools = document.createElement('div');
  tools.className = 'tools';
  if (id === 'activations') tools.append(actLayer);
  if (id === 'renorm-r') tools.append(renormLayer);
  if (id === 'ics-l2') tools.append(icsLayer);
  const png = document.createElement('button');
  png.type = 'button';
  png.className = 'small';
  png.textContent = 'PNG';
  png.setAttribute('aria-label', `Download "${title}" as PNG`);
  tools.append(png);
  head.append(h, tools);
  const desc = document.createElement('p');
  desc.className = 'desc';
  desc.textContent = description;
  const canvas = document.createElement('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `${title}. The numbers are in the results table.`);
  canvas.style.height = `${id === 'activations' || id === 'maps' ? 160 : LINE_HEIGHT}px`;
  const host = document.createElement('div');
  host.className = 'plot';
  host.append(canvas);
  section.append(head, desc, host);
  $('charts').append(section);
  const card: Card = { id, section, canvas, desc, onScreen: false };
  cards.set(id, card);
  png.addEventListener('click', async () => {
    const request = ++pngRequests;
    const blob = await new Promise<Blob | null>((resolve) => {
      pngWaiting.set(request, resolve);
      toCharts({ type: 'png', id, title, request });
    });
    if (blob) download(blob, fileName(title, 'png'));
  });
  const offscreen = canvas.transferControlToOffscreen();
  toCharts({ type: 'canvas', id, canvas: offscreen }, [offscreen]);
  sizes.observe(canvas);
  onScreen.observe(section);
}

charts.onmessage = (e: MessageEvent<FromCharts>) => {
  const msg = e.data;
  if (msg.type === 'height') {
    const c = cards.get(msg.id);
    if (c && msg.height > 0) c.canvas.style.height = `${msg.height}px`;
  } else if (msg.type === 'stale') {
    staleCharts = msg.count;
  } else if (msg.type === 'png') {
    pngWaiting.get(msg.request)?.(msg.blob);
    pngWaiting.delete(msg.request);
  }
};
charts.onerror = (e) => {
  status = 'error';
  error = `The charts worker failed: ${e.message || 'unknown error'}`;
  markDirty();
};

// ---------------------------------------------------------------------------------------------
// The method table: everything below reads it

$('status').textContent = 'Loading…';
$('status').dataset.status = 'loading';
for (const id of ['run', 'step', 'reset']) $<HTMLButtonElement>(id).disabled = true;
let table: MethodInfo[];
try {
  table = await methodTable;
} catch (failure) {
  status = 'error';
  $('status').textContent = 'Stopped by an error';
  $('status').dataset.status = status;
  $('error').textContent = `Could not load the WebAssembly module: ${failure instanceof Error ? failure.message : String(failure)}`;
  $('error').hidden = false;
  throw failure;
}
const methods = new Methods(table);
const settings = new Settings(methods);
toCharts({ type: 'methods', table });

// ---------------------------------------------------------------------------------------------
// Settings

const initial = settings.parseHash(location.hash);
let state: State = initial.state;
const controls = new Controls($<HTMLFormElement>('settings'), settings, state, (next, notices) => {
  state = next;
  writeHash();
  showNotices(notices);
  settingsChanged();
});

/** Takes a state made here (not by a control): checked, shown in the controls and the link. */
function applyState(next: State): void {
  const checked = settings.checkState(next);
  state = checked.state;
  controls.set(state);
  writeHash();
  if (checked.notices.length) showNotices(checked.notices);
  settingsChanged();
}

// Your data: the panel under the data set menu; a file chosen or dropped makes it the data set.
const userData = new UserDataPanel({
  // The same file again keeps its label column; another one takes the column the preview suggests.
  file: (name, labelColumn) => applyState({
    ...state, dataset: USER_DATA, dataFile: name, labelColumn: name === state.dataFile ? state.labelColumn : labelColumn,
  }),
  labelColumn: (value) => applyState({ ...state, labelColumn: value }),
});
$('settings').querySelector('[data-name="dataset"]')!.after(userData.element);
// A file dropped anywhere on the page is taken as your data (rather than opened by the browser).
window.addEventListener('dragover', (e) => {
  if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
});
window.addEventListener('drop', (e) => {
  const f = e.dataTransfer?.files[0];
  if (!f) return;
  e.preventDefault();
  void userData.readFile(f);
});

function writeHash(): void {
  const hash = settings.toHash(state);
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

function showNotices(notices: string[]): void {
  const box = $('notice');
  const list = $('notice-list');
  list.replaceChildren(...notices.map((n) => {
    const li = document.createElement('li');
    li.textContent = n;
    return li;
  }));
  box.hidden = notices.length === 0;
}
$('notice-close').addEventListener('click', () => ($('notice').hidden = true));

window.addEventListener('hashchange', () => {
  if (location.hash === settings.toHash(state)) return;
  const parsed = settings.parseHash(location.hash);
  state = parsed.state;
  controls.set(state);
  showNotices(parsed.notices);
  writeHash();
  settingsChanged();
});

// ---------------------------------------------------------------------------------------------
// Presets

function presetByName(name: string): Preset | undefined {
  return PAGE_PRESETS.find((p) => p.name === name);
}

const presetList = $('preset-list');
for (const p of PAGE_PRESETS) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'preset';
  button.dataset.preset = p.name;
  const name = document.createElement('strong');
  name.textContent = p.name;
  const title = document.createElement('span');
  title.textContent = p.title;
  button.append(name, title);
  button.addEventListener('click', () => {
    state = stateFromPreset(p, settings);
    controls.set(state);
    writeHash();
    showNotices([]);
    settingsChanged();
    start();
  });
  presetList.append(button);
}

function renderPresetInfo(): void {
  const p = presetByName(state.preset);
  const box = $('preset-info');
  box.hidden = !p;
  for (const b of presetList.querySelectorAll<HTMLButtonElement>('button')) {
    b.setAttribute('aria-pressed', String(b.dataset.preset === state.preset));
  }
  if (!p) return;
  $('preset-title').textContent = p.title;
  $('preset-explanation').textContent = p.explanation;
  const link = $<HTMLAnchorElement>('preset-paper');
  link.href = p.paper.url;
  link.textContent = p.paper.title;
  $('preset-modified').hidden = settings.sameSettings(state, stateFromPreset(p, settings));
}

// ---------------------------------------------------------------------------------------------
// Runs

/** The page's status from its active workers': loading, running, paused, done or idle. */
function overallStatus(): WorkerStatus {
  const st = active.map((i) => trainerStatus[i]);
  if (st.some((x) => x === 'loading')) return 'loading';
  if (st.some((x) => x === 'running')) return 'running';
  if (st.some((x) => x === 'paused')) return 'paused';
  if (st.length && st.every((x) => x === 'done')) return 'done';
  return 'idle';
}

function onTrainerMessage(index: number, msg: FromWorker): void {
  if (msg.gen !== gen) return;
  switch (msg.type) {
    case 'status': {
      trainerStatus[index] = msg.status;
      if (status === 'error') break;  // the workers go idle after an error: keep showing it
      const next = overallStatus();
      if (status === 'running' && next !== 'running') elapsedMs += performance.now() - startedAt;
      if (next === 'running' && status !== 'running') startedAt = performance.now();
      status = next;
      toCharts({ type: 'status', status });
      if (next === 'paused' && stepAfterStart) {
        stepAfterStart = false;
        stepOnce();
      }
      break;
    }
    case 'run-start':
      traces[msg.run] = new RunTrace(msg.config, msg.classes, methods, msg.classNames);
      toCharts({ type: 'train', message: msg });
      break;
    case 'progress':
      traces[msg.run]?.apply(msg.event);
      toCharts({ type: 'train', message: msg });
      break;
    case 'grid':
      // Only the charts need the maps: handed over, not copied.
      toCharts({ type: 'train', message: msg }, Object.values(msg.probs).map((p) => p.buffer));
      break;
    case 'run-done': {
      traces[msg.run]?.finish(msg.result, msg.timing);
      // The charts worker has every step already: the final records suffice.
      const light = { ...msg.result, methods: msg.result.methods.map((m) => ({ ...m, train: undefined, eval: undefined })) };
      toCharts({ type: 'train', message: { ...msg, result: light as unknown as typeof msg.result } });
      renderTables();
      break;
    }
    case 'error':
      status = 'error';
      error = msg.message;
      trainerStatus[index] = 'error';
      // One run failed: the others of this start stop too (their results would be incomplete).
      for (const i of active) if (i !== index) trainers[i].postMessage({ type: 'reset' });
      toCharts({ type: 'status', status });
      break;
  }
  markDirty();
}

function listen(index: number): void {
  trainers[index].onmessage = (e: MessageEvent<FromWorker>) => onTrainerMessage(index, e.data);
  trainers[index].onerror = (e) => {
    status = 'error';
    error = `A training worker failed: ${e.message || 'unknown error'}`;
    markDirty();
  };
}
listen(0);

/** Starts training workers up to `n` (the first one is already running). */
function ensureTrainers(n: number): void {
  while (trainers.length < n) {
    trainers.push(new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: `normlab-trainer-${trainers.length + 1}` }));
    trainerStatus.push('idle');
    listen(trainers.length - 1);
  }
}

/** Workers for `jobs` jobs: the setting, or the machine's cores less one for the page (at least 1, at most 16). */
function workerCount(jobs: number): number {
  const auto = Math.max(1, (navigator.hardwareConcurrency || 2) - 1);
  return Math.max(1, Math.min(jobs, state.workers > 0 ? state.workers : auto, 16));
}

/** The decision maps' grid for the state: 2-D sets, and your data when it has two features. */
function gridFor(): GridSpec | null {
  if (isPointSet(state.dataset)) return { ...extentFor(state.dataset), n: GRID_N };
  const p = state.dataset === USER_DATA ? userData.parsed : null;
  return p && p.shape.length === 1 && p.shape[0] === 2 ? { ...extentOfPoints(p.x), n: GRID_N } : null;
}

/** The jobs of the state (runs x seeds); for your data without a usable file, an Error that says why. */
function stateJobs(): ReturnType<typeof jobsFromState> {
  if (state.dataset === USER_DATA && userData.error && (state.dataFile === '' || state.dataFile === userData.fileName)) {
    throw new Error(userData.error);
  }
  return jobsFromState(state, methods, state.dataset === USER_DATA ? userData.file : null);
}

/** The configurations of the state; for your data without a usable file, an Error that says why. */
function runConfigs(): ReturnType<typeof configsFromState> {
  // The file's own problem, when it is the file the settings name (else: which file to attach).
  if (state.dataset === USER_DATA && userData.error && (state.dataFile === '' || state.dataFile === userData.fileName)) {
    throw new Error(userData.error);
  }
  return configsFromState(state, methods, state.dataset === USER_DATA ? userData.file : null);
}

function start(paused = false): void {
  let plan: ReturnType<typeof jobsFromState>;
  try {
    plan = stateJobs();
  } catch (failure) {
    status = 'error';
    error = failure instanceof Error ? failure.message : String(failure);
    toCharts({ type: 'status', status });
    markDirty();
    return;
  }
  // The workers of the last start stop (a new generation ignores what they still send).
  send({ type: 'reset' });
  gen += 1;
  traces = [];
  viewRun = -1;
  error = '';
  elapsedMs = 0;
  startedAt = performance.now();
  changedSinceRun = false;
  runsPlanned = plan.runs.length;
  seedCount = plan.seeds.length;
  seedsPlanned = plan.seeds;
  jobSteps = plan.jobs.map((c) => c.steps ?? 1);
  batchSizes = plan.runs.map((c) => c.batchSize ?? 32);
  status = 'loading';
  const grid = gridFor();
  runHasMaps = grid !== null;
  // Jobs go round-robin to the workers; each trains its share one after another.
  const k = workerCount(plan.jobs.length);
  ensureTrainers(k);
  active = Array.from({ length: k }, (_, i) => i);
  for (const i of active) {
    const ids = plan.jobs.map((_, j) => j).filter((j) => j % k === i);
    trainerStatus[i] = 'loading';
    trainers[i].postMessage({
      type: 'start', gen, runs: ids.map((j) => plan.jobs[j]), ids, maps: ids.map((j) => j % seedCount === 0), grid, paused,
    } satisfies ToWorker);
  }
  resetCharts();
  toCharts({ type: 'plan', seeds: seedCount });
  toCharts({ type: 'status', status });
  renderTables();
  markDirty();
}

function stepOnce(): void {
  const t = current();
  const every = t?.config.evalInterval ?? 1;
  const done = t?.stepsDone ?? 0;
  send({ type: 'step', steps: Math.max(1, every - (done % every)) });
}

/** The latest run (sweep point) that has started, and a run's traces over its seeds (store.ts). */
const lastRun = () => lastRunOf(traces, seedCount);
const group = (run: number) => seedGroup(traces, seedCount, run);

/** The run on view: its first seed's trace (the one whose maps and records the charts show). */
function current(): RunTrace | undefined {
  return group(viewRun >= 0 ? viewRun : lastRun())[0];
}

/** The finished runs of each setting, over all its seeds (null until every seed has finished). */
function finishedGroups(): (RunTrace[] | null)[] {
  return Array.from({ length: runsPlanned }, (_, r) => {
    const g = group(r);
    return g.length === seedCount && g.every((t) => t.result) ? g : null;
  });
}

const runButton = $<HTMLButtonElement>('run');
const stepButton = $<HTMLButtonElement>('step');
const resetButton = $<HTMLButtonElement>('reset');

runButton.addEventListener('click', () => {
  if (status === 'running') send({ type: 'pause' });
  else if (status === 'paused') send({ type: 'resume' });
  else if (status !== 'loading') start();
});
stepButton.addEventListener('click', () => {
  if (status === 'paused') stepOnce();
  else if (status === 'idle' || status === 'done' || status === 'error') {
    stepAfterStart = true;
    start(true);
  }
});
resetButton.addEventListener('click', () => {
  gen += 1;
  send({ type: 'reset' });
  status = 'idle';
  for (const i of active) trainerStatus[i] = 'idle';
  toCharts({ type: 'status', status });
  traces = [];
  error = '';
  elapsedMs = 0;
  resetCharts();
  renderTables();
  markDirty();
});

function settingsChanged(): void {
  // Your data chosen again: the file the panel holds is the one the settings name.
  if (state.dataset === USER_DATA && state.dataFile === '' && userData.fileName !== '') {
    state = { ...state, dataFile: userData.fileName };
    writeHash();
  }
  userData.update(state);
  changedSinceRun = traces.some(Boolean);
  renderPresetInfo();
  layoutCharts();
  markDirty();
}

// ---------------------------------------------------------------------------------------------
// Rendering of the status and tables (the charts worker draws the charts)

/** Updates the status and tables at most this often while training. */
const RENDER_EVERY_MS = 250;
function markDirty(): void {
  if (dirty) return;
  dirty = true;
  const every = status === 'running' ? RENDER_EVERY_MS : 0;
  const wait = Math.max(0, lastRender + every - performance.now());
  setTimeout(() => requestAnimationFrame(() => {
    dirty = false;
    lastRender = performance.now();
    render();
    performance.measure('normlab:render', { start: lastRender });
  }), wait);
}

/** Clears the charts (the charts worker draws their placeholders) and the tables. */
function resetCharts(): void {
  summaryDrawn = '';
  toCharts({ type: 'reset' });
  markDirty();
}

/** Shows the charts that apply to the settings of the run on view (or the current settings). */
function layoutCharts(): void {
  const t = current();
  const names = t ? t.methods.map((m) => m.method) : state.methods.map((k) => methods.get(k)?.name ?? k);
  const sweep = t ? runsPlanned > 1 : state.sweep.length > 0;
  const probes = t ? hasProbes(t) : { landscape: state.probes === 'landscape' || state.probes === 'both', ics: state.probes === 'ics' || state.probes === 'both' };
  const hidden: Record<ChartId, boolean> = {
    sweep: !sweep,
    maps: !(t ? runHasMaps : gridFor() !== null),
    test: false,
    loss: false,
    'train-accuracy': false,
    activations: false,
    // Batch Renorm's r and d records.
    'renorm-r': !names.includes('batchrenorm'),
    'renorm-d': !names.includes('batchrenorm'),
    // The probes' charts: when the run (or the settings) has them.
    landscape: !probes.landscape,
    predictiveness: !probes.landscape,
    smoothness: !probes.landscape,
    'ics-l2': !probes.ics,
    'ics-cosine': !probes.ics,
  };
  for (const c of cards.values()) {
    if (c.section.hidden !== hidden[c.id]) {
      c.section.hidden = hidden[c.id];
      sendVisibility(c);
    }
  }
  const layers = t ? layerCount(t) : state.model === 'cnn' ? state.channels.length : state.depth;
  fillLayers(actLayer, layers, 'activations');
  fillLayers(renormLayer, layers, 'renorm');
  if (t) fillIcsLayers(t);
  if (t) {
    const w = smoothingWindow(t.steps);
    const average = `averaged over the last ${w} step${w > 1 ? 's' : ''}`;
    cards.get('loss')!.desc.textContent = `Cross-entropy on each step's batch in training mode, ${average}.`;
    cards.get('train-accuracy')!.desc.textContent = `Accuracy on each step's batch in training mode, ${average}.`;
    // The probes' extra cost, once the run's timing is in.
    const cost = probeCost(t);
    const landscape = cards.get('landscape')!;
    const base = DESCRIPTIONS.landscape[1];
    landscape.desc.textContent = cost && cost.length
      ? `${base} The probes cost ${cost.map((c) => `${c.ms.toFixed(1)} ms (${c.label})`).join(', ')} per evaluation; training between evaluations is unchanged. Paper: https://arxiv.org/abs/1805.11604`
      : `${base} Paper: https://arxiv.org/abs/1805.11604`;
  }
}

/** The ICS layer menu: the weight layers with records (the first has nothing below it). */
function fillIcsLayers(t: RunTrace): void {
  const layers = icsLayers(t);
  if (!layers.length || icsLayer.options.length === layers.length) return;
  const keep = Number(icsLayer.value) || layers[0].layer;
  icsLayer.replaceChildren(...layers.map((l) => new Option(`layer ${l.layer} (${l.kind.split('(')[0]})`, String(l.layer))));
  const chosen = layers.some((l) => l.layer === keep) ? keep : layers[0].layer;
  icsLayer.value = String(chosen);
  toCharts({ type: 'layer', which: 'ics', layer: chosen });
}

function fillLayers(select: HTMLSelectElement, count: number, which: 'activations' | 'renorm'): void {
  if (count < 1 || select.options.length === count) return;
  const keep = Number(select.value) || 0;
  select.replaceChildren(...Array.from({ length: count }, (_, i) => new Option(`hidden layer ${i + 1}`, String(i))));
  const layer = keep < count ? keep : 0;
  select.value = String(layer);
  toCharts({ type: 'layer', which, layer });
}

let summaryDrawn = '';

function render(): void {
  layoutCharts();
  renderStatus();
  const t = current();
  const g = t ? group(viewRun >= 0 ? viewRun : lastRun()) : [];
  const summaryKey = t ? `${gen}:${traces.indexOf(t)}:${g.filter((x) => x.result).length}:${t.methods.reduce((n, m) => n + m.evals.length, 0)}` : `${gen}:empty`;
  if (summaryKey !== summaryDrawn) {
    summaryDrawn = summaryKey;
    renderSummary();
  }
}

/** 6485 -> '6,485' (without Intl, whose first use is slow). */
function grouped(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function describe(t: RunTrace): string {
  const c = t.config;
  const model = c.model.kind === 'layers' ? `layers ${compactLayers(c.model.layers)}`
    : `${c.model.kind === 'mlp' ? `MLP ${c.model.hidden.join('-')}` : `CNN ${c.model.channels.join('-')}`} ${c.model.activation}`;
  const opt = c.optimizer.kind === 'sgd' && c.optimizer.momentum ? `SGD lr ${c.optimizer.lr} momentum ${c.optimizer.momentum}` : `${c.optimizer.kind} lr ${c.optimizer.lr}`;
  return `${c.dataset.name}, ${model}, batch ${c.batchSize} ${c.batching}, ${opt}, ${c.steps} steps, seed ${c.seed}`;
}

function renderStatus(): void {
  const t = current();
  const running = status === 'running';
  runButton.textContent = running ? 'Pause' : status === 'paused' ? 'Resume' : 'Run';
  runButton.setAttribute('aria-pressed', String(running));
  runButton.disabled = status === 'loading';
  stepButton.disabled = status === 'running' || status === 'loading';
  resetButton.disabled = status === 'idle' && !traces.some(Boolean);
  const progress = $<HTMLProgressElement>('progress');
  // Over every job (run x seed): the steps done of the steps planned.
  const total = jobSteps.reduce((a, b) => a + b, 0) || 1;
  const done = traces.reduce((a, x) => a + (x ? x.stepsDone : 0), 0);
  progress.value = status === 'done' ? 1 : done / total;
  const words: Record<string, string> = {
    idle: 'Ready', loading: 'Loading…', running: 'Training', paused: 'Paused', done: 'Finished', error: 'Stopped by an error',
  };
  let text = words[status];
  if (t) {
    const jobs = jobSteps.length;
    if (jobs > 1) {
      const finished = traces.filter((x) => x?.result).length;
      text += ` · ${grouped(done)} of ${grouped(total)} steps · ${finished} of ${jobs} runs done`;
      if (seedCount > 1) text += ` (${seedCount} seeds${runsPlanned > 1 ? ` × ${runsPlanned} batch sizes` : ''}, ${active.length} worker${active.length > 1 ? 's' : ''})`;
      else if (runsPlanned > 1) text += ` (batch sizes ${batchSizes.join(', ')})`;
    } else {
      text += ` · step ${grouped(t.stepsDone)} of ${grouped(t.steps)}`;
    }
    const ms = elapsedMs + (running ? performance.now() - startedAt : 0);
    if (ms > 0) text += ` · ${(ms / 1000).toFixed(1)} s`;
  }
  if (changedSinceRun && status !== 'running') text += ' · settings changed: Run starts over with them';
  $('status').textContent = text;
  $('status').dataset.status = status;
  $('run-description').textContent = t ? describe(t) + (seedCount > 1 ? ` (and ${seedCount - 1} more seed${seedCount > 2 ? 's' : ''})` : '') : '';
  const err = $('error');
  err.hidden = status !== 'error';
  err.textContent = status === 'error' ? `Could not train with these settings: ${error}` : '';
  // Which run to view (a sweep).
  const view = $<HTMLSelectElement>('view-run');
  $('view-run-field').hidden = runsPlanned <= 1 || !traces.some(Boolean);
  if (view.options.length !== runsPlanned + 1) {
    view.replaceChildren(new Option('the current run', '-1'), ...batchSizes.map((b, i) => new Option(`batch size ${b}`, String(i))));
    view.value = String(viewRun);
  }
}

const viewSelect = $<HTMLSelectElement>('view-run');
viewSelect.addEventListener('change', () => {
  viewRun = Number(viewSelect.value);
  toCharts({ type: 'view', run: viewRun });
  markDirty();
});

function tableOf(columns: string[], rows: Row[], caption: string): HTMLTableElement {
  const table = document.createElement('table');
  const cap = document.createElement('caption');
  cap.textContent = caption;
  const head = document.createElement('tr');
  for (const c of columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = c;
    head.append(th);
  }
  const thead = document.createElement('thead');
  thead.append(head);
  const tbody = document.createElement('tbody');
  for (const r of rows) {
    const tr = document.createElement('tr');
    tr.dataset.id = r.id;
    r.cells.forEach((cell, i) => {
      const td = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) (td as HTMLTableCellElement).scope = 'row';
      td.textContent = cell.text;
      if (cell.value !== undefined && cell.value !== null) td.dataset.value = String(cell.value);
      tr.append(td);
    });
    tbody.append(tr);
  }
  table.append(cap, thead, tbody);
  return table;
}

function renderSummary(): void {
  const t = current();
  const host = $('summary');
  if (!t) {
    host.replaceChildren();
    return;
  }
  const run = viewRun >= 0 ? viewRun : lastRun();
  const seedsDone = finishedGroups()[run];
  let caption: string;
  let table: { columns: string[]; rows: Row[] };
  if (seedCount > 1 && seedsDone) {
    // Every seed has finished: means with their 95% intervals, and the paired differences.
    const [result] = seedsResults([seedsDone.map((x) => x.result!)], seedsPlanned);
    table = seedSummaryTable(result);
    caption = `Final results over seeds ${seedsPlanned.join(', ')} (${t.config.dataset.name}, batch ${t.config.batchSize}): ` +
      `mean ± the half-width of its 95% interval over the seeds (not over test examples); the last column pairs each seed's runs.`;
  } else {
    table = summaryTable(t);
    caption = (t.result
      ? `Final results (${t.config.dataset.name}, batch ${t.config.batchSize}, step ${t.stepsDone}). Gap: batch-statistics minus inference accuracy.`
      : `Latest evaluation (step ${t.methods[0]?.evals.at(-1)?.step ?? 0}); training loss appears when the run ends.`) +
      (seedCount > 1 ? ` Seed ${t.config.seed}; the intervals over all ${seedCount} seeds appear when every seed has finished.` : '');
  }
  const { columns, rows } = table;
  const final = Boolean(t.result) && (seedCount === 1 || Boolean(seedsDone));
  const old = host.querySelector<HTMLTableElement>('#results-table');
  const same = old && old.tHead?.rows[0].cells.length === columns.length && old.tBodies[0].rows.length === rows.length &&
    rows.every((r, i) => old.tBodies[0].rows[i].dataset.id === r.id);
  if (old && same) {
    // Same shape: only the texts change (cheaper for the page's layout while training).
    old.caption!.textContent = caption;
    rows.forEach((r, i) => r.cells.forEach((cell, j) => {
      const td = old.tBodies[0].rows[i].cells[j];
      if (td.textContent !== cell.text) td.textContent = cell.text;
      if (cell.value !== undefined && cell.value !== null) td.dataset.value = String(cell.value);
      else delete td.dataset.value;
    }));
    old.dataset.final = String(final);
    return;
  }
  const element = tableOf(columns, rows, caption);
  element.id = 'results-table';
  element.dataset.final = String(final);
  host.replaceChildren(element);
}

function renderTables(): void {
  const results = finishedResults(traces);
  $<HTMLButtonElement>('export-json').disabled = results.length === 0;
  $<HTMLButtonElement>('export-csv').disabled = results.length === 0;
  const host = $('sweep-summary');
  if (runsPlanned > 1 && traces.some(Boolean)) {
    const groups = finishedGroups();
    const { columns, rows } = seedCount > 1
      ? seedSweepRows(groups.map((g) => (g ? seedsResults([g.map((x) => x.result!)], seedsPlanned)[0] : null)), batchSizes)
      : sweepRows(traces);
    const table = tableOf(columns, rows, 'Test accuracy (inference mode) against batch size');
    table.id = 'sweep-table';
    host.replaceChildren(table);
  } else {
    host.replaceChildren();
  }
  renderSummary();
}

/** What Download JSON writes: the CLI's --json (with several seeds, each setting's result over its seeds). */
function exportJson(): string {
  if (seedCount === 1) return resultsJson(finishedResults(traces));
  const done = finishedGroups().filter((g): g is RunTrace[] => g !== null);
  return resultsJson(seedsResults(done.map((g) => g.map((x) => x.result!)), seedsPlanned));
}
$('export-json').addEventListener('click', () => download(exportJson(), 'normlab-results.json', 'application/json'));
$('export-config').addEventListener('click', () => {
  let configs: ReturnType<typeof configsFromState>;
  try {
    configs = runConfigs();
  } catch (failure) {
    showNotices([`No config to download: ${failure instanceof Error ? failure.message : String(failure)}`]);
    return;
  }
  download(`${JSON.stringify(configs.length === 1 ? configs[0] : configs, null, 2)}\n`, 'normlab-config.json', 'application/json');
});
$('export-csv').addEventListener('click', () => download(resultsCsv(finishedResults(traces.filter(Boolean))), 'normlab-results.csv', 'text/csv'));

$('copy-link').addEventListener('click', async () => {
  const out = $<HTMLInputElement>('share-url');
  out.value = location.href;
  out.hidden = false;
  try {
    await navigator.clipboard.writeText(location.href);
    $('copy-status').textContent = 'Link copied.';
  } catch {
    out.select();
    $('copy-status').textContent = 'Copy the link from the box.';
  }
});

// A steady clock for the elapsed time while training.
setInterval(() => {
  if (status === 'running') renderStatus();
}, 500);

// On a phone the settings start folded, so the run controls and charts come first.
if (window.matchMedia('(max-width: 860px)').matches) $<HTMLDetailsElement>('settings-box').open = false;

writeHash();
showNotices(initial.notices);
userData.update(state);
// The last file of your data, kept by this browser (a link that names another file asks for that one).
void userData.restore(state.dataFile).then((name) => {
  if (name && state.dataset === USER_DATA) applyState({ ...state, dataFile: name });
  else userData.update(state);
});
renderPresetInfo();
layoutCharts();
resetCharts();
renderTables();
renderStatus();

/** The lines of a line chart for the run on view (over its seeds), as the charts worker draws them. */
const viewGroup = () => group(viewRun >= 0 ? viewRun : lastRun());
const LINE_CHARTS = {
  test: () => seedTestAccuracyChart(viewGroup()),
  loss: () => seedTrainChart(viewGroup(), 'loss'),
  'train-accuracy': () => seedTrainChart(viewGroup(), 'accuracy'),
  'renorm-r': () => renormChart(viewGroup()[0], 'r', 0),
  'renorm-d': () => renormChart(viewGroup()[0], 'd', 0),
  sweep: () => seedSweepChart(Array.from({ length: runsPlanned }, (_, r) => group(r))),
};

// For the browser tests and the curious: the runs on view and what their charts show (read-only use).
Object.defineProperty(globalThis, '__normlab', {
  value: Object.freeze({
    traces: () => traces,
    status: () => status,
    /** The data of a line chart (`test`, `loss`, ...) for the run on view; null before a run. */
    chart: (id: keyof typeof LINE_CHARTS) => {
      return current() && Object.hasOwn(LINE_CHARTS, id) ? LINE_CHARTS[id]() : null;
    },
    /** The seeds of the last start, and the training workers it runs on. */
    seeds: () => [...seedsPlanned],
    workers: () => active.length,
    /** The settings' URL keys and values as the page holds them. */
    settings: () => ({ ...state, options: { ...state.options } }),
    /** Shown charts not yet showing the latest data (0 once all are up to date). */
    stale: () => staleCharts,
  }),
});
