// Comparisons on every core of a Node machine: 'normlab/workers'. A comparison splits into arms
// (one method of one seed of one configuration); a pool of worker_threads, each with its own
// WebAssembly instance, trains them, and the arms merge back into exactly the results of the
// serial runs, for any number of workers: an arm depends only on its seed and configuration
// (seeds.ts). Node only (it imports node:worker_threads); browsers run the same arms in Web Workers.
import { availableParallelism, freemem } from 'node:os';
import { Worker } from 'node:worker_threads';
import { load } from './load.js';
import type { CompareConfig, CompareResult, MethodEntry } from './runner.js';
import { armConfig, mergeArms, seedConfig, seedsOf, seedsResult, type SeedsResult } from './seeds.js';

export interface WorkersOptions {
  /** Worker threads (default: the machine's available parallelism); 1 trains in this thread. */
  workers?: number;
  /**
   * After each chunk of any arm: the training steps done and to do, counted as the comparisons
   * count them (a step of a comparison trains every method once), and the arms done.
   */
  onProgress?: (progress: { steps: number; totalSteps: number; armsDone: number; arms: number }) => void;
  /** Stops every worker; the promise rejects with an AbortError. */
  signal?: AbortSignal;
}

/** What one worker thread costs besides its comparison's WebAssembly memory (Node's own heap, the module). */
const WORKER_OVERHEAD_BYTES = 48 * 2 ** 20;

/** One arm: a method of a seed of a configuration. */
interface Arm {
  config: CompareConfig;
  /** Which configuration, seed and method it is (indices). */
  point: number;
  seed: number;
  method: number;
  steps: number;
  /** 1 / the methods of its comparison: an arm's steps count this much of the comparison's. */
  share: number;
}

