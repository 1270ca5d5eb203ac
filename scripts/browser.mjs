// `npm run test:browser`: the playground's browser tests in Debian's headless Chromium.
//   1. installs Debian's `chromium` with apt-get when /usr/bin/chromium is missing (never a
//      downloaded browser build),
//   2. builds the package (dist/) and the playground (web/dist) unless --no-build,
//   3. runs tests/browser/playground.test.mjs and csp.test.mjs, each ending with 'N passed, M failed',
//      and prints the sum in the same form.
// Extra arguments filter the tests by name: `node scripts/browser.mjs --no-build sweep`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildJs, buildWasm, buildWeb } from './build.mjs';

export { buildWeb };
import { nodeBin, root, run } from './lib.mjs';
import { installSystemPackages } from './setup.mjs';

/** The browser test files, in the order they run; each prints 'N passed, M failed' last. */
export const BROWSER_TESTS = ['playground.test.mjs', 'csp.test.mjs', 'installed.test.mjs', 'bundlers.test.mjs'];

export async function ensureChromium() {
  if (!existsSync('/usr/bin/chromium')) await installSystemPackages(['chromium']);
  if (!existsSync('/usr/bin/chromium')) throw new Error('Debian\'s chromium is needed: apt-get install -y chromium');
}


async function main() {
  const args = process.argv.slice(2);
  const noBuild = args.includes('--no-build');
  const filters = args.filter((a) => !a.startsWith('--'));
  await ensureChromium();
  if (!noBuild) {
    await buildWasm();
    await buildJs();
    await buildWeb();
  }
  let passed = 0;
  let failed = 0;
  for (const file of BROWSER_TESTS) {
    const { code, output } = await run('node', [join(root, 'tests', 'browser', file), ...filters], { allowFailure: true });
    const m = output.match(/^(\d+) passed, (\d+) failed$/m);
    passed += m ? Number(m[1]) : 0;
    failed += m ? Number(m[2]) : 1;
    if (code !== 0 && !(m && Number(m[1]) === 0 && Number(m[2]) === 0)) process.exitCode = code;
  }
  console.log(`\nbrowser: ${passed} passed, ${failed} failed`);
  if (failed > 0 || passed === 0) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(`test:browser: ${error.message}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  });
}
