// A consumer's app that only creates one layer, built from the packed tarball with Vite, webpack
// and esbuild as the README's recipes say: each build prints no warning and carries no data set
// (.nlds), and in Debian's headless Chromium the layer computes PyTorch's numbers (the GroupNorm
// fixture). Run by `npm test` (browser suite); alone: `node tests/browser/bundlers.test.mjs`.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../scripts/serve-web.mjs';
import { launch } from './browser.mjs';
import { assert, assertEqual, run, test } from './harness.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const work = mkdtempSync(join(tmpdir(), 'normlab-bundlers-'));
const apps = join(work, 'apps');
const fixtureCase = JSON.parse(readFileSync(join(root, 'tests', 'fixtures', 'groupnorm.json'), 'utf8')).cases[0];
/** Values of the fixture's input (2x6x5x3). */
const N = fixtureCase.shape.reduce((a, b) => a * b, 1);

/** The app: one GroupNorm layer, its output against the fixture's (PyTorch's), reported on window. */
const MAIN = `import { load } from 'normlab';
const c = ${JSON.stringify(fixtureCase)};
let nl;
try {
  nl = await load(${'/*WASM*/'});
} catch (error) {
  window.__result = { error: error.message };
  throw error;
}
const layer = nl.createLayer('groupnorm', c.options);
layer.setParams({ gamma: Float32Array.from(c.params.gamma), beta: Float32Array.from(c.params.beta) });
const y = layer.forward(Float32Array.from(c.steps[0].x), c.shape, { training: true });
let maxDiff = 0;
y.forEach((v, i) => { maxDiff = Math.max(maxDiff, Math.abs(v - c.steps[0].y[i]) / (1 + Math.abs(c.steps[0].y[i]))); });
layer.dispose();
window.__result = { maxDiff, n: y.length };
`;

const files = (dir) => readdirSync(dir, { recursive: true }).filter((f) => statSync(join(dir, f)).isFile()).map(String);

function setup() {
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
  mkdirSync(apps);
  writeFileSync(join(apps, 'package.json'), JSON.stringify({ name: 'apps', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', join(work, JSON.parse(out)[0].filename)], { cwd: apps, stdio: 'pipe' });
}

/** Builds with `args` in `dir`: the build's output, which must hold no warning. */
function build(name, dir, command, args) {
  const r = spawnSync(command, args, { cwd: dir, encoding: 'utf8' });
  const output = `${r.stdout}\n${r.stderr}`;
  assertEqual(r.status, 0, `${name} build failed:\n${output}`);
  assert(!/warn|\(!\)|critical dependency/i.test(output), `${name} printed a warning:\n${output}`);
  return output;
}

/** Loads `dist` in Chromium and returns the app's result. */
async function runApp(browser, dist, { expectError = false } = {}) {
  const server = await serve(dist);
  try {
    const page = await browser.context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(server.url);
    await page.waitForFunction(() => globalThis.__result, null, { timeout: 30_000 });
    const result = await page.evaluate(() => globalThis.__result);
    if (!expectError) assertEqual(problems, [], 'no page errors');
    assert(!server.requests.some((p) => p.endsWith('.nlds')), 'no data set fetched');
    await page.close();
    return result;
  } finally {
    await server.close();
  }
}

function checkBundle(name, dist) {
  const all = files(dist);
  assertEqual(all.filter((f) => f.endsWith('.nlds')), [], `${name}: no data set in the bundle`);
  assert(all.some((f) => f.endsWith('.wasm')), `${name}: the .wasm is in the bundle`);
  return all;
}

let browser;

test('Vite: no warning, no data set, PyTorch\'s numbers', async () => {
  const dir = join(apps, 'vite');
  mkdirSync(dir);
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  writeFileSync(join(dir, 'main.js'), MAIN.replace('/*WASM*/', ''));
  writeFileSync(join(dir, 'vite.config.js'), "export default { build: { target: 'es2022' } };\n");
  build('vite', dir, bin('vite'), ['build', '--logLevel', 'warn']);
  checkBundle('vite', join(dir, 'dist'));
  const r = await runApp(browser, join(dir, 'dist'));
  assert(r.n === N && r.maxDiff < 1e-5, `groupnorm y = PyTorch's: ${JSON.stringify(r)}`);
});

test('webpack: no warning, no data set, PyTorch\'s numbers', async () => {
  const dir = join(apps, 'webpack');
  mkdirSync(dir);
  writeFileSync(join(dir, 'main.js'), MAIN.replace('/*WASM*/', ''));
  // The README's recipe: the .wasm is an asset larger than webpack's default hint of 244 KiB.
  writeFileSync(join(dir, 'webpack.config.js'), `export default {
  mode: 'production',
  entry: './main.js',
  output: { path: new URL('./dist/', import.meta.url).pathname, filename: 'main.js', clean: true },
  performance: { maxAssetSize: 2 * 1024 * 1024, maxEntrypointSize: 2 * 1024 * 1024 },
};
`);
  build('webpack', dir, bin('webpack'), ['--config', 'webpack.config.js']);
  writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><script src="./main.js"></script>');
  checkBundle('webpack', join(dir, 'dist'));
  const r = await runApp(browser, join(dir, 'dist'));
  assert(r.n === N && r.maxDiff < 1e-5, `groupnorm y = PyTorch's: ${JSON.stringify(r)}`);
});

test('esbuild: the recipe (copy the .wasm, pass wasmUrl) works; no data set', async () => {
  const dir = join(apps, 'esbuild');
  mkdirSync(join(dir, 'dist'), { recursive: true });
  writeFileSync(join(dir, 'main.js'), MAIN.replace('/*WASM*/', "{ wasmUrl: './normlab_wasm.wasm' }"));
  // Without the recipe: the bundle looks for the .wasm beside itself, and the error says what to do.
  writeFileSync(join(dir, 'plain.js'), MAIN.replace('/*WASM*/', ''));
  build('esbuild', dir, bin('esbuild'), ['plain.js', '--bundle', '--format=esm', '--target=es2022', '--outfile=plain/main.js', '--log-level=warning']);
  writeFileSync(join(dir, 'plain', 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  const missing = await runApp(browser, join(dir, 'plain'), { expectError: true });
  assert(/HTTP 404\. The bundle did not copy normlab_wasm\.wasm .*load\(\{ wasmUrl: '\/normlab_wasm\.wasm' \}\)/.test(missing.error), `404 message: ${missing.error}`);
  build('esbuild', dir, bin('esbuild'), ['main.js', '--bundle', '--format=esm', '--target=es2022', '--outfile=dist/main.js', '--log-level=warning']);
  copyFileSync(join(apps, 'node_modules', 'normlab', 'dist', 'normlab_wasm.wasm'), join(dir, 'dist', 'normlab_wasm.wasm'));
  writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  checkBundle('esbuild', join(dir, 'dist'));
  const r = await runApp(browser, join(dir, 'dist'));
  assert(r.n === N && r.maxDiff < 1e-5, `groupnorm y = PyTorch's: ${JSON.stringify(r)}`);
});

setup();
browser = await launch();
let counts;
try {
  counts = await run({ only: process.argv.slice(2) });
} finally {
  await browser.close();
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = counts.failed > 0 || counts.passed === 0 ? 1 : 0;
