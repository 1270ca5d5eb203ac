// `npm run bench`: how fast normlab's training core is, against TensorFlow.js 4.22 in the same Node
// process and against our own native build. Not part of `npm test`: it prints a table and asserts
// nothing (timings depend on the machine and its load; only ratios measured in one run mean much).
//
//   node scripts/bench.mjs [--quick] [--no-build] [--cases mlp-b32,bn-fb,...]
//
// Implementations, on the same models, batch sizes and tensor shapes:
//   ours WASM     the training core in WebAssembly (bench/bench_wasm.cpp: the cases of
//                 bench/bench_core.cpp behind Embind, built with the package's compile flags), one
//                 JS call per step. The runner rows step a comparison Runner (one method, bn) on
//                 MNIST: the core plus the runner's batch gathering and per-step records.
//   ours native   the same cases compiled natively (bench/bench_native.cpp, Release), run as a
//                 separate process that prints JSON
//   package       for the runner rows also `nl.createRunner(config, mnist).step(1)` through the
//                 package in dist/ as last built (`npm run build`; the bench does not rebuild it)
//   tfjs-wasm     @tensorflow/tfjs-backend-wasm with SIMD (single thread, as Node has no
//                 cross-origin isolation), .wasm files loaded from node_modules
//   tfjs-cpu      @tensorflow/tfjs-backend-cpu (plain JS kernels)
// The tfjs models are written with tf ops (NHWC, as tfjs wants) and trained with
// tf.train.momentum(0.01, 0.9).minimize(), reading the loss with dataSync() to end each step.
// tfjs-wasm has no Conv2DBackpropFilter kernel: this script registers one that runs the backend's
// own Conv3DBackpropFilterV2 kernel on the tensors viewed with a depth of 1.
//
// Timing (bench_native.cpp does the same): per implementation and case, warm up for >= 200 ms and 3
// steps, choose k steps per sample so that a sample takes >= 10 ms, then take 15 samples (7 with
// --quick). Samples of the implementations compared in the same process are interleaved round by
// round, so a change in the machine's load hits them alike. Reported: the median ms per step.
//
// The CNN cases also report their FLOPs per step (2 per multiply-add of the convolutions and the
// dense layer: forward, weight gradient and input gradient, the first layer's input gradient left
// out as nobody computes it) and the rate each implementation reaches, against a WebAssembly SIMD
// limit of 24 GFLOP/s (4-float multiply and add, no fused multiply-add, on one core).
//
// The scaling row (case id `workers`): one comparison over seeds, the non-i.i.d. preset's 4 methods
// x 4 seeds (16 arms) at its 4000 steps, run by compareInWorkers (normlab/workers, dist/) on 1 worker
// (in-process) and on N = os.availableParallelism() worker threads, alternately, 3 times each (1
// with --quick). Reported: the median wall time of each, the speed-up (goal: >= 0.85 x N on N
// otherwise idle cores), whether the two results are byte-identical JSON, and the 1-minute load
// average before the row (other work on the machine takes cores from the workers).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { root, run } from './lib.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const noBuild = args.includes('--no-build');
const onlyArg = args.indexOf('--cases');
const only = onlyArg >= 0 ? args[onlyArg + 1].split(',') : null;
const SAMPLES = quick ? 7 : 15;
const jobs = '2';

// FLOPs of a training step of the CNN (conv3x3 'same' + 2x2 max-pool per entry of `channels`, then
// dense to 10 classes) on 28x28x1 inputs: 2 per multiply-add of the convolutions and the dense
// layer, for the forward, the weight gradient and the input gradient (not for the first layer,
// whose input gradient is never computed). Normalization, ReLU, pooling, the loss and the
// optimizer (about a tenth more, all element-wise) are not counted.
function cnnStepFlops(batch, channels) {
  let flops = 0;
  let inputs = 1;
  let size = 28;
  for (const [i, outputs] of channels.entries()) {
    flops += (i === 0 ? 2 : 3) * 2 * batch * outputs * size * size * inputs * 9;
    inputs = outputs;
    size /= 2;
  }
  return flops + 3 * 2 * batch * inputs * size * size * 10;
}

