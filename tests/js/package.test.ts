// The published artifact: `npm pack` gives a tarball that installs into a fresh folder, where
// `import { load } from 'normlab'` works with no build tools on PATH, computes the same numbers as
// PyTorch, and the shipped declarations type-check the README example.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { expectClose, fixture, root } from './helpers.js';

let work: string;
let app: string;
let tarball: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'normlab-pack-'));
  // dist/ is already built by `npm test`; --ignore-scripts keeps prepack from rebuilding it.
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
  tarball = join(work, JSON.parse(out)[0].filename);
  // A folder name with '#', a space and non-ASCII: every path of the package goes through it.
  app = join(work, 'my app #1 ü');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], { cwd: app, stdio: 'pipe' });
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

test('npm pack --dry-run: the files it lists, reviewed (no stray files), and its size', () => {
  const [info] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: root, encoding: 'utf8' }));
  const files: string[] = info.files.map((f: { path: string }) => f.path);
  const allowed = [/^dist\/[a-z_-]+\.(js|d\.ts)$/, /^dist\/normlab_wasm\.wasm$/, /^dist\/data\/(digits|mnist)\.nlds$/,
    /^dist\/playground\/(index\.html|assets\/[\w-]+\.(js|css|wasm|nlds|svg))$/, /^examples\/(basic\.ts|compare-layers\.mjs)$/,
    /^(package\.json|README\.md|LICENSE|CHANGELOG\.md)$/];
  const stray = files.filter((f) => !allowed.some((a) => a.test(f)));
  expect(stray).toEqual([]);
  expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  for (const f of ['dist/index.js', 'dist/cli.js', 'dist/playground/index.html', 'CHANGELOG.md', 'examples/basic.ts']) expect(files).toContain(f);
  console.log(`npm pack: ${files.length} files, ${(info.size / 2 ** 20).toFixed(1)} MiB packed, ${(info.unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  expect(Object.keys(pkg)).toEqual(expect.arrayContaining(['repository', 'homepage', 'bugs', 'engines']));
});

test('the tarball ships only the package files', () => {
  const files = readdirSync(join(app, 'node_modules', 'normlab', 'dist')).sort();
  expect(files).toEqual(['checks.d.ts', 'checks.js', 'cli.d.ts', 'cli.js', 'csv-data.d.ts', 'csv-data.js', 'csv.d.ts', 'csv.js', 'data', 'dataset.d.ts', 'dataset.js', 'handle.d.ts', 'handle.js',
    'index.d.ts', 'index.js', 'layers.d.ts', 'layers.js', 'load.d.ts', 'load.js', 'model.d.ts', 'model.js', 'normlab_wasm.d.ts', 'normlab_wasm.js',
    'normlab_wasm.wasm', 'playground', 'preprocess.d.ts', 'preprocess.js', 'presets.d.ts', 'presets.js', 'probes.d.ts', 'probes.js', 'runner.d.ts', 'runner.js',
    'seeds.d.ts', 'seeds.js', 'serve.d.ts', 'serve.js', 'stats.d.ts', 'stats.js', 'suggest.d.ts', 'suggest.js', 'sweep.d.ts', 'sweep.js', 'types.d.ts', 'types.js',
    'workers-thread.d.ts', 'workers-thread.js', 'workers.d.ts', 'workers.js']);
  expect(readdirSync(join(app, 'node_modules', 'normlab', 'dist', 'data')).sort()).toEqual(['digits.nlds', 'mnist.nlds']);
});

test('import { load } from "normlab" works in a fresh folder without build tools', () => {
  const c = fixture('groupnorm').cases[0];
  writeFileSync(join(app, 'main.mjs'), `
    import { load } from 'normlab';
    const c = JSON.parse(process.argv[2]);
    const nl = await load();
    const layer = nl.createLayer('groupnorm', c.options);
    layer.setParams({ gamma: Float32Array.from(c.params.gamma), beta: Float32Array.from(c.params.beta) });
    const y = layer.forward(Float32Array.from(c.steps[0].x), c.shape, { training: true });
    layer.dispose();
    console.log(JSON.stringify({ y: Array.from(y), live: nl.memory().liveLayers }));
  `);
  // Only node itself on PATH: no emcc, cmake, compilers or npm.
  const nodeDir = dirname(process.execPath);
  const out = execFileSync(process.execPath, ['main.mjs', JSON.stringify(c)], {
    cwd: app, encoding: 'utf8', env: { PATH: nodeDir, HOME: work },
  });
  const result = JSON.parse(out);
  expect(result.live).toBe(0);
  expectClose('groupnorm y from the installed package', result.y, c.steps[0].y);
});

test("paths with '#', spaces and non-ASCII: wasmUrl and a data set's path as plain paths, relative to the working directory", () => {
  const odd = join(app, 'odd dir #2 é');
  execFileSync('mkdir', ['-p', odd]);
  copyFileSync(join(app, 'node_modules', 'normlab', 'dist', 'normlab_wasm.wasm'), join(odd, 'normlab_wasm.wasm'));
  copyFileSync(join(app, 'node_modules', 'normlab', 'dist', 'data', 'digits.nlds'), join(odd, 'd #.nlds'));
  writeFileSync(join(app, 'paths.mjs'), `
    import { load } from 'normlab';
    const nl = await load({ wasmUrl: './odd dir #2 é/normlab_wasm.wasm' });
    const bytes = await nl.loadDataset('digits', 'odd dir #2 é/d #.nlds');
    const bundled = await (await load()).loadDataset('digits');
    let missing = '';
    try { await load({ wasmUrl: './odd dir #2 é/none.wasm' }); } catch (e) { missing = e.message; }
    console.log(JSON.stringify({ methods: nl.methods.length, bytes: bytes.length, same: bytes.length === bundled.length, missing }));
  `);
  const out = JSON.parse(execFileSync(process.execPath, ['paths.mjs'], { cwd: app, encoding: 'utf8' }));
  expect(out.methods).toBe(13);
  expect(out.bytes).toBeGreaterThan(100_000);
  expect(out.same).toBe(true);
  expect(out.missing).toMatch(/could not read .*odd dir #2 é\/none\.wasm: ENOENT/);
});

test("every js block of the README that starts with an import runs as it is against the installed package", () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]).filter((b) => b.startsWith('import '));
  expect(blocks.length).toBeGreaterThanOrEqual(4);
  blocks.forEach((block, k) => {
    writeFileSync(join(app, `readme-${k}.mjs`), block);
    const r = spawnSync(process.execPath, [`readme-${k}.mjs`], { cwd: app, encoding: 'utf8' });
    expect(r.status, `README block ${k + 1}:\n${block}\n${r.stderr}`).toBe(0);
  });
}, 120_000);

test('the CSV parser is the subpath normlab/csv-data, and a comparison runs on CSV text', () => {
  writeFileSync(join(app, 'csv.mjs'), `
    import { load } from 'normlab';
    import { parseCsvDataset } from 'normlab/csv-data';
    const text = 'a,b,label\\n' + Array.from({ length: 40 }, (_, i) => \`\${i % 2},\${i / 40},\${i % 2 ? 'odd' : 'even'}\`).join('\\n');
    const parsed = parseCsvDataset(text);
    const nl = await load();
    const r = await nl.compare({ dataset: { csv: text }, methods: ['ln'], model: { hidden: [4] }, batchSize: 4, steps: 5 });
    console.log(JSON.stringify({ classes: parsed.classNames, data: r.data }));
  `);
  const out = execFileSync(process.execPath, ['csv.mjs'], { cwd: app, encoding: 'utf8', env: { PATH: dirname(process.execPath), HOME: work } });
  expect(JSON.parse(out)).toEqual({ classes: ['even', 'odd'], data: { train: 32, test: 8, classes: 2, name: 'csv', classNames: ['even', 'odd'] } });
});

