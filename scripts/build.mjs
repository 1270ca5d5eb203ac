// Builds normlab. Targets (default: wasm js):
//   wasm    the WebAssembly module (emcmake cmake, Release -O3 -msimd128) into dist/
//   js      the TypeScript wrapper and its declarations into dist/
//   native  the native core and its GoogleTest tests into build/native
//   web     the playground's static build (vite) into web/dist, and a copy without source maps
//           into dist/playground, which the package ships for `npx normlab playground`
import { copyFileSync, cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { nodeBin, root, run } from './lib.mjs';

const jobs = String(Math.max(2, (await import('node:os')).availableParallelism?.() ?? 2));

export async function buildWasm() {
  const dir = join(root, 'build', 'wasm');
  await run('emcmake', ['cmake', '-S', root, '-B', dir, '-DCMAKE_BUILD_TYPE=Release',
    `-DNORMLAB_WASM_OUT=${join(root, 'dist')}`], { quiet: true });
  await run('cmake', ['--build', dir, '-j', jobs], { quiet: true });
}

export async function buildJs() {
  mkdirSync(join(root, 'dist'), { recursive: true });
  // The data sets the package ships: digits (committed) and MNIST (from the mnist devDependency).
  await run('node', [join(root, 'scripts', 'build-data.mjs'), join(root, 'dist', 'data')], { quiet: true });
  await run(nodeBin('tsc'), ['-p', join(root, 'bindings', 'js', 'tsconfig.json')]);
  copyFileSync(join(root, 'bindings', 'js', 'normlab_wasm.d.ts'), join(root, 'dist', 'normlab_wasm.d.ts'));
}

export async function buildNative({ sanitize = false } = {}) {
  const dir = join(root, 'build', sanitize ? 'sanitize' : 'native');
  await run('cmake', ['-S', root, '-B', dir, `-DCMAKE_BUILD_TYPE=${sanitize ? 'RelWithDebInfo' : 'Release'}`,
    `-DNORMLAB_SANITIZE=${sanitize ? 'ON' : 'OFF'}`], { quiet: true });
  await run('cmake', ['--build', dir, '-j', jobs], { quiet: true });
  return dir;
}

export async function buildWeb() {
  await run(nodeBin('vite'), ['build', join(root, 'web'), '--logLevel', 'warn']);
  const out = join(root, 'dist', 'playground');
  rmSync(out, { recursive: true, force: true });
  cpSync(join(root, 'web', 'dist'), out, { recursive: true, filter: (src) => !src.endsWith('.map') });
}

const targets = { wasm: buildWasm, js: buildJs, native: buildNative, web: buildWeb };

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ['wasm', 'js'];
  try {
    for (const name of wanted) {
      if (!targets[name]) throw new Error(`unknown target '${name}' (known: ${Object.keys(targets).join(', ')})`);
      const t0 = Date.now();
      await targets[name]();
      console.log(`build: ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  } catch (error) {
    console.error(`build: ${error.message}`);
    process.exit(1);
  }
}