const CASES = [
  { id: 'mlp-b32', label: 'MLP 784-256-256-10 step, batch 32', kind: 'mlp', batch: 32, hidden: [256, 256], inputs: 784 },
  { id: 'mlp-b4', label: 'MLP 784-256-256-10 step, batch 4', kind: 'mlp', batch: 4, hidden: [256, 256], inputs: 784 },
  { id: 'cnn-b32', label: 'CNN conv8-conv16-dense10 step, batch 32', kind: 'cnn', batch: 32, flops: cnnStepFlops(32, [8, 16]) },
  { id: 'bn-fb', label: 'BatchNorm fwd+bwd [32,16,28,28]', kind: 'bn' },
  { id: 'ln-fb', label: 'LayerNorm fwd+bwd [32,16,28,28]', kind: 'ln' },
  { id: 'tiny-b2', label: 'MLP 64-128-128-10 step, batch 2', kind: 'mlp', batch: 2, hidden: [128, 128], inputs: 64 },
  { id: 'runner-mlp-b32', label: 'Runner step, MLP, batch 32', kind: 'runner', model: { kind: 'mlp', hidden: [256, 256] } },
  { id: 'runner-cnn-b32', label: 'Runner step, CNN, batch 32', kind: 'runner', model: { kind: 'cnn', channels: [8, 16] }, flops: cnnStepFlops(32, [8, 16]) },
].filter((c) => !only || only.includes(c.id));
const SCALING = !only || only.includes('workers');

// The WebAssembly SIMD limit the FLOP rates are read against (GFLOP/s, one core).
const SIMD_LIMIT_GFLOPS = 24;

const LR = 0.01;
const MOMENTUM = 0.9;
const EPS = 1e-5;

// ---- builds ------------------------------------------------------------------------------------

async function buildBench() {
  const native = join(root, 'build', 'bench-native');
  const wasm = join(root, 'build', 'bench-wasm');
  if (!noBuild) {
    console.log('bench: building the native bench and the WASM bench module ...');
    await run('cmake', ['-S', root, '-B', native, '-DCMAKE_BUILD_TYPE=Release', '-DNORMLAB_BENCH=ON',
      '-DNORMLAB_TESTS=OFF'], { quiet: true });
    await run('cmake', ['--build', native, '-j', jobs, '--target', 'normlab_bench'], { quiet: true });
    await run('emcmake', ['cmake', '-S', root, '-B', wasm, '-DCMAKE_BUILD_TYPE=Release', '-DNORMLAB_BENCH=ON',
      `-DNORMLAB_WASM_OUT=${join(wasm, 'dist')}`], { quiet: true });
    await run('cmake', ['--build', wasm, '-j', jobs, '--target', 'normlab_bench_wasm'], { quiet: true });
    // The package (for MNIST and the runner rows through dist/): built only when missing.
    if (!existsSync(join(root, 'dist', 'index.js')) || !existsSync(join(root, 'dist', 'data', 'mnist.nlds'))) {
      console.log('bench: building the package (dist/) ...');
      const { buildJs, buildWasm } = await import('./build.mjs');
      await buildWasm();
      await buildJs();
    }
  }
  return { nativeExe: join(native, 'bench', 'normlab_bench'), wasmDir: join(wasm, 'bench') };
}

