// Behaviour fingerprint of the built package: a SHA-256 of the CLI's --json result of every preset
// (every batch size of a sweep) for seeds 1-3, and of every layer's outputs, gradients and state
// over a sweep of configurations. Refactors must leave it bit-identical:
//   node tests/identity.mjs record [DIST]   writes tests/fixtures/identity.json from DIST (default dist/)
//   node tests/identity.mjs add    [DIST]   adds the runs of presets it lacks (a new preset), keeping the rest
//   node tests/identity.mjs check  [DIST]   compares against it; exit 1 naming what differs
// The fixture was recorded from the tree before the method table landed (see its "recordedFrom");
// tests/js/identity.test.ts checks it in `npm test`.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '..');
export const fixture = join(root, 'tests', 'fixtures', 'identity.json');

const sha = (text) => createHash('sha256').update(text).digest('hex');

/** Seeded inputs: a 32-bit LCG mapped to [-2, 2), reproducible across engines. */
function inputs(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 4 - 2;
  }
  return out;
}

/** The layer sweep: [method, options, input shape], for every method of the layer API. */
const layerCases = [
  ['batchnorm', { channels: 3 }, [4, 3, 2, 2]],
  ['batchnorm', { channels: 5, momentum: null, affine: false }, [6, 5]],
  ['batchnorm', { channels: 2, trackRunningStats: false, eps: 1e-3 }, [3, 2, 5]],
  ['batchrenorm', { channels: 3 }, [4, 3, 2, 2]],
  ['batchrenorm', { channels: 4, rMax: 1.5, dMax: 0.5, momentum: 0.3 }, [5, 4]],
  ['layernorm', { normalizedShape: [3, 2, 2] }, [4, 3, 2, 2]],
  ['layernorm', { normalizedShape: [6], affine: false }, [5, 6]],
  ['groupnorm', { channels: 4, groups: 2 }, [3, 4, 2, 2]],
  ['groupnorm', { channels: 6, groups: 6, eps: 1e-2 }, [2, 6, 3]],
  ['instancenorm', { channels: 3 }, [2, 3, 3, 3]],
  ['lrn', { size: 3 }, [2, 5, 2, 2]],
  ['lrn', { size: 2, alpha: 0.1, beta: 0.5, k: 2, alphaScaling: 'none' }, [2, 4, 3]],
  ['rmsnorm', { normalizedShape: [4] }, [3, 4]],
  ['rmsnorm', { normalizedShape: [2, 3], eps: 1e-4, affine: false }, [2, 2, 3]],
  ['frn', { channels: 3 }, [2, 3, 2, 2]],
  ['frn', { channels: 4, learnableEps: true }, [3, 4]],
  ['l1batchnorm', { channels: 3 }, [4, 3, 2, 2]],
  ['l1batchnorm', { channels: 2, scaleSqrtPiOver2: false, momentum: 0.5 }, [5, 2]],
  ['generalizedbatchnorm', { channels: 3 }, [4, 3, 2, 2]],
  ['generalizedbatchnorm', { channels: 2, deviation: 'mad' }, [7, 2]],
  ['generalizedbatchnorm', { channels: 2, center: 'quantile', level: 0.3 }, [6, 2, 2]],
  ['switchablenorm', { channels: 3 }, [4, 3, 2, 2]],
  ['switchablenorm', { channels: 4, useIN: false }, [5, 4]],
  ['switchablenorm', { channels: 2, useBN: false }, [3, 2, 3]],
  ['weightnorm', { inFeatures: 4, outFeatures: 3, seed: 2 }, [5, 4]],
  ['weightnorm', { inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, seed: 1 }, [2, 2, 4, 4]],
  ['cosinenorm', { inFeatures: 4, outFeatures: 3, seed: 3 }, [5, 4]],
  ['cosinenorm', { inChannels: 2, outChannels: 2, kernelSize: 2, stride: 2, centered: true }, [2, 2, 4, 4]],
];

function floats(hash, array) {
  if (ArrayBuffer.isView(array)) hash.update(Buffer.from(array.buffer, array.byteOffset, array.byteLength));
  else hash.update(JSON.stringify(array));
}

