// The five normalization layers on one batch: which statistics each one makes zero-mean and
// unit-variance, and how far its inference output is from its training output after one step.
// Run with `npm start` (or `node examples/compare-layers.mjs` after `npm run build`).
import { load } from 'normlab';

const [N, C, H, W] = [8, 6, 4, 4];
const S = H * W;
const shape = [N, C, H, W];

// A batch with structure on every axis: channel c has its own offset and scale, sample n its own
// brightness, plus noise from a fixed-seed generator (so the demo prints the same table each run).
let seed = 12345;
const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const x = new Float32Array(N * C * S);
for (let n = 0; n < N; n++) {
  for (let c = 0; c < C; c++) {
    for (let s = 0; s < S; s++) x[(n * C + c) * S + s] = 3 * c - 5 + (1 + c) * noise() + 0.8 * n;
  }
}

/** Largest |mean| and largest |std - 1| over the groups that `key(n, c)` defines. */
function spread(y, key) {
  const groups = new Map();
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = key(n, c);
      const g = groups.get(k) ?? [];
      for (let s = 0; s < S; s++) g.push(y[(n * C + c) * S + s]);
      groups.set(k, g);
    }
  }
  let worstMean = 0;
  let worstStd = 0;
  for (const g of groups.values()) {
    const mean = g.reduce((a, v) => a + v, 0) / g.length;
    const std = Math.sqrt(g.reduce((a, v) => a + (v - mean) ** 2, 0) / g.length);
    worstMean = Math.max(worstMean, Math.abs(mean));
    worstStd = Math.max(worstStd, Math.abs(std - 1));
  }
  return `${worstMean.toFixed(3)} / ${worstStd.toFixed(3)}`;
}

const nl = await load();
const layers = [
  ['batchnorm', { channels: C }, 'per channel over (N,H,W)'],
  ['batchrenorm', { channels: C }, 'per channel, corrected by r, d'],
  ['layernorm', { normalizedShape: [C, H, W] }, 'per sample over (C,H,W)'],
  ['groupnorm', { channels: C, groups: 3 }, 'per sample over groups of 2 ch'],
  ['instancenorm', { channels: C }, 'per sample and channel over (H,W)'],
];

console.log(`normlab: five normalization layers on one batch x of shape [${shape}]`);
console.log('(each cell: largest |mean| / largest |std - 1| of the output y over those groups;');
console.log(' 0.000 / 0.000 means the method normalizes exactly those statistics)\n');
const header = ['method', 'normalizes', 'per channel', 'per sample', 'per sample+ch', 'train vs infer'];
const rows = [header];
for (const [method, options, axes] of layers) {
  const layer = nl.createLayer(method, options);
  const yTrain = layer.forward(x, shape, { training: true });
  const yInfer = layer.forward(x, shape, { training: false });
  let gap = 0;
  for (let i = 0; i < x.length; i++) gap = Math.max(gap, Math.abs(yTrain[i] - yInfer[i]));
  rows.push([
    method,
    axes,
    spread(yTrain, (_n, c) => c),
    spread(yTrain, (n) => n),
    spread(yTrain, (n, c) => n * C + c),
    gap.toFixed(3),
  ]);
  layer.dispose();
}
const widths = header.map((_, j) => Math.max(...rows.map((r) => r[j].length)));
for (const [i, r] of rows.entries()) {
  console.log(r.map((cell, j) => cell.padEnd(widths[j])).join('  '));
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
console.log(`
"train vs infer": the largest difference between the training-mode output (batch statistics) and
the inference-mode output after that one step. BatchNorm's running statistics start at mean 0,
variance 1 and move by momentum 0.1 per step, so after one step they are far from this batch's:
the train/inference gap that Batch Renormalization was designed to close (its r and d here are
clipped to rMax 3, dMax 5 while its moving averages catch up). LayerNorm, GroupNorm and
InstanceNorm use no running statistics, so training and inference agree exactly.`);
console.log(`\nlive layers after dispose: ${nl.memory().liveLayers}`);