// ---- timing ------------------------------------------------------------------------------------

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Warms each step function up and picks its steps per sample; then takes SAMPLES rounds, one sample
// of each implementation per round. impls: { name: step | { step, enter } }, where enter() (untimed)
// runs before each implementation's warm-up and samples (tfjs: select its backend).
// Returns { name: { ms, min, k } }.
function measure(impls) {
  const state = {};
  for (const [name, impl] of Object.entries(impls)) {
    const { step, enter = () => {} } = typeof impl === 'function' ? { step: impl } : impl;
    enter();
    const t0 = performance.now();
    let n = 0;
    for (; n < 3 || performance.now() - t0 < 200; ++n) step();
    const per = (performance.now() - t0) / n;
    state[name] = { step, enter, k: Math.max(1, Math.ceil(10 / per)), t: [] };
  }
  for (let round = 0; round < SAMPLES; ++round) {
    for (const s of Object.values(state)) {
      s.enter();
      const t0 = performance.now();
      for (let i = 0; i < s.k; ++i) s.step();
      s.t.push((performance.now() - t0) / s.k);
    }
  }
  return Object.fromEntries(Object.entries(state).map(([name, s]) => [name, { ms: median(s.t), min: Math.min(...s.t), k: s.k }]));
}

// ---- a deterministic generator for the tfjs inputs ---------------------------------------------

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function uniform(n, rand, lo, hi) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) out[i] = lo + (hi - lo) * rand();
  return out;
}

function normal(n, rand, mean = 0, std = 1) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    const u = Math.max(rand(), 1e-12);
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

// ---- TensorFlow.js -----------------------------------------------------------------------------

// tfjs-core's Node bundle has no gradients: @tensorflow/tfjs registers them by importing
// tfjs-core/dist/register_all_gradients.js, an ES module tree with extensionless imports that Node
// cannot resolve by itself. This resolve hook adds the extensions; the gradients register in the
// registry that every copy of tfjs-core shares (a global), and the engine is shared the same way.
const tfGradientsHook = `
const DIST = '/@tensorflow/tfjs-core/dist/';
const esm = (url) => url.includes(DIST) && !url.endsWith('/tf-core.node.js');
export async function resolve(specifier, context, next) {
  if (context.parentURL && esm(context.parentURL) && specifier.startsWith('.') && !specifier.endsWith('.js')) {
    let r;
    try { r = await next(specifier + '.js', context); } catch { r = await next(specifier + '/index.js', context); }
    return { ...r, format: 'module' };
  }
  const r = await next(specifier, context);
  return esm(r.url) ? { ...r, format: 'module' } : r;
}`;

async function loadTf() {
  register(`data:text/javascript,${encodeURIComponent(tfGradientsHook)}`);
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  tf.enableProdMode();  // what a deployment would use: no debug checks, no console hints
  await import('@tensorflow/tfjs-backend-cpu');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  const dist = join(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'), '..', 'dist') + '/';
  wasm.setWasmPaths({
    'tfjs-backend-wasm.wasm': dist + 'tfjs-backend-wasm.wasm',
    'tfjs-backend-wasm-simd.wasm': dist + 'tfjs-backend-wasm-simd.wasm',
    'tfjs-backend-wasm-threaded-simd.wasm': dist + 'tfjs-backend-wasm-threaded-simd.wasm',
  });
  if (!(await tf.setBackend('wasm'))) throw new Error('bench: the tfjs wasm backend did not initialise');
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  // Conv2DBackpropFilter for the wasm backend: Conv3DBackpropFilterV2 on [N,1,H,W,C] views.
  const conv3dFilter = tf.getKernel('Conv3DBackpropFilterV2', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs: { x, dy }, backend, attrs }) => {
      const { strides, pad, dataFormat, dilations, filterShape } = attrs;
      if (dataFormat !== 'NHWC' || (typeof pad !== 'string' && typeof pad !== 'number')) {
        throw new Error('bench: Conv2DBackpropFilter (wasm) supports NHWC and same/valid/number padding only');
      }
      const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
      const view = (t) => ({ dataId: t.dataId, dtype: t.dtype, shape: [t.shape[0], 1, ...t.shape.slice(1)] });
      const dw = conv3dFilter.kernelFunc({
        inputs: { x: view(x), dy: view(dy) },
        backend,
        attrs: { strides: [1, sh, sw], pad, dilations: dilations ?? 1, filterShape: [1, ...filterShape] },
      });
      return { dataId: dw.dataId, dtype: dw.dtype, shape: filterShape };
    },
  });
  return { tf, simd, threads };
}