test('the shipped declarations type-check the README example', () => {
  copyFileSync(join(root, 'examples', 'basic.ts'), join(app, 'basic.ts'));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'],
      strict: true, noEmit: true, skipLibCheck: false,
    },
    files: ['basic.ts'],
  }));
  // Throws (failing the test) with tsc's diagnostics if the declarations do not fit the example.
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', app], { cwd: app, encoding: 'utf8' });
  // And a wrong use is rejected: the types are not `any`.
  writeFileSync(join(app, 'wrong.ts'), `
    import { load } from 'normlab';
    const nl = await load();
    nl.createLayer('groupnorm', { channels: 4 });             // groups missing
    nl.createLayer('batchnorm', { channels: 4 }).setLimits({}); // not a Batch Renorm layer
  `);
  writeFileSync(join(app, 'tsconfig.wrong.json'), JSON.stringify({
    extends: './tsconfig.json', files: ['wrong.ts'],
  }));
  let diagnostics = '';
  try {
    execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(app, 'tsconfig.wrong.json')], { cwd: app, encoding: 'utf8' });
  } catch (error) {
    diagnostics = String((error as { stdout: string }).stdout);
  }
  expect(diagnostics).toMatch(/Property 'groups' is missing/);
  expect(diagnostics).toMatch(/Property 'setLimits' does not exist/);
});

test('the installed `normlab` command runs a comparison on the bundled digits', () => {
  const nodeDir = dirname(process.execPath);
  const env = { PATH: nodeDir, HOME: work };
  const bin = join(app, 'node_modules', '.bin', 'normlab');
  const out = execFileSync(bin, ['compare', '--dataset', 'digits', '--methods', 'bn,ln', '--steps', '60', '--batch-size', '16',
    '--quiet', '--json', join(work, 'r.json')], { cwd: app, encoding: 'utf8', env });
  expect(out).toMatch(/digits, mlp 128-128, batch 16 iid/);
  expect(out).toMatch(/BatchNorm\s+\d+\.\d%/);
  const result = JSON.parse(readFileSync(join(work, 'r.json'), 'utf8'));
  expect(result.methods.map((m: { id: string }) => m.id)).toEqual(['bn', 'ln']);
  expect(result.data).toEqual({ train: 1297, test: 500, classes: 10 });
});