type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; arm: number; steps: number }
  | { type: 'done'; arm: number; result: CompareResult }
  | { type: 'error'; arm: number; message: string };

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** The worker count: an integer >= 1 (default: available parallelism). */
function workerCount(value: unknown): number {
  if (value === undefined) return availableParallelism();
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 256) {
    throw new Error(`workers must be an integer from 1 to 256, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Runs comparisons (each a single seed, or `seeds`) on `workers` threads and gives each one's
 * result: a `CompareResult`, or a `SeedsResult` for a configuration with `seeds`; identical to
 * `nl.compare` of each, one after another. Every configuration is checked first (a bad one
 * rejects before anything trains), and the memory of N workers is checked against the machine's
 * free memory. An arm that fails does not stop the others; once all have run, the promise rejects
 * with an Error naming each failed arm.
 */
export async function compareInWorkers(configs: readonly CompareConfig[], options: WorkersOptions = {}): Promise<(CompareResult | SeedsResult)[]> {
  if (!Array.isArray(configs) || configs.length === 0) throw new Error('compareInWorkers: give a non-empty array of configurations');
  const workers = workerCount(options.workers);
  const nl = await load();
  const seedLists = configs.map((c) => seedsOf(c));
  if (workers === 1) {
    const out: (CompareResult | SeedsResult)[] = [];
    const total = configs.reduce((s, c, i) => s + (seedLists[i]?.length ?? 1), 0);
    let done = 0;
    for (const c of configs) {
      out.push(await nl.compare(c, {
        signal: options.signal, chunk: 100,
        onProgress: (e) => options.onProgress?.({ steps: done * e.steps + e.step, totalSteps: total * e.steps, armsDone: done, arms: total }),
      }));
      done += seedLists[out.length - 1]?.length ?? 1;
    }
    return out;
  }

  // The threads start loading the module now, while the configurations are checked here.
  const threadUrl = new URL('./workers-thread.js', import.meta.url);
  const expected = Math.min(workers, configs.reduce((n, c, i) => n + (seedLists[i]?.length ?? 1) * (Array.isArray(c.methods) ? c.methods.length : 1), 0));
  const warm = Array.from({ length: expected }, () => {
    const w = { worker: new Worker(threadUrl), ready: false };
    w.worker.once('message', (m: FromWorker) => {
      if (m.type === 'ready') w.ready = true;
    });
    w.worker.on('error', () => {});
    return w;
  });
  const stopWarm = () => {
    for (const w of warm.splice(0)) void w.worker.terminate();
  };

  // Check each configuration and resolve its methods (ids and labels) in this thread: a bad one
  // rejects here, before any arm runs; the largest run's memory sizes the pool.
  const arms: Arm[] = [];
  let largest = 0;
  try {
  for (const [point, c] of configs.entries()) {
    const seeds: (number | undefined)[] = seedLists[point] ?? [undefined];
    const first = seeds[0] === undefined ? c : seedConfig(c, seeds[0]);
    const name = first.dataset && !('x' in first.dataset) && !('csv' in first.dataset) ? first.dataset.name : undefined;
    const bytes = name === 'digits' || name === 'mnist' ? await nl.loadDataset(name) : undefined;
    const before = nl.memory().usedBytes;
    const runner = nl.createRunner(first, bytes);
    largest = Math.max(largest, nl.memory().usedBytes - before);
    const entries = runner.config.methods as Required<MethodEntry>[];
    const steps = runner.config.steps;
    runner.dispose();
    for (const [s, seed] of seeds.entries()) {
      const one = seed === undefined ? { ...c } : seedConfig(c, seed);
      entries.forEach((entry, m) => arms.push({ config: armConfig(one, entry), point, seed: s, method: m, steps, share: 1 / entries.length }));
    }
  }
  } catch (error) {
    stopWarm();
    throw error;
  }
  const threads = Math.min(workers, arms.length);
  const need = threads * (largest + WORKER_OVERHEAD_BYTES);
  if (need > freemem()) {
    stopWarm();
    throw new Error(`${threads} workers need about ${mib(need)} (${mib(largest + WORKER_OVERHEAD_BYTES)} each) but the machine has ` +
      `${mib(freemem())} free: use fewer workers (--workers ${Math.max(1, Math.floor(freemem() / (largest + WORKER_OVERHEAD_BYTES)))})`);
  }

  const results: (CompareResult | undefined)[] = new Array(arms.length);
  const failures: string[] = [];
  const progress = new Array<number>(arms.length).fill(0);
  const totalSteps = Math.round(arms.reduce((s, a) => s + a.steps * a.share, 0));
  const stepsDone = () => Math.round(progress.reduce((s, p, i) => s + p * arms[i].share, 0));
  let armsDone = 0;
  let next = 0;
  const pool: Worker[] = [];
  const describeArm = (a: Arm) => {
    const c = configs[a.point];
    const seeds = seedLists[a.point];
    const method = (a.config.methods[0] as MethodEntry).id;
    return `${method}${seeds ? ` seed ${seeds[a.seed]}` : ''}${configs.length > 1 ? ` (configuration ${a.point + 1}, batch ${c.batchSize ?? 32})` : ''}`;
  };

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      for (const w of pool) void w.terminate();
      options.signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const onAbort = () => finish(options.signal!.reason instanceof Error ? options.signal!.reason : new DOMException('aborted', 'AbortError'));
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort);

    const start = () => {
      const pre = warm.shift();
      const worker = pre ? pre.worker : new Worker(threadUrl);
      let current = -1;
      const give = () => {
        if (next >= arms.length) {
          current = -1;
          void worker.terminate();
          if (armsDone === arms.length) finish();
          return;
        }
        current = next++;
        worker.postMessage({ arm: current, config: arms[current].config });
      };
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') return give();
        if (msg.type === 'progress') {
          progress[msg.arm] = msg.steps;
          options.onProgress?.({ steps: stepsDone(), totalSteps, armsDone, arms: arms.length });
          return;
        }
        if (msg.type === 'done') results[msg.arm] = msg.result;
        else failures.push(`${describeArm(arms[msg.arm])}: ${msg.message}`);
        progress[msg.arm] = arms[msg.arm].steps;
        armsDone += 1;
        options.onProgress?.({ steps: stepsDone(), totalSteps, armsDone, arms: arms.length });
        give();
      });
      // A thread that dies (not an arm's error, which it reports) loses its arm; a new one goes on.
      worker.on('error', (error) => {
        if (settled) return;
        if (current >= 0) {
          failures.push(`${describeArm(arms[current])}: the worker thread failed: ${error.message}`);
          armsDone += 1;
        }
        pool.splice(pool.indexOf(worker), 1);
        if (armsDone === arms.length) finish();
        else if (next < arms.length) start();
      });
      pool.push(worker);
      // A thread that loaded the module while the configurations were checked has said 'ready' already.
      if (pre?.ready) give();
    };
    for (let i = 0; i < threads; i++) start();
    stopWarm();  // any the arms do not need
  });

  if (failures.length) throw new Error(`${failures.length} of ${arms.length} arms failed:\n  ${failures.join('\n  ')}`);
  // Merge: per configuration, per seed, the arms in method order.
  return configs.map((c, point) => {
    const seeds = seedLists[point];
    const mine = arms.map((a, i) => ({ a, r: results[i]! })).filter(({ a }) => a.point === point);
    const runs = (seeds ?? [undefined]).map((_, s) => mergeArms(mine.filter(({ a }) => a.seed === s).sort((x, y) => x.a.method - y.a.method).map(({ r }) => r)));
    return seeds ? seedsResult(seeds, runs, c.baseline) : runs[0];
  });
}