// Checks the registered kernel against tfjs-cpu's on the CNN's second convolution.
function checkConvFilterKernel(tf) {
  const rand = lcg(5);
  const x = uniform(2 * 14 * 14 * 8, rand, -1, 1);
  const dy = uniform(2 * 14 * 14 * 16, rand, -1, 1);
  const grad = (backend) => {
    tf.setBackend(backend);
    const dyT = tf.tensor4d(dy, [2, 14, 14, 16]);
    const xT = tf.tensor4d(x, [2, 14, 14, 8]);
    const w0 = tf.zeros([3, 3, 8, 16]);
    const g = tf.grad((w) => tf.sum(tf.mul(tf.conv2d(xT, w, 1, 'same'), dyT)))(w0);
    const out = g.dataSync();
    tf.dispose([dyT, xT, w0, g]);
    return out;
  };
  const a = grad('cpu');
  const b = grad('wasm');
  let err = 0;
  for (let i = 0; i < a.length; ++i) err = Math.max(err, Math.abs(a[i] - b[i]) / (1 + Math.abs(a[i])));
  if (!(err < 1e-4)) throw new Error(`bench: the registered Conv2DBackpropFilter differs from tfjs-cpu's (max rel. err ${err})`);
  return err;
}

// A model's training step in tfjs: the same layers as bench_core.cpp, BatchNorm with batch
// statistics and running averages (momentum 0.1), softmax cross-entropy, SGD momentum 0.9.
function tfTrainStep(tf, c) {
  const rand = lcg(1234);
  const variables = [];
  const v = (shape, fanIn) => {
    const bound = 1 / Math.sqrt(fanIn);
    const t = tf.variable(tf.tensor(uniform(shape.reduce((a, b) => a * b, 1), rand, -bound, bound), shape));
    variables.push(t);
    return t;
  };
  const bn = (channels) => ({
    gamma: tf.variable(tf.ones([channels])),
    beta: tf.variable(tf.zeros([channels])),
    runningMean: tf.variable(tf.zeros([channels]), false),
    runningVar: tf.variable(tf.ones([channels]), false),
  });
  const bnVars = (p) => [p.gamma, p.beta, p.runningMean, p.runningVar];
  const norm = (h, p, axes) => {
    const { mean, variance } = tf.moments(h, axes);
    const m = h.size / h.shape[h.shape.length - 1];
    p.runningMean.assign(tf.add(tf.mul(p.runningMean, 0.9), tf.mul(mean, 0.1)));
    p.runningVar.assign(tf.add(tf.mul(p.runningVar, 0.9), tf.mul(variance, 0.1 * m / (m - 1))));
    return tf.batchNorm(h, mean, variance, p.beta, p.gamma, EPS);
  };
  const layers = [];
  let x;
  let forward;
  if (c.kind === 'mlp') {
    let width = c.inputs;
    for (const h of c.hidden) {
      layers.push({ w: v([width, h], width), b: v([h], width), bn: bn(h) });
      width = h;
    }
    const out = { w: v([width, 10], width), b: v([10], width) };
    x = tf.tensor2d(uniform(c.batch * c.inputs, rand, 0, 1), [c.batch, c.inputs]);
    forward = () => {
      let h = x;
      for (const l of layers) h = tf.relu(norm(tf.add(tf.matMul(h, l.w), l.b), l.bn, [0]));
      return tf.add(tf.matMul(h, out.w), out.b);
    };
  } else {
    let ch = 1;
    for (const co of [8, 16]) {
      layers.push({ w: v([3, 3, ch, co], ch * 9), b: v([co], ch * 9), bn: bn(co) });
      ch = co;
    }
    const out = { w: v([7 * 7 * 16, 10], 7 * 7 * 16), b: v([10], 7 * 7 * 16) };
    x = tf.tensor4d(uniform(c.batch * 28 * 28, rand, 0, 1), [c.batch, 28, 28, 1]);
    forward = () => {
      let h = x;
      for (const l of layers) {
        h = tf.add(tf.conv2d(h, l.w, 1, 'same'), l.b);
        h = tf.maxPool(tf.relu(norm(h, l.bn, [0, 1, 2])), 2, 2, 'valid');
      }
      return tf.add(tf.matMul(tf.reshape(h, [c.batch, 7 * 7 * 16]), out.w), out.b);
    };
  }
  const trainable = [...variables, ...layers.flatMap((l) => [l.bn.gamma, l.bn.beta])];
  const labels = Array.from({ length: c.batch }, () => Math.floor(rand() * 10));
  const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
  const optimizer = tf.train.momentum(LR, MOMENTUM);
  const step = () => {
    const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(onehot, forward()), true, trainable);
    loss.dataSync();
    loss.dispose();
  };
  const dispose = () => {
    optimizer.dispose();
    tf.dispose([x, onehot, ...variables, ...layers.flatMap((l) => bnVars(l.bn))]);
  };
  return { step, dispose };
}

