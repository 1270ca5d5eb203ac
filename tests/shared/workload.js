// One workload, computed wherever the package runs: the strict-CSP page and its Web Worker
// (tests/browser/csp.test.mjs serves this file beside the page), Node worker_threads and two
// instances in one process (tests/js/isolation.test.ts). Each compares with the others.

/** A BatchNorm layer over [N, C, L] = [4, 3, 5]. */
export const LAYER = { method: 'batchnorm', options: { channels: 3 }, shape: [4, 3, 5] };

/** Deterministic input of LAYER.shape: exact in float32 whatever the engine. */
export function input() {
  const x = new Float32Array(LAYER.shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = ((i * 37) % 101) / 16 - 3 + (i % 3);
  return x;
}

/** A short comparison on a 2-D set. */
export const RUNNER = {
  dataset: { name: 'moons', noise: 0.1, trainSize: 200, testSize: 100 },
  model: { kind: 'mlp', hidden: [8, 8] },
  methods: ['bn', 'ln'],
  batchSize: 8,
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  steps: 40,
  evalInterval: 20,
  seed: 3,
};

/** Loads the package, runs LAYER forward (training mode) on input() and the RUNNER to its end. */
export async function compute(load) {
  const nl = await load();
  const layer = nl.createLayer(LAYER.method, LAYER.options);
  const y = layer.forward(input(), LAYER.shape, { training: true });
  layer.dispose();
  const runner = nl.createRunner(RUNNER);
  while (!runner.done) runner.step(10);
  const result = runner.result();
  runner.dispose();
  const memory = nl.memory();
  return { y: Array.from(y), result: JSON.stringify(result), live: memory.liveLayers + memory.liveRunners };
}
