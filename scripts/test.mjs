// `npm test`: installs what is missing, builds, and runs every suite, then prints one summary.
//   native  GoogleTest through ctest (the C++ core against PyTorch fixtures, gradient checks, ...)
//   js      Vitest in Node against the built package (fixtures through the API, bad input, leaks,
//           the runner and its presets, the CLI, native-vs-WebAssembly agreement, the packed
//           tarball in a fresh folder)
//   types   the TypeScript example against the shipped declarations, and the playground (tsc --noEmit)
//   browser the playground in headless Chromium (playwright-core driving Debian's chromium), and
//           the package and the playground under a strict Content-Security-Policy
// `node scripts/test.mjs native js` runs only those suites.
import { join } from 'node:path';
import { buildJs, buildNative, buildWasm, buildWeb } from './build.mjs';
import { BROWSER_TESTS, ensureChromium } from './browser.mjs';
import { nodeBin, root, run } from './lib.mjs';

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

const suites = {
  async native() {
    const dir = await buildNative();
    const { code, output } = await run('ctest', ['--test-dir', dir, '--output-on-failure', '-j2'], { allowFailure: true });
    const m = strip(output).match(/(\d+)% tests passed, (\d+) tests failed out of (\d+)/);
    if (!m) return { passed: 0, failed: 1, code };
    return { passed: Number(m[3]) - Number(m[2]), failed: Number(m[2]), code };
  },
  // Not in the default set (npm run test:sanitize): the native suite built with AddressSanitizer and
  // UndefinedBehaviorSanitizer (any report fails the run: -fno-sanitize-recover).
  async sanitize() {
    const dir = await buildNative({ sanitize: true });
    const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' };
    const { code, output } = await run('ctest', ['--test-dir', dir, '--output-on-failure', '-j2'], { allowFailure: true, env });
    const m = strip(output).match(/(\d+)% tests passed, (\d+) tests failed out of (\d+)/);
    if (!m) return { passed: 0, failed: 1, code };
    return { passed: Number(m[3]) - Number(m[2]), failed: Number(m[2]), code };
  },
  async js() {
    const { code, output } = await run(nodeBin('vitest'), ['run'], { allowFailure: true });
    const line = strip(output).split('\n').find((l) => /^\s*Tests\s/.test(l)) ?? '';
    const passed = Number(line.match(/(\d+) passed/)?.[1] ?? 0);
    const failed = Number(line.match(/(\d+) failed/)?.[1] ?? (code === 0 ? 0 : 1));
    // tests/js/global-setup.ts counts the bad and hostile inputs the suites try.
    const note = strip(output).match(/^hostile inputs tried: .*$/m)?.[0];
    return { passed, failed, code, note };
  },
  async types() {
    let passed = 0;
    let failed = 0;
    for (const project of [join(root, 'examples', 'tsconfig.json'), join(root, 'web', 'tsconfig.json')]) {
      const { code } = await run(nodeBin('tsc'), ['-p', project], { allowFailure: true });
      if (code === 0) passed++;
      else failed++;
    }
    return { passed, failed, code: failed ? 1 : 0 };
  },
  // The playground in headless Chromium (tests/browser), against the static build of web/; then
  // the package and the playground under a strict Content-Security-Policy, and in a Web Worker.
  async browser() {
    await ensureChromium();
    await buildWeb();
    let passed = 0;
    let failed = 0;
    let code = 0;
    for (const file of BROWSER_TESTS) {
      const r = await run('node', [join(root, 'tests', 'browser', file)], { allowFailure: true });
      const m = strip(r.output).match(/^(\d+) passed, (\d+) failed$/m);
      passed += m ? Number(m[1]) : 0;
      failed += m ? Number(m[2]) : 1;
      if (r.code !== 0) code = r.code;
    }
    return { passed, failed, code };
  },
};

async function main() {
  const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ['native', 'js', 'types', 'browser'];
  for (const name of wanted) {
    if (!suites[name]) throw new Error(`unknown suite '${name}' (known: ${Object.keys(suites).join(', ')})`);
  }
  await run('node', [join(root, 'scripts', 'setup.mjs')]);
  if (wanted.some((s) => s !== 'native' && s !== 'sanitize')) {
    await buildWasm();
    await buildJs();
    // The package ships the playground's build (dist/playground): the package tests pack it.
    await buildWeb();
  }
  // The JS suites compare the WebAssembly runner with the native one (build/native/run_native).
  if (wanted.includes('js') && !wanted.includes('native')) await buildNative();
  const results = [];
  for (const name of wanted) {
    const t0 = Date.now();
    console.log(`\n=== ${name} ===`);
    const r = await suites[name]();
    results.push({ name, ...r, seconds: (Date.now() - t0) / 1000 });
  }
  console.log('\n=== summary ===');
  for (const r of results) {
    console.log(`${r.name.padEnd(7)} ${String(r.passed).padStart(4)} passed, ${r.failed} failed  (${r.seconds.toFixed(1)} s)`);
  }
  for (const r of results) if (r.note) console.log(r.note);
  const passed = results.reduce((a, r) => a + r.passed, 0);
  const failed = results.reduce((a, r) => a + r.failed, 0);
  const broken = results.some((r) => r.code !== 0);
  console.log(`tests: ${passed} passed, ${failed} failed`);
  if (failed > 0 || broken) process.exit(1);
}

main().catch((error) => {
  console.error(`test: ${error.message}`);
  process.exit(1);
});