// A normalization layer's training forward + backward in tfjs on [32,28,28,16] (NHWC, the same
// values as our [32,16,28,28]): y and dy -> dx, dgamma, dbeta. BatchNorm over (N,H,W) per channel,
// LayerNorm over (H,W,C) per sample. The wasm backend runs eagerly, so reading dbeta ends the step.
function tfNormStep(tf, c) {
  const rand = lcg(99);
  const shape = [32, 28, 28, 16];
  const n = 32 * 28 * 28 * 16;
  const x = tf.tensor4d(normal(n, rand, 0.5, 2), shape);
  const dy = tf.tensor4d(normal(n, rand), shape);
  const pshape = c.kind === 'bn' ? [16] : [28, 28, 16];
  const gamma = tf.ones(pshape);
  const beta = tf.zeros(pshape);
  const f = c.kind === 'bn'
    ? (xx, g, b) => {
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      return tf.batchNorm(xx, mean, variance, b, g, EPS);
    }
    : (xx, g, b) => {
      const { mean, variance } = tf.moments(xx, [1, 2, 3], true);
      return tf.add(tf.mul(tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, EPS))), g), b);
    };
  const vg = tf.valueAndGrads(f);
  const step = () => {
    const { value, grads } = vg([x, gamma, beta], dy);
    grads[2].dataSync();
    value.dispose();
    for (const g of grads) g.dispose();
  };
  return { step, dispose: () => tf.dispose([x, dy, gamma, beta]) };
}

// ---- ours --------------------------------------------------------------------------------------

async function loadBenchModule(dir) {
  const create = createRequire(import.meta.url)(join(dir, 'normlab_bench_wasm.cjs'));
  return create({ wasmBinary: readFileSync(join(dir, 'normlab_bench_wasm.wasm')) });
}

