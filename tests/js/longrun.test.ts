// 100,000 training steps of a runner with a flat WebAssembly heap: after a warm-up, the bytes in
// use grow only by what the result keeps by design, and nothing else is left behind.
//
// What a runner keeps by design (cpp/normlab/run/runner.cpp): per method, every step's training loss
// and accuracy (two float32 per step, in std::vectors whose capacity doubles: the next power of
// two of the step count) and one record per evaluation. Events are taken out chunk by chunk
// (`step()` returns them and the runner keeps no copy). So:
//  - from step 66,000 to 100,000 (past the history's last doubling, at 65,536 steps) the bytes in
//    use may grow only by the evaluation records, well under 64 KiB (evalInterval 25,000: two
//    records per method, about 0.7 KiB each);
//  - from step 1,000 to 100,000 by at most the history's growth (2 x 4 bytes x (131,072 - 1,024)
//    per method) plus those 64 KiB.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import type { CompareConfig } from '../../dist/index.js';
import { load, root } from './helpers.js';

const STEPS = 100_000;
const CHUNK = 1_000;
const SLACK = 64 * 1024;
const config: CompareConfig = {
  dataset: { name: 'moons', noise: 0.1, trainSize: 256, testSize: 64 },
  model: { kind: 'mlp', hidden: [8] },
  methods: ['bn', 'brn', 'ln', { method: 'gn', options: { groups: 2 } }],
  batchSize: 8,
  optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
  steps: STEPS,
  evalInterval: 25_000,
  seed: 4,
};
const methods = config.methods.length;
/** Capacity of the per-step history after `steps` steps: the next power of two (libc++ doubles). */
const capacity = (steps: number) => 2 ** Math.ceil(Math.log2(steps));

test(`a runner of 4 methods for ${STEPS.toLocaleString('en')} steps keeps the heap flat`, async () => {
  // A fresh instance: its memory() is this test's alone.
  const nl = await load({ wasmBinary: readFileSync(join(root, 'dist', 'normlab_wasm.wasm')) });
  // A short run first: whatever the module allocates once, on first use, is then in `idle`.
  for (let i = 0; i < 2; i++) {
    using warm = nl.createRunner({ ...config, steps: 10 });
    warm.step(10);
  }
  const idle = nl.memory().usedBytes;

  const t0 = performance.now();
  const runner = nl.createRunner(config);
  const used: Record<number, number> = {};
  const heap: Record<number, number> = {};
  let records = 0;
  while (!runner.done) {
    const event = runner.step(CHUNK);
    for (const m of Object.values(event.methods)) {
      expect(m.train.length).toBe(CHUNK);  // each chunk's records once, none kept back or repeated
      records += m.train.length;
    }
    const memory = nl.memory();
    used[runner.stepsDone] = memory.usedBytes;
    heap[runner.stepsDone] = memory.heapBytes;
  }
  const seconds = (performance.now() - t0) / 1000;
  expect(records).toBe(STEPS * methods);

  const history = methods * 2 * 4 * (capacity(STEPS) - capacity(CHUNK));
  const late = used[STEPS] - used[66_000];
  const whole = used[STEPS] - used[CHUNK];
  console.log(`${STEPS} steps x ${methods} methods in ${seconds.toFixed(1)} s; used bytes: ${used[CHUNK]} after the warm-up, ` +
    `${used[66_000]} at step 66,000, ${used[STEPS]} at the end (growth ${late} B from step 66,000; ${whole} B from step 1,000, ` +
    `of which ${history} B is the per-step history); heap ${heap[CHUNK]} -> ${heap[STEPS]} B`);
  expect(late).toBeGreaterThanOrEqual(0);
  expect(late).toBeLessThan(SLACK);
  expect(whole).toBeLessThan(history + SLACK);
  expect(heap[STEPS]).toBe(heap[66_000]);

  const result = runner.result();
  expect(result.stepsDone).toBe(STEPS);
  for (const m of result.methods) {
    expect(m.train.loss.length).toBe(STEPS);
    expect(m.eval.map((e) => e.step)).toEqual([25_000, 50_000, 75_000, 100_000]);
    expect(m.diverged).toBeNull();
    expect(m.final!.testAccuracy, m.label).toBeGreaterThan(0.9);
  }
  runner.dispose();
  // Disposed, the runner leaves nothing behind.
  expect(nl.memory().liveRunners).toBe(0);
  expect(nl.memory().usedBytes).toBe(idle);
}, 120_000);
