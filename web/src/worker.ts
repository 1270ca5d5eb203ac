// The training worker: steps a Runner in chunks of about CHUNK_MS and posts each chunk's
// ProgressEvent, so the page stays responsive; between chunks it reads pause/step/reset messages.
// For 2-D sets it also posts each method's class probabilities on a grid (the decision maps).
import { load, type Normlab, type Runner } from 'normlab';
// The image sets' files: in the build only because they are imported here (the package names no data set).
import digitsUrl from 'normlab/data/digits.nlds?url';
import mnistUrl from 'normlab/data/mnist.nlds?url';
import { gridPoints } from './config.js';
import type { FromWorker, GridSpec, ToWorker, WorkerStatus } from './protocol.js';

const CHUNK_MS = 25;
/** At most one decision-map update per this many milliseconds (and one at the end of a run). */
const GRID_EVERY_MS = 600;
/** Training points drawn on each decision map. */
const MAP_POINTS = 300;

const post = (message: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(message, transfer);

let nl: Promise<Normlab> | null = null;
const datasets = new Map<string, Promise<Uint8Array>>();

interface Job {
  gen: number;
  runs: import('normlab').CompareConfig[];
  /** The page's number of each run (its messages carry it). */
  ids: number[];
  /** Which runs post decision maps. */
  maps: boolean[];
  run: number;
  runner: Runner | null;
  grid: GridSpec | null;
  gridPoints: Float32Array | null;
  lastGrid: number;
  status: WorkerStatus;
  msPerStep: number;
}
let job: Job | null = null;

function setStatus(j: Job, status: WorkerStatus): void {
  j.status = status;
  post({ type: 'status', gen: j.gen, status });
}

function fail(j: Job, error: unknown): void {
  post({ type: 'error', gen: j.gen, message: error instanceof Error ? error.message : String(error) });
  j.runner?.dispose();
  j.runner = null;
  if (job === j) job = null;
  setStatus(j, 'idle');
}

/** The file of a built-in image set (digits, MNIST); undefined for the others and for your data (in the config). */
async function dataFor(dataset: import('normlab').CompareConfig['dataset']): Promise<Uint8Array | undefined> {
  const name = dataset && !('csv' in dataset) && !('x' in dataset) ? dataset.name : undefined;
  if (name !== 'digits' && name !== 'mnist') return undefined;
  let bytes = datasets.get(name);
  if (!bytes) {
    bytes = (await nlInstance()).loadDataset(name, name === 'digits' ? digitsUrl : mnistUrl);
    datasets.set(name, bytes);
    bytes.catch(() => datasets.delete(name));
  }
  return bytes;
}

function nlInstance(): Promise<Normlab> {
  nl ??= load().catch((error: unknown) => {
    nl = null;
    throw error;
  });
  return nl;
}

async function startRun(j: Job): Promise<void> {
  const config = j.runs[j.run];
  const [instance, data] = await Promise.all([nlInstance(), dataFor(config.dataset)]);
  if (job !== j) return;
  j.runner = instance.createRunner(config, data);
  j.msPerStep = 1;
  const info = j.runner.dataInfo();
  // The training points for the decision maps (as the TensorFlow Playground shows them).
  const points = j.grid && j.maps[j.run] ? j.runner.samples('train', MAP_POINTS) : undefined;
  post({
    type: 'run-start', gen: j.gen, run: j.ids[j.run], runs: j.runs.length, config: j.runner.config, classes: info.classes, classNames: info.classNames,
    points: points && { x: points.x, labels: points.labels },
  });
  j.lastGrid = 0;
  if (j.grid && j.maps[j.run]) postGrid(j);
}

function postGrid(j: Job): void {
  const runner = j.runner;
  if (!runner || !j.grid || !j.maps[j.run]) return;
  j.gridPoints ??= gridPoints(j.grid, j.grid.n);
  const probs: Record<string, Float32Array> = {};
  for (const m of runner.config.methods) probs[m.id] = runner.predict(m.id, j.gridPoints);
  j.lastGrid = performance.now();
  const { n, xMin, xMax, yMin, yMax } = j.grid;
  post({ type: 'grid', gen: j.gen, run: j.ids[j.run], step: runner.stepsDone, n, extent: { xMin, xMax, yMin, yMax }, classes: runner.dataInfo().classes, probs },
    Object.values(probs).map((p) => p.buffer));
}

/** Runs `n` steps of the current run and posts them; finishes the run when it is done. */
async function advance(j: Job, n: number): Promise<void> {
  const runner = j.runner!;
  const t0 = performance.now();
  const event = runner.step(n);
  const ms = performance.now() - t0;
  j.msPerStep = 0.7 * j.msPerStep + 0.3 * (ms / n);
  post({ type: 'progress', gen: j.gen, run: j.ids[j.run], event });
  if (runner.done) {
    if (j.grid) postGrid(j);
    post({ type: 'run-done', gen: j.gen, run: j.ids[j.run], result: runner.result(), timing: runner.timing() });
    runner.dispose();
    j.runner = null;
    if (j.run + 1 < j.runs.length) {
      j.run += 1;
      await startRun(j);
    } else {
      setStatus(j, 'done');
    }
  } else if (j.grid && performance.now() - j.lastGrid > GRID_EVERY_MS) {
    postGrid(j);
  }
}

// A macrotask without setTimeout's clamping: lets messages in between chunks.
const channel = new MessageChannel();
let pending: (() => void) | null = null;
channel.port1.onmessage = () => {
  const next = pending;
  pending = null;
  next?.();
};
const yieldToMessages = () => new Promise<void>((resolve) => {
  pending = resolve;
  channel.port2.postMessage(null);
});

async function loop(j: Job): Promise<void> {
  while (job === j && j.status === 'running' && j.runner) {
    const n = Math.max(1, Math.min(2000, Math.floor(CHUNK_MS / Math.max(j.msPerStep, 1e-3))));
    try {
      await advance(j, n);
    } catch (error) {
      fail(j, error);
      return;
    }
    await yieldToMessages();
  }
}

let looping = false;
async function ensureLoop(j: Job): Promise<void> {
  if (looping) return;
  looping = true;
  try {
    await loop(j);
  } finally {
    looping = false;
  }
  // A resume that came while the old loop was finishing.
  if (job && job.status === 'running' && job.runner) void ensureLoop(job);
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  switch (msg.type) {
    case 'start': {
      job?.runner?.dispose();
      const j: Job = {
        gen: msg.gen, runs: msg.runs, ids: msg.ids, maps: msg.maps, run: 0, runner: null, grid: msg.grid, gridPoints: null,
        lastGrid: 0, status: 'loading', msPerStep: 1,
      };
      job = j;
      setStatus(j, 'loading');
      try {
        await startRun(j);
      } catch (error) {
        if (job === j) fail(j, error);
        return;
      }
      if (job !== j) return;
      setStatus(j, msg.paused ? 'paused' : 'running');
      void ensureLoop(j);
      break;
    }
    case 'pause':
      if (job?.status === 'running') setStatus(job, 'paused');
      break;
    case 'resume':
      if (job?.status === 'paused') {
        setStatus(job, 'running');
        void ensureLoop(job);
      }
      break;
    case 'step':
      if (job?.status === 'paused' && job.runner) {
        const j = job;
        try {
          await advance(j, Math.max(1, Math.floor(msg.steps)));
          if (j.grid && j.runner) postGrid(j);
        } catch (error) {
          fail(j, error);
        }
      }
      break;
    case 'reset':
      if (job) {
        const j = job;
        j.runner?.dispose();
        j.runner = null;
        job = null;
        setStatus(j, 'idle');
      }
      break;
  }
};

// Load the WebAssembly module right away, so the first run starts without waiting for it, and hand
// the page the method table its settings, controls and charts are built from.
nlInstance().then(
  (instance) => post({ type: 'methods', gen: 0, table: instance.describeMethods() }),
  (error: unknown) => post({ type: 'error', gen: 0, message: error instanceof Error ? error.message : String(error) }),
);