function runNative(exe, mnistPath) {
  const ids = CASES.map((c) => c.id).join(',');
  const r = spawnSync(exe, ['--mnist', mnistPath, '--cases', ids, '--samples', String(SAMPLES)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench: ${exe} failed: ${r.stderr}`);
  return JSON.parse(r.stdout).cases;
}

// ---- the scaling row ---------------------------------------------------------------------------

const SCALING_STEPS = 4000;  // the preset's own

// The non-i.i.d. preset over 4 seeds, by compareInWorkers on 1 worker and on N, alternately (see
// the header). Returns null on a machine with one core.
async function measureScaling() {
  const workers = availableParallelism();
  if (workers < 2) return null;
  const { presets } = await import(join(root, 'dist', 'index.js'));
  const { compareInWorkers } = await import(join(root, 'dist', 'workers.js'));
  const { seed: _seed, ...base } = presets.find((p) => p.name === 'non-iid').config;
  const config = { ...base, steps: SCALING_STEPS, seeds: [1, 2, 3, 4] };
  const load = loadavg()[0];
  const runs = { 1: { seconds: [], digests: new Set() }, [workers]: { seconds: [], digests: new Set() } };
  let bytes = 0;
  for (let round = 0; round < (quick ? 1 : 3); ++round) {
    for (const n of [1, workers]) {
      const t0 = performance.now();
      const [result] = await compareInWorkers([config], { workers: n });
      runs[n].seconds.push((performance.now() - t0) / 1000);
      const json = JSON.stringify(result);
      bytes = json.length;
      runs[n].digests.add(createHash('sha256').update(json).digest('hex'));
    }
  }
  const digests = new Set([...runs[1].digests, ...runs[workers].digests]);
  return {
    workers, load, bytes, rounds: runs[1].seconds.length, arms: config.methods.length * config.seeds.length,
    serial: median(runs[1].seconds), parallel: median(runs[workers].seconds),
    identical: digests.size === 1, digest: [...digests][0],
  };
}

// ---- the table ---------------------------------------------------------------------------------

const fmt = (ms) => (ms === undefined ? '—' : ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));
const ratio = (a, b) => (a === undefined || b === undefined ? '—' : `${(a / b).toFixed(1)}x`);
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function table(rows, columns) {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((s, i) => (i === 0 ? String(s).padEnd(widths[i]) : String(s).padStart(widths[i]))).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main() {
  const t0 = Date.now();
  const { nativeExe, wasmDir } = await buildBench();
  const mnistPath = join(root, 'dist', 'data', 'mnist.nlds');
  if (!existsSync(mnistPath)) throw new Error(`bench: ${mnistPath} is missing (npm run build)`);
  const mnist = new Uint8Array(readFileSync(mnistPath));

  console.log('bench: native ...');
  const native = CASES.length ? runNative(nativeExe, mnistPath) : {};

  const { tf, simd, threads } = await loadTf();
  const convErr = checkConvFilterKernel(tf);
  const ours = await loadBenchModule(wasmDir);
  let nl = null;
  try {
    const { load } = await import(join(root, 'dist', 'index.js'));
    nl = await load();
  } catch (error) {
    console.log(`bench: no package in dist/ (${error.message}); skipping the runner rows through it`);
  }

  const results = {};
  const heap = {};
  for (const c of CASES) {
    console.log(`bench: ${c.id} ...`);
    const impls = {};
    const owned = [];
    const used0 = ours.memory().usedBytes;
    const bc = new ours.BenchCase(c.id, c.kind === 'runner' ? mnist : undefined);
    owned.push(() => bc.delete());
    impls.ours = () => bc.step(1);
    if (c.kind === 'runner' && nl) {
      // The same through the package's public API (dist/, as last built by npm run build).
      const runner = nl.createRunner({
        dataset: { name: 'mnist' }, model: c.model, methods: ['bn'], batchSize: 32,
        optimizer: { kind: 'sgd', lr: LR, momentum: MOMENTUM }, steps: 1e7, evalInterval: 1e7, seed: 1234,
      }, mnist);
      owned.push(() => runner.dispose());
      impls.package = () => runner.step(1);
    }
    const tfSteps = {};
    if (c.kind !== 'runner') {
      for (const backend of ['wasm', 'cpu']) {
        tf.setBackend(backend);
        const bytes0 = tf.memory().numBytes;
        tfSteps[backend] = c.kind === 'bn' || c.kind === 'ln' ? tfNormStep(tf, c) : tfTrainStep(tf, c);
        tfSteps[backend].step();  // the optimizer makes its accumulators in the first step
        tfSteps[backend].bytes = tf.memory().numBytes - bytes0;
      }
      // Each tfjs step runs on its own backend.
      impls['tfjs-wasm'] = { step: tfSteps.wasm.step, enter: () => tf.setBackend('wasm') };
      impls['tfjs-cpu'] = { step: tfSteps.cpu.step, enter: () => tf.setBackend('cpu') };
    }
    const r = measure(impls);
    const mem = ours.memory();
    tf.setBackend('wasm');
    heap[c.id] = {
      ours: mem.usedBytes - used0,
      oursHeap: mem.heapBytes,
      tfjs: tfSteps.wasm?.bytes,
      tfjsHeap: tf.backend().wasm.HEAPU8.length,
    };
    for (const dispose of owned) dispose();
    for (const [backend, s] of Object.entries(tfSteps)) {
      tf.setBackend(backend);
      s.dispose();
    }
    results[c.id] = { ...r, native: native[c.id] };
  }
  tf.setBackend('wasm');
  let scaling = null;
  if (SCALING) {
    console.log('bench: workers (the scaling row) ...');
    scaling = await measureScaling();
  }

  // ---- output ----
  console.log(`\nnormlab bench (${quick ? 'quick, ' : ''}${SAMPLES} samples; ms per step, median), Node ${process.versions.node}, ` +
    `tfjs ${tf.version_core}: wasm SIMD ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'}`);
  const rows = CASES.map((c) => {
    const r = results[c.id];
    return [c.id, c.label, fmt(r.ours?.ms), fmt(r.native?.ms), fmt(r['tfjs-wasm']?.ms), fmt(r['tfjs-cpu']?.ms),
      ratio(r['tfjs-wasm']?.ms, r.ours?.ms), ratio(r['tfjs-cpu']?.ms, r.ours?.ms), ratio(r.ours?.ms, r.native?.ms)];
  });
  if (CASES.length) {
    console.log(table(rows, ['case', 'what', 'ours WASM', 'ours native', 'tfjs-wasm', 'tfjs-cpu',
      'tfjs-wasm/ours', 'tfjs-cpu/ours', 'WASM/native']));
  }
  const pkg = CASES.filter((c) => results[c.id].package);
  if (pkg.length) {
    console.log(`runner rows: Runner::step(1) + take_events() in the bench module and natively; through the package ` +
      `(dist/, nl.createRunner(...).step(1)): ${pkg.map((c) => `${c.id} ${fmt(results[c.id].package.ms)} ms`).join(', ')}`);
  }

  const conv = CASES.filter((c) => c.flops);
  if (conv.length) {
    const limitMs = (flops) => flops / (SIMD_LIMIT_GFLOPS * 1e6);
    const rate = (flops, ms) => {
      if (ms === undefined) return '—';
      const g = flops / ms / 1e6;
      return g >= 10 ? g.toFixed(1) : g >= 1 ? g.toFixed(2) : g.toPrecision(2);
    };
    console.log(`\nFLOP rates (GFLOP/s from the medians; FLOPs: the products of the convolutions and the dense layer, ` +
      `forward and both gradients; the WebAssembly SIMD limit of ${SIMD_LIMIT_GFLOPS} GFLOP/s is ` +
      `${conv.map((c) => `${fmt(limitMs(c.flops))} ms for ${c.id}`).join(', ')}):`);
    console.log(table(conv.map((c) => {
      const r = results[c.id];
      return [c.id, (c.flops / 1e6).toFixed(1), rate(c.flops, r.ours?.ms), rate(c.flops, r.native?.ms),
        rate(c.flops, r.package?.ms), rate(c.flops, r['tfjs-wasm']?.ms), rate(c.flops, r['tfjs-cpu']?.ms),
        ratio(r.ours?.ms, limitMs(c.flops))];
    }), ['case', 'MFLOP/step', 'ours WASM', 'ours native', 'package', 'tfjs-wasm', 'tfjs-cpu', 'ours WASM / limit']));
  }

  if (scaling) {
    const { workers: n } = scaling;
    console.log(`\nscaling (case workers): compareInWorkers, non-iid preset, 4 methods x 4 seeds = ${scaling.arms} arms of ` +
      `${SCALING_STEPS} steps; wall time, median of ${scaling.rounds}; 1-minute load average before: ${scaling.load.toFixed(2)} ` +
      `on ${n} cores`);
    console.log(table([
      ['1', scaling.serial.toFixed(2), '1.00x'],
      [String(n), scaling.parallel.toFixed(2), `${(scaling.serial / scaling.parallel).toFixed(2)}x`],
    ], ['workers', 'wall s', 'speed-up']));
    console.log(`results of 1 and ${n} workers, every run: byte-identical JSON ${scaling.identical ? 'yes' : 'NO'} ` +
      `(${(scaling.bytes / 2 ** 20).toFixed(1)} MiB${scaling.identical ? `, sha256 ${scaling.digest.slice(0, 16)}` : ''})`);
  } else if (SCALING) {
    console.log('\nscaling: one core (os.availableParallelism() = 1), nothing to compare');
  }

  if (CASES.length) {
    console.log('\nWASM heap (after each case\'s steps):');
    console.log(table(CASES.map((c) => [c.id, mib(heap[c.id].ours), mib(heap[c.id].oursHeap),
      heap[c.id].tfjs === undefined ? '—' : mib(heap[c.id].tfjs), mib(heap[c.id].tfjsHeap)]),
    ['case', 'ours: case\'s allocations', 'ours: module heap', 'tfjs-wasm: case\'s tensors', 'tfjs-wasm: module heap']));
    console.log('(allocations: bytes malloc\'d for the case and still held after its steps: model, grads, optimizer ' +
      'state, caches, scratch; runner rows include the MNIST split as float32, 31 MB. Module heap: the ' +
      'WebAssembly memory\'s size, which only grows, so it is the largest case so far.)');
  }

  // Each target: what, its value (NaN when a case was not run), and the goal.
  const ms = (id, impl) => results[id]?.[impl]?.ms;
  const cnnLimitMs = cnnStepFlops(32, [8, 16]) / (SIMD_LIMIT_GFLOPS * 1e6);
  const targets = [
    ['tfjs-wasm / ours, MLP b32', ms('mlp-b32', 'tfjs-wasm') / ms('mlp-b32', 'ours'), '>=', 5],
    ['tfjs-wasm / ours, CNN b32', ms('cnn-b32', 'tfjs-wasm') / ms('cnn-b32', 'ours'), '>=', 5],
    ['tfjs-wasm / ours, BN fwd+bwd', ms('bn-fb', 'tfjs-wasm') / ms('bn-fb', 'ours'), '>=', 10],
    ['ours WASM / native, MLP b32', ms('mlp-b32', 'ours') / ms('mlp-b32', 'native'), '<=', 2],
    ['ours WASM / SIMD limit, CNN b32', ms('cnn-b32', 'ours') / cnnLimitMs, '<=', 1.6],
    [`workers speed-up, N = ${scaling?.workers}`, scaling ? scaling.serial / scaling.parallel : NaN, '>=', 0.85 * (scaling?.workers ?? 0)],
  ];
  console.log('\ntargets:');
  for (const [what, value, op, goal] of targets) {
    if (!Number.isFinite(value)) continue;
    const met = op === '>=' ? value >= goal : value <= goal;
    console.log(`  ${what.padEnd(32)} ${value.toFixed(2).padStart(6)}x  (target ${op} ${goal.toFixed(2).replace(/\.?0+$/, '')}x)  ${met ? 'met' : 'MISSED'}`);
  }
  console.log(`\nnotes: tfjs-wasm Conv2DBackpropFilter is registered by this script (the backend's ` +
    `Conv3DBackpropFilterV2 on depth-1 views; max rel. difference to tfjs-cpu ${convErr.toExponential(1)}). ` +
    `tfjs models are NHWC, ours NCHW. bench time ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
}

main().catch((error) => {
  console.error(error.stack ?? error);
  process.exit(1);
});
