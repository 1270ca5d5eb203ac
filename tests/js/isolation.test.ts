// The package keeps to itself: worker_threads each get their own module with identical numbers,
// two loaded instances in one thread do not share state or memory accounting, and loading and
// using the package adds no global.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, test } from 'vitest';
import { RUNNER, compute } from '../shared/workload.js';
import { load, root, testValues, type Normlab } from './helpers.js';

interface Computed {
  y: number[];
  result: string;
  live: number;
}

function inThread(): Promise<Computed> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./thread.mjs', import.meta.url));
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`worker thread exited with ${code}`));
    });
  });
}

describe('worker_threads', () => {
  test('two threads and the main thread, concurrently, give bit-identical forward outputs and runner results', async () => {
    const [a, b, main] = (await Promise.all([inThread(), inThread(), compute(load)])) as Computed[];
    // Bit for bit: compare the float32 bit patterns, not only the values.
    const bits = (y: number[]) => Array.from(new Uint32Array(Float32Array.from(y).buffer));
    expect(bits(a.y)).toEqual(bits(main.y));
    expect(bits(b.y)).toEqual(bits(main.y));
    expect(a.result).toBe(main.result);
    expect(b.result).toBe(main.result);
    expect(JSON.parse(main.result).stepsDone).toBe(RUNNER.steps);
    expect([a.live, b.live, main.live]).toEqual([0, 0, 0]);
  });
});

describe('two instances in one thread', () => {
  const wasmBinary = readFileSync(join(root, 'dist', 'normlab_wasm.wasm'));
  const fresh = () => load({ wasmBinary });
  const shape = [8, 4, 3];
  const x = (k: number) => testValues(8 * 4 * 3, 100 + k, 2, 0.5);

  /** Three training forwards then an inference forward of a batchnorm (its running state moves). */
  function layerRun(nl: Normlab) {
    const layer = nl.createLayer('batchnorm', { channels: 4, momentum: 0.3 });
    const outputs = [0, 1, 2].map((k) => Array.from(layer.forward(x(k), shape, { training: true })));
    outputs.push(Array.from(layer.forward(x(3), shape)));
    const state = layer.getState();
    layer.dispose();
    return { outputs, runningMean: Array.from(state.runningMean), runningVar: Array.from(state.runningVar) };
  }

  test('load() without options shares one instance; with wasmBinary each call is a new one', async () => {
    expect(await load()).toBe(await load());
    const [a, b] = await Promise.all([fresh(), fresh()]);
    expect(a).not.toBe(b);
    using layer = a.createLayer('layernorm', { normalizedShape: [3] });
    expect(a.memory().liveLayers).toBe(1);
    expect(b.memory().liveLayers).toBe(0);
    expect(() => layer.forward(new Float32Array(6), [2, 3])).not.toThrow();
  });

  test('interleaved layers and runners on two instances give the single-instance results', async () => {
    // The reference: everything on one instance, one thing after the other.
    const single = await fresh();
    const refLayer = layerRun(single);
    const refRunner = single.createRunner(RUNNER);
    refRunner.step(RUNNER.steps);
    const refResult = JSON.stringify(refRunner.result());
    refRunner.dispose();

    const [A, B] = await Promise.all([fresh(), fresh()]);
    const la = A.createLayer('batchnorm', { channels: 4, momentum: 0.3 });
    const ra = A.createRunner(RUNNER);
    const lb = B.createLayer('batchnorm', { channels: 4, momentum: 0.3 });
    const rb = B.createRunner(RUNNER);
    const spare = [A.createLayer('groupnorm', { channels: 4, groups: 2 }), A.createLayer('layernorm', { normalizedShape: [3] })];
    // Each memory() counts only its own instance's objects.
    expect([A.memory().liveLayers, A.memory().liveRunners]).toEqual([3, 1]);
    expect([B.memory().liveLayers, B.memory().liveRunners]).toEqual([1, 1]);

    const outA: number[][] = [];
    const outB: number[][] = [];
    for (let k = 0; k < 3; k++) {
      outA.push(Array.from(la.forward(x(k), shape, { training: true })));
      rb.step(5);
      ra.step(3);
      outB.push(Array.from(lb.forward(x(k), shape, { training: true })));
      spare[0].forward(testValues(4 * 4, k, 5, 3), [4, 4], { training: true });  // another layer of A, other data
    }
    outB.push(Array.from(lb.forward(x(3), shape)));
    spare.forEach((l) => l.dispose());
    expect(A.memory().liveLayers).toBe(1);
    expect(B.memory().liveLayers).toBe(1);
    outA.push(Array.from(la.forward(x(3), shape)));
    while (!ra.done || !rb.done) {
      if (!rb.done) rb.step(7);
      if (!ra.done) ra.step(4);
    }
    const state = (l: typeof la) => {
      const s = l.getState();
      return { runningMean: Array.from(s.runningMean), runningVar: Array.from(s.runningVar) };
    };
    expect({ outputs: outA, ...state(la) }).toEqual(refLayer);
    expect({ outputs: outB, ...state(lb) }).toEqual(refLayer);
    expect(JSON.stringify(ra.result())).toBe(refResult);
    expect(JSON.stringify(rb.result())).toBe(refResult);

    // A's allocations and frees do not show in B's accounting.
    const bBefore = B.memory();
    const big = A.createLayer('layernorm', { normalizedShape: [4096] });
    big.forward(testValues(64 * 4096, 9), [64, 4096], { training: true });
    expect(A.memory().usedBytes).toBeGreaterThan(bBefore.usedBytes);
    expect(B.memory()).toEqual(bBefore);
    big.dispose();
    la.dispose();
    ra.dispose();
    expect([A.memory().liveLayers, A.memory().liveRunners]).toEqual([0, 0]);
    expect([B.memory().liveLayers, B.memory().liveRunners]).toEqual([1, 1]);
    // B still computes the same after A's objects are gone.
    expect(Array.from(lb.forward(x(3), shape))).toEqual(refLayer.outputs[3]);
    lb.dispose();
    rb.dispose();
    expect([B.memory().liveLayers, B.memory().liveRunners]).toEqual([0, 0]);
  });
});

describe('no globals', () => {
  test('loading and using the package in Node adds no property to globalThis', () => {
    // A fresh Node process: nothing but this script has run, so any new global is the package's.
    const script = `
      const before = Object.getOwnPropertyNames(globalThis);
      const { load } = await import(${JSON.stringify(join(root, 'dist', 'index.js'))});
      const { compute } = await import(${JSON.stringify(join(root, 'tests', 'shared', 'workload.js'))});
      const shared = await compute(load);
      const own = await compute(() => load({ wasmUrl: ${JSON.stringify(join(root, 'dist', 'normlab_wasm.wasm'))} }));
      if (shared.result !== own.result) throw new Error('two instances disagree');
      const after = Object.getOwnPropertyNames(globalThis);
      console.log(JSON.stringify(after.filter((name) => !before.includes(name))));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });
});