/** One layer case: two training steps (forward, backward), then an inference forward. */
function layerHash(nl, [method, options, shape], index) {
  const hash = createHash('sha256');
  const layer = nl.createLayer(method, options);
  try {
    hash.update(JSON.stringify(layer.options));
    const n = shape.reduce((a, b) => a * b, 1);
    for (let step = 0; step < 2; step++) {
      const y = layer.forward(inputs(n, 100 * index + step), shape, { training: true });
      floats(hash, y);
      floats(hash, layer.backward(inputs(y.length, 7 + 100 * index + step)));
      for (const [name, g] of Object.entries(layer.grads())) {
        hash.update(name);
        floats(hash, g);
      }
    }
    floats(hash, layer.forward(inputs(n, 99 + index), shape, { training: false }));
    for (const [name, v] of Object.entries(layer.getState?.() ?? {})) {
      hash.update(name);
      floats(hash, v);
    }
  } finally {
    layer.dispose();
  }
  return hash.digest('hex');
}

/** The hash of every layer case, keyed by its description. */
export function layerFingerprints(nl) {
  const layers = {};
  layerCases.forEach((c, i) => {
    layers[`${c[0]} ${JSON.stringify(c[1])} [${c[2]}]`] = layerHash(nl, c, i);
  });
  return layers;
}

/** The hash of what `normlab compare --preset NAME --seed SEED --json FILE` writes. */
export async function presetFingerprint(nl, presetConfigs, p, seed) {
  const configs = p.sweep ? presetConfigs(p) : [p.config];
  const results = [];
  for (const config of configs) results.push(await nl.compare({ ...structuredClone(config), seed }));
  return sha(`${JSON.stringify(results.length === 1 ? results[0] : { runs: results }, null, 1)}\n`);
}

export const SEEDS = [1, 2, 3];
export const runKey = (name, seed) => `${name} seed ${seed}`;

export async function fingerprint(dist = join(root, 'dist'), { log = () => {} } = {}) {
  const nl = await (await import(pathToFileURL(join(dist, 'index.js')).href)).load();
  const { presets, presetConfigs } = await import(pathToFileURL(join(dist, 'presets.js')).href);
  const layers = layerFingerprints(nl);
  const runs = {};
  for (const p of presets) {
    for (const seed of SEEDS) {
      const t0 = Date.now();
      runs[runKey(p.name, seed)] = await presetFingerprint(nl, presetConfigs, p, seed);
      log(`${runKey(p.name, seed)}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  return { layers, runs };
}

/** The keys whose hashes differ between two fingerprints (or are missing from either). */
export function differences(a, b) {
  const out = [];
  for (const part of ['layers', 'runs']) {
    const keys = new Set([...Object.keys(a[part]), ...Object.keys(b[part])]);
    for (const k of keys) if (a[part][k] !== b[part][k]) out.push(`${part}: ${k}`);
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [mode, dist] = process.argv.slice(2);
  const log = (line) => process.stderr.write(`${line}\n`);
  if (mode === 'record') {
    const print = await fingerprint(dist ? resolve(dist) : undefined, { log });
    writeFileSync(fixture, `${JSON.stringify({ recordedFrom: process.env.IDENTITY_FROM ?? 'dist', ...print }, null, 1)}\n`);
    log(`identity: wrote ${fixture}`);
  } else if (mode === 'add') {
    // A new preset: its runs are recorded from this tree, beside (never over) the recorded ones.
    const want = JSON.parse(readFileSync(fixture, 'utf8'));
    const nl = await (await import(pathToFileURL(join(dist ? resolve(dist) : join(root, 'dist'), 'index.js')).href)).load();
    const { presets, presetConfigs } = await import(pathToFileURL(join(dist ? resolve(dist) : join(root, 'dist'), 'presets.js')).href);
    want.addedFrom ??= {};
    for (const p of presets) {
      if (SEEDS.every((seed) => want.runs[runKey(p.name, seed)] !== undefined)) continue;
      for (const seed of SEEDS) want.runs[runKey(p.name, seed)] = await presetFingerprint(nl, presetConfigs, p, seed);
      want.addedFrom[p.name] = process.env.IDENTITY_FROM ?? 'dist';
      log(`identity: added ${p.name} (seeds ${SEEDS.join(', ')})`);
    }
    writeFileSync(fixture, `${JSON.stringify(want, null, 1)}\n`);
  } else if (mode === 'check') {
    const want = JSON.parse(readFileSync(fixture, 'utf8'));
    const got = await fingerprint(dist ? resolve(dist) : undefined, { log });
    const diff = differences(want, got);
    if (diff.length) {
      log(`identity: ${diff.length} differ from ${fixture}:\n  ${diff.join('\n  ')}`);
      process.exit(1);
    }
    log(`identity: ${Object.keys(got.layers).length} layer cases and ${Object.keys(got.runs).length} preset runs bit-identical`);
  } else {
    log('usage: node tests/identity.mjs record|add|check [DIST]');
    process.exit(2);
  }
}
